# Build settings for sparq's own tests, benchmarks and tools (never applied to sparq::sparq users).
add_library(sparq_internal INTERFACE)
target_link_libraries(sparq_internal INTERFACE sparq::sparq)
target_compile_options(sparq_internal INTERFACE -Wall -Wextra -Wpedantic -Wshadow)
if(SPARQ_USE_OPENMP)
  find_package(OpenMP)
  if(OpenMP_CXX_FOUND)
    target_link_libraries(sparq_internal INTERFACE OpenMP::OpenMP_CXX)
  endif()
endif()
if(SPARQ_SANITIZE)
  target_compile_options(sparq_internal INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                  -fno-sanitize-recover=undefined)
  target_link_options(sparq_internal INTERFACE -fsanitize=address,undefined)
endif()

# ISA flag sets. Tests and benchmarks pick one; kernels select xsimd archs at compile time and the
# tests check at run time (__builtin_cpu_supports) which of the compiled targets the CPU can run.
set(SPARQ_FLAGS_SSE2 "")
set(SPARQ_FLAGS_AVX2 -mavx2 -mfma -mf16c)
set(SPARQ_FLAGS_AVX512 -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c)

# Root of the shared real data (models, text). CI always has it beside the project root.
set(SPARQ_SHARED_DATA "${PROJECT_SOURCE_DIR}/../shared/data" CACHE PATH "Path to shared/data")
get_filename_component(SPARQ_SHARED_DATA "${SPARQ_SHARED_DATA}" ABSOLUTE)
