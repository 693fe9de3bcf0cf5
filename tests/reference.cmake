# Independent check of the CPU model (issue 3 item 7): `smallcoder forward` loss, logits and every gradient against
# a float64 PyTorch Llama written from the equations (tests/reference/llama_ref.py). Debian's python3 has torch;
# the pyenv python3 on PATH does not, hence the absolute path. Skips (77) only when torch/numpy are missing.
add_test(NAME reference_forward
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/reference/run_check.py $<TARGET_FILE:smallcoder>)
set_tests_properties(reference_forward PROPERTIES LABELS "cpu;reference" SKIP_RETURN_CODE 77 TIMEOUT 600)
