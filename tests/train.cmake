# Training: the shard generator the scripts use, and the command-line tests of train/eval (resume bit-identity,
# SIGKILL during a save, Ctrl-C, bad input). The C unit tests (tests/test_train_*.c) are picked up by the glob.
add_executable(train_make_shards ${CMAKE_CURRENT_SOURCE_DIR}/train_make_shards.c)
target_link_libraries(train_make_shards PRIVATE ${SC_ALL_LIBS} sc_host)
add_test(NAME train_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train_cli.sh $<TARGET_FILE:smallcoder>
                                $<TARGET_FILE:train_make_shards>)
set_tests_properties(train_cli PROPERTIES LABELS cpu TIMEOUT 900)
add_test(NAME train_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train_e2e.sh $<TARGET_FILE:smallcoder> ${CMAKE_SOURCE_DIR})
set_tests_properties(train_e2e PROPERTIES LABELS cpu TIMEOUT 900)
# Resuming never misleads: older checkpoints, bounded trainer_state.json numbers, errors naming the file (seconds).
add_test(NAME train_resume_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train_resume_cli.sh $<TARGET_FILE:smallcoder>
                                       $<TARGET_FILE:train_make_shards>)
set_tests_properties(train_resume_cli PROPERTIES LABELS cpu TIMEOUT 300)
# SIGKILL at random moments (many inside a checkpoint save), resume after each: bit-identical to an uninterrupted
# run. 20 kills in the slow label (~10 s idle; not in the sanitizer pass), 3 kills in the normal suite (~4 s).
add_test(NAME train_kill9 COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train_kill9.sh $<TARGET_FILE:smallcoder>
                                  $<TARGET_FILE:train_make_shards> 20)
set_tests_properties(train_kill9 PROPERTIES LABELS "cpu;slow" TIMEOUT 600)
add_test(NAME train_kill9_quick COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train_kill9.sh $<TARGET_FILE:smallcoder>
                                        $<TARGET_FILE:train_make_shards> 3)
set_tests_properties(train_kill9_quick PROPERTIES LABELS cpu TIMEOUT 300)
# Issue 16: `train --lora` (PEFT checkpoints, loss falls, bit-exact resume with dropout, teacher logits, merge,
# one-line refusals), ~10 s idle.
add_test(NAME train_lora_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train_lora_cli.sh $<TARGET_FILE:smallcoder>
                                     $<TARGET_FILE:train_make_shards>)
set_tests_properties(train_lora_cli PROPERTIES LABELS cpu TIMEOUT 300)
