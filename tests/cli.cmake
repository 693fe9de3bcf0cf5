# Command-line behaviour of the foundation commands: --help, bad input, no partial files.
add_test(NAME cli_bad_input COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_bad_input.sh $<TARGET_FILE:smallcoder>)
set_tests_properties(cli_bad_input PROPERTIES LABELS cpu)
# The user's chain without --tokenizer, and what must never happen to its directories (issue 14, items 3, 6-9).
add_test(NAME cli_chain COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_chain.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_chain PROPERTIES LABELS cpu TIMEOUT 300)
