# Command-line behaviour of the foundation commands: --help, bad input, no partial files.
add_test(NAME cli_bad_input COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_bad_input.sh $<TARGET_FILE:smallcoder>)
set_tests_properties(cli_bad_input PROPERTIES LABELS cpu)
