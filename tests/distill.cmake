# Distillation: `smallcoder teacher` and `train --teacher-logits/--teacher` from the command line, with the bad
# inputs of issue 7 (k > vocab, another tokenizer, .kd of another shard, truncated .kd). C tests: test_kd_*.c.
add_test(NAME distill_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/distill_cli.sh $<TARGET_FILE:smallcoder>
                                  $<TARGET_FILE:train_make_shards> ${CMAKE_SOURCE_DIR})
set_tests_properties(distill_cli PROPERTIES LABELS cpu TIMEOUT 600)
# distill/teacher_hf.py against `smallcoder teacher` on a plain-PyTorch tiny teacher (skipped, 77, without torch).
add_test(NAME distill_hf COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/distill_hf.sh $<TARGET_FILE:smallcoder>
                                 $<TARGET_FILE:train_make_shards> ${CMAKE_SOURCE_DIR})
set_tests_properties(distill_hf PROPERTIES LABELS cpu TIMEOUT 600 SKIP_RETURN_CODE 77)
