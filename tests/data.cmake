# Data pipeline tests that need the smallcoder binary: tokenizer train → tokenize → shards → loader with
# character-level FIM through the real tokenizer (fim_tokenizer_check).
add_executable(fim_tokenizer_check ${CMAKE_CURRENT_SOURCE_DIR}/fim_tokenizer_check.c)
target_link_libraries(fim_tokenizer_check PRIVATE ${SC_ALL_LIBS} sc_host)
target_include_directories(fim_tokenizer_check PRIVATE ${CMAKE_SOURCE_DIR})
add_test(NAME tokenize_end_to_end
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenize_test.sh $<TARGET_FILE:smallcoder> $<TARGET_FILE:fim_tokenizer_check>)
set_tests_properties(tokenize_end_to_end PROPERTIES LABELS cpu)
