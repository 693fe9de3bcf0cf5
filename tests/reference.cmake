# Independent check of the CPU model (issue 3 item 7): `smallcoder forward` loss, logits and every gradient against
# a float64 PyTorch Llama written from the equations (tests/reference/llama_ref.py). Debian's python3 has torch;
# the pyenv python3 on PATH does not, hence the absolute path. Skips (77) only when torch/numpy are missing.
add_test(NAME reference_forward
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/reference/run_check.py $<TARGET_FILE:smallcoder>)
set_tests_properties(reference_forward PROPERTIES LABELS "cpu;reference" SKIP_RETURN_CODE 77 TIMEOUT 600)

# Issue 17: the open-model families (published configs, layers cut, widths kept; BF16/F16/F32, shards) through
# `smallcoder info` and `forward` against the same reference (~1-3 min on a loaded 2-core machine: slow), and the
# bad inputs (missing shard, absent tensor, rope type, sliding window: one line each) on their own in seconds.
add_test(NAME reference_open_models
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/reference/open_models_check.py $<TARGET_FILE:smallcoder>
                 --no-bad-inputs)
set_tests_properties(reference_open_models PROPERTIES LABELS "cpu;reference;slow" SKIP_RETURN_CODE 77 TIMEOUT 900)
add_test(NAME open_models_bad_input
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/reference/open_models_check.py $<TARGET_FILE:smallcoder>
                 --bad-inputs-only)
set_tests_properties(open_models_bad_input PROPERTIES LABELS "cpu" SKIP_RETURN_CODE 77 TIMEOUT 120)

# Issue 16: LoRA (`forward --lora`) loss, logits and adapter gradients against PEFT's math in float64 PyTorch; a
# zero-B adapter is the base bit for bit; merged = unmerged; an adapter for another base is one line (seconds).
add_test(NAME reference_lora
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/reference/lora_check.py $<TARGET_FILE:smallcoder>)
set_tests_properties(reference_lora PROPERTIES LABELS "cpu;reference" SKIP_RETURN_CODE 77 TIMEOUT 300)
