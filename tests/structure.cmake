# The layers: scripts/check-deps passes on the tree and refuses planted wrong-way includes (tests/check_deps.sh).
add_test(NAME check_deps COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_deps.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(check_deps PROPERTIES LABELS cpu)
