# tests/infer.cmake — the inference area's script tests (quantize/eval/complete, the HTTP server over loopback).
if(TARGET sc_infer AND TARGET sc_train AND TARGET sc_data)
  add_test(NAME infer_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/infer_cli.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR})
  set_tests_properties(infer_cli PROPERTIES LABELS "cpu;slow" TIMEOUT 1200)  # slow: skipped by the sanitizer pass (10 min there)
  if(MHD_FOUND)
    add_test(NAME infer_serve COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/infer_serve.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR})
    set_tests_properties(infer_serve PROPERTIES LABELS "cpu;slow" TIMEOUT 1200 SKIP_RETURN_CODE 77)
    # speculative decoding through complete / infer-bench / serve on random tiny models (seconds)
    add_test(NAME infer_spec_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/infer_spec.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR})
    set_tests_properties(infer_spec_cli PROPERTIES LABELS cpu TIMEOUT 600)
    # seconds: an untrained tiny model; a flood of idle connections past the descriptor limit, /v1/models escaping
    add_test(NAME infer_serve_limits
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/infer_serve_limits.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR})
    set_tests_properties(infer_serve_limits PROPERTIES LABELS cpu TIMEOUT 120 SKIP_RETURN_CODE 77)
  endif()
endif()

# LoRA adapters served unmerged (issue 16): a helper that writes random PEFT adapters, and complete/serve with them
add_executable(lora_test_adapter ${CMAKE_CURRENT_SOURCE_DIR}/lora_test_adapter.c)
target_link_libraries(lora_test_adapter PRIVATE ${SC_ALL_LIBS} sc_host)
target_include_directories(lora_test_adapter PRIVATE ${CMAKE_SOURCE_DIR})
if(TARGET sc_infer AND MHD_FOUND)
  add_test(NAME infer_lora_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/infer_lora.sh $<TARGET_FILE:smallcoder>
                                       $<TARGET_FILE:lora_test_adapter> ${CMAKE_SOURCE_DIR})
  set_tests_properties(infer_lora_cli PROPERTIES LABELS cpu TIMEOUT 600 SKIP_RETURN_CODE 77)
endif()
