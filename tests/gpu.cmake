# GPU tests (issue 5). Each tests/gpu/test_*.c checks a CUDA op (or the whole CUDA model) against its CPU twin.
#  - gpu_<name>: built with the real kernels; ctest label "gpu"; exit 77 (skipped) when there is no device.
#  - emu_<name>: the same test source linked against the CPU emulator of tests/gpu/emu (kernels/*.cu translated to
#    C++, CUDA threads as fibers, cuBLAS through OpenBLAS), with the small shapes only; label "emu". It checks the
#    kernels' logic where no GPU exists; it is not a GPU result (docs/cuda.md).
# Also builds sc_bench_kernels (bench/gpu/bench_kernels.c), the timing driver of bench/gpu-suite.
file(GLOB SC_GPU_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/gpu/test_*.c)

if(TARGET sc_kernels)
  foreach(src ${SC_GPU_TEST_SOURCES})
    get_filename_component(name ${src} NAME_WE)
    add_executable(gpu_${name} ${src})
    target_link_libraries(gpu_${name} PRIVATE ${SC_ALL_LIBS} sc_host)
    target_include_directories(gpu_${name} PRIVATE ${CMAKE_SOURCE_DIR})
    set_target_properties(gpu_${name} PROPERTIES LINKER_LANGUAGE CUDA)
    add_test(NAME gpu_${name} COMMAND gpu_${name} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(gpu_${name} PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 900)
  endforeach()
  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/gpu/bench_kernels.c)
    add_executable(sc_bench_kernels ${CMAKE_SOURCE_DIR}/bench/gpu/bench_kernels.c)
    target_link_libraries(sc_bench_kernels PRIVATE ${SC_ALL_LIBS} sc_host)
    target_include_directories(sc_bench_kernels PRIVATE ${CMAKE_SOURCE_DIR})
    set_target_properties(sc_bench_kernels PROPERTIES LINKER_LANGUAGE CUDA)
  endif()
  # the GEMM table (bench/gpu/gemm-table, a stage of bench/gpu-suite)
  add_executable(sc_bench_gemm ${CMAKE_SOURCE_DIR}/bench/gpu/bench_gemm.c)
  target_link_libraries(sc_bench_gemm PRIVATE ${SC_ALL_LIBS} sc_host)
  target_include_directories(sc_bench_gemm PRIVATE ${CMAKE_SOURCE_DIR})
  set_target_properties(sc_bench_gemm PROPERTIES LINKER_LANGUAGE CUDA)
endif()

# The emulator needs the CUDA headers (for the types) and a Python to translate the kernels; no GPU, no nvcc run.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(SC_HAVE_CUDA AND Python3_Interpreter_FOUND AND SC_GPU_TEST_SOURCES)
  enable_language(CXX)
  set(_emu_dir ${CMAKE_CURRENT_BINARY_DIR}/emu)
  set(_emu_tool ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/translate.py)
  file(GLOB _emu_cu CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/*.cu)
  set(_emu_cpp)
  foreach(cu ${_emu_cu})
    get_filename_component(name ${cu} NAME_WE)
    add_custom_command(OUTPUT ${_emu_dir}/${name}.cpp
                       COMMAND ${CMAKE_COMMAND} -E make_directory ${_emu_dir}
                       COMMAND ${Python3_EXECUTABLE} ${_emu_tool} ${cu} ${_emu_dir}/${name}.cpp
                       DEPENDS ${cu} ${_emu_tool} VERBATIM)
    list(APPEND _emu_cpp ${_emu_dir}/${name}.cpp)
  endforeach()
  # the racecheck (gpu/emu/emu_racecheck.cpp): the translated kernels carry GCC's ThreadSanitizer instrumentation,
  # a call before every load and store, whose entry points the emulator implements (no TSan runtime is linked)
  set(_emu_race_flags -fsanitize=thread)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND _emu_race_flags --param=tsan-instrument-func-entry-exit=0)
  endif()
  set_source_files_properties(${_emu_cpp} PROPERTIES COMPILE_OPTIONS "${_emu_race_flags}")
  set(_emu_rt ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/emu_runtime.cpp ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/emu_stream.cpp
      ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/emu_racecheck.cpp)
  add_library(sc_kernels_emu STATIC ${_emu_cpp} ${_emu_rt})
  target_include_directories(sc_kernels_emu PUBLIC ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu
                             ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(sc_kernels_emu PRIVATE -include ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/cuda_emu.h
                         -Wno-unknown-pragmas -O2)
  target_link_libraries(sc_kernels_emu PUBLIC PkgConfig::OPENBLAS)
  set_target_properties(sc_kernels_emu PROPERTIES CXX_STANDARD 17)
  # The emulator swaps the kernels library, nothing else: an executable with SC_KERNELS_EMU set links the same
  # host/ and stage libraries as the real build, and sc_host's link interface (CMakeLists.txt) gives it
  # sc_kernels_emu in place of kernels/*.cu and the CUDA runtime.
  foreach(src ${SC_GPU_TEST_SOURCES})
    get_filename_component(name ${src} NAME_WE)
    add_executable(emu_${name} ${src})
    target_link_libraries(emu_${name} PRIVATE ${SC_ALL_LIBS})
    set_target_properties(emu_${name} PROPERTIES LINKER_LANGUAGE CXX SC_KERNELS_EMU ON)
    add_test(NAME emu_${name} COMMAND emu_${name} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(emu_${name} PROPERTIES LABELS emu ENVIRONMENT "SC_GPU_TEST_QUICK=1;OMP_NUM_THREADS=2;XDG_CACHE_HOME=${CMAKE_CURRENT_BINARY_DIR}/emu-cache"
                         TIMEOUT 900)
  endforeach()
  # The racecheck's planted bugs. A mutated copy of a real kernel (translate.py --remove-barrier: decode
  # attention without its second __syncthreads) must be reported, the real one not; a missing cudaStreamWaitEvent
  # (race_event.c built with -DEMU_DROP_WAIT) must change results under the emulator's random stream order.
  add_custom_command(OUTPUT ${_emu_dir}/mutant_decode_attention.cpp
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${_emu_dir}
                     COMMAND ${Python3_EXECUTABLE} ${_emu_tool} ${CMAKE_SOURCE_DIR}/kernels/decode_attention.cu
                             ${_emu_dir}/mutant_decode_attention.cpp --remove-barrier 2
                     DEPENDS ${CMAKE_SOURCE_DIR}/kernels/decode_attention.cu ${_emu_tool} VERBATIM)
  set_source_files_properties(${_emu_dir}/mutant_decode_attention.cpp PROPERTIES COMPILE_OPTIONS "${_emu_race_flags}")
  # only the mutated file: linked before sc_kernels_emu, it provides every symbol of decode_attention.cpp, so the
  # real one is never pulled out of that archive
  add_library(sc_kernels_emu_mutant STATIC ${_emu_dir}/mutant_decode_attention.cpp)
  target_include_directories(sc_kernels_emu_mutant PUBLIC ${CMAKE_SOURCE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(sc_kernels_emu_mutant PRIVATE -include ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/cuda_emu.h
                         -Wno-unknown-pragmas -O2)
  target_link_libraries(sc_kernels_emu_mutant PUBLIC sc_kernels_emu)
  set_target_properties(sc_kernels_emu_mutant PROPERTIES CXX_STANDARD 17)
  foreach(variant clean mutant)
    add_executable(emu_race_barrier_${variant} ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/race_barrier.c)
    target_include_directories(emu_race_barrier_${variant} PRIVATE ${CMAKE_SOURCE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
    set_target_properties(emu_race_barrier_${variant} PROPERTIES LINKER_LANGUAGE CXX)
  endforeach()
  target_link_libraries(emu_race_barrier_clean PRIVATE sc_kernels_emu)
  target_link_libraries(emu_race_barrier_mutant PRIVATE sc_kernels_emu_mutant)
  add_test(NAME emu_racecheck_clean COMMAND emu_race_barrier_clean)
  add_test(NAME emu_racecheck_removed_barrier COMMAND emu_race_barrier_mutant --expect-race)
  foreach(variant wait nowait)
    add_executable(emu_race_event_${variant} ${CMAKE_CURRENT_SOURCE_DIR}/gpu/emu/race_event.c)
    target_include_directories(emu_race_event_${variant} PRIVATE ${CMAKE_SOURCE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
    target_link_libraries(emu_race_event_${variant} PRIVATE sc_kernels_emu)
    set_target_properties(emu_race_event_${variant} PROPERTIES LINKER_LANGUAGE CXX)
  endforeach()
  target_compile_definitions(emu_race_event_nowait PRIVATE EMU_DROP_WAIT=1)
  add_test(NAME emu_racecheck_event_wait COMMAND emu_race_event_wait)
  add_test(NAME emu_racecheck_removed_event_wait COMMAND emu_race_event_nowait)
  set_tests_properties(emu_racecheck_clean emu_racecheck_removed_barrier emu_racecheck_event_wait
                       emu_racecheck_removed_event_wait PROPERTIES LABELS emu TIMEOUT 120)
  # the timing driver on the emulator: only to run its code paths at a small T (its times mean nothing)
  add_executable(emu_sc_bench_kernels ${CMAKE_SOURCE_DIR}/bench/gpu/bench_kernels.c)
  target_link_libraries(emu_sc_bench_kernels PRIVATE sc_host)
  set_target_properties(emu_sc_bench_kernels PROPERTIES LINKER_LANGUAGE CXX SC_KERNELS_EMU ON EXCLUDE_FROM_ALL ON)
  # the GEMM table rehearsed on the emulator at tiny shapes (its times mean nothing): the stage script and the
  # driver's every path run, so bench/gpu-suite does not meet them first on a GPU
  add_executable(emu_sc_bench_gemm ${CMAKE_SOURCE_DIR}/bench/gpu/bench_gemm.c)
  target_link_libraries(emu_sc_bench_gemm PRIVATE sc_host)
  set_target_properties(emu_sc_bench_gemm PROPERTIES LINKER_LANGUAGE CXX SC_KERNELS_EMU ON)
  add_test(NAME emu_gemm_table COMMAND ${CMAKE_SOURCE_DIR}/bench/gpu/gemm-table $<TARGET_FILE:emu_sc_bench_gemm>
                                       ${CMAKE_CURRENT_BINARY_DIR}/gemm-table --T 24 --reps 1 --vocab 200
                                       --hidden 40 --ffn 56 --qkv 72)
  set_tests_properties(emu_gemm_table PROPERTIES LABELS emu TIMEOUT 300)
  # the classifier and KD GEMMs (strided dlogits, FP32 logits) with each candidate forced
  foreach(t test_classifier test_kd_loss)
    foreach(algo sgemm simt)
      add_test(NAME emu_${t}_${algo} COMMAND emu_${t} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
      set_tests_properties(emu_${t}_${algo} PROPERTIES LABELS emu TIMEOUT 900
                           ENVIRONMENT "SC_GPU_TEST_QUICK=1;OMP_NUM_THREADS=2;SMALLCODER_GEMM=${algo};XDG_CACHE_HOME=${CMAKE_CURRENT_BINARY_DIR}/emu-cache")
    endforeach()
  endforeach()
  # smallcoder itself on the emulator, for `train --device cuda` end to end through the trainer
  # (gpu/train_cuda_emu.sh) and the inference commands through the CUDA engine (gpu/infer_cuda_emu.sh)
  if(TARGET sc_train AND TARGET sc_distill)
    add_executable(emu_smallcoder ${CMAKE_SOURCE_DIR}/smallcoder.c)
    target_link_libraries(emu_smallcoder PRIVATE ${SC_ALL_LIBS})
    set_target_properties(emu_smallcoder PROPERTIES LINKER_LANGUAGE CXX SC_KERNELS_EMU ON)
    add_test(NAME emu_train_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/gpu/train_cuda_emu.sh
                                        $<TARGET_FILE:emu_smallcoder> $<TARGET_FILE:train_make_shards>)
    set_tests_properties(emu_train_cli PROPERTIES LABELS emu TIMEOUT 900)
    # `train --lora --device cuda` through the trainer (gpu/train_lora_cuda_emu.sh)
    add_test(NAME emu_train_lora_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/gpu/train_lora_cuda_emu.sh
                                             $<TARGET_FILE:emu_smallcoder> $<TARGET_FILE:train_make_shards>)
    set_tests_properties(emu_train_lora_cli PROPERTIES LABELS emu TIMEOUT 900)
    # complete / serve / infer-bench --device cuda through the CUDA inference engine (gpu/infer_cuda_emu.sh)
    add_test(NAME emu_infer_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/gpu/infer_cuda_emu.sh
                                        $<TARGET_FILE:emu_smallcoder> ${CMAKE_SOURCE_DIR}
                                        $<TARGET_FILE:lora_test_adapter>)
    set_tests_properties(emu_infer_cli PROPERTIES LABELS emu TIMEOUT 900)
    # train --model / eval --device cuda on open-model-shaped directories: biases, rope scaling, untied heads,
    # padded vocabularies; resume on the same and on the other engine (gpu/open_models_cuda_emu.sh, issue 17)
    add_test(NAME emu_open_models_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/gpu/open_models_cuda_emu.sh
                                              $<TARGET_FILE:emu_smallcoder> $<TARGET_FILE:train_make_shards>
                                              ${CMAKE_SOURCE_DIR})
    set_tests_properties(emu_open_models_cli PROPERTIES LABELS emu TIMEOUT 900 SKIP_RETURN_CODE 77)
  endif()
endif()
