# tests/open_models.cmake — issue 17: every command on open-model-shaped directories (qwen2 with biases, DeepSeek
# with linear RoPE scaling and an untied head, Llama-3.2 with llama3 scaling and an end-id list; BF16 shards),
# a student initialised on the teacher's vocabulary and distilled from it. Minutes on a loaded 2-core machine.
if(TARGET sc_infer AND TARGET sc_train AND TARGET sc_data)
  add_test(NAME open_models_cli
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/open_models_cli.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR})
  set_tests_properties(open_models_cli PROPERTIES LABELS "cpu;slow" TIMEOUT 1200 SKIP_RETURN_CODE 77)
  # the other four families (no feature the three above lack: plain Llama, tied/untied, qwen2 at another width)
  add_test(NAME open_models_cli_more
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/open_models_cli.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR}
                   smollm2-135m smollm2-360m tinyllama-1.1b qwen2.5-coder-1.5b)
  set_tests_properties(open_models_cli_more PROPERTIES LABELS "cpu;slow" TIMEOUT 1500 SKIP_RETURN_CODE 77)
  # TinyLlama, Qwen2.5-Coder and Llama-3.2 with their published tokenizer.json (full vocabularies): tokenize, eval,
  # quantize, complete (BOS, FIM), serve, export gguf ("llama" and "gpt2" tokenizers); CodeLlama-style FIM training. The files: fixture in tests/tokenizer.cmake.
  add_test(NAME open_models_published
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/open_models_published.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR}
                   $<TARGET_FILE_DIR:smallcoder>/npm $<TARGET_FILE:fim_tokenizer_check>)
  set_tests_properties(open_models_published PROPERTIES LABELS "cpu;npm;slow" TIMEOUT 900 SKIP_RETURN_CODE 77
                       FIXTURES_REQUIRED published_tokenizers)
endif()
