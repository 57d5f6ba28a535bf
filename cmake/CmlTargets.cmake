# Helpers shared by every module: warnings, sanitizers, and the add-module/test/fuzzer functions.

set(CML_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers)

if(CML_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(CML_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CML_FUZZ needs clang (libFuzzer)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# cml_add_module(<name> SOURCES ... DEPS ...): library target cml_<name>, alias cml::<name>.
# Public headers live beside the sources; include them as "<module>/<file>.h".
function(cml_add_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(cml_${name} STATIC ${M_SOURCES})
  add_library(cml::${name} ALIAS cml_${name})
  target_include_directories(cml_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(cml_${name} PRIVATE ${CML_WARNINGS})
  target_link_libraries(cml_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
endfunction()

# cml_add_test(<name> SOURCES ... DEPS ... [LABELS ...]): one GoogleTest binary registered with CTest.
function(cml_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${CML_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_DEPS} cml_test_support GTest::gtest_main GTest::gmock)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  # PROPERTIES is a flat key/value list: an empty LABELS value would vanish and shift every later pair
  # (LABELS would become "ENVIRONMENT" and the environment would be lost), so add pairs only when set.
  set(props TIMEOUT ${T_TIMEOUT} ENVIRONMENT "CML_TESTDATA_DIR=${CML_TESTDATA_DIR}")
  if(T_LABELS)
    list(APPEND props LABELS "${T_LABELS}")
  endif()
  # Listing runs the binary at ctest time; on a loaded 2-core machine the 5 s default can pass.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()

# cml_add_fuzzer(<name> SOURCES ... DEPS ...): a libFuzzer target when CML_FUZZ is on. Otherwise the same
# LLVMFuzzerTestOneInput is linked with a replay driver (fuzz/replay_main.cpp) that runs it on the seed
# corpus and on seeded random mutations, so every build exercises the harness. Either way CTest runs it
# as fuzz_smoke.<name> (label "fuzz"). The seed corpus fuzz/corpus/<name>/ must exist and is never
# written to: libFuzzer keeps what it finds in build/<preset>/fuzz/found/<name>/ and writes crash
# artifacts to build/<preset>/fuzz/artifacts/.
function(cml_add_fuzzer name)
  cmake_parse_arguments(F "" "" "SOURCES;DEPS" ${ARGN})
  set(corpus ${PROJECT_SOURCE_DIR}/fuzz/corpus/${name})
  if(NOT IS_DIRECTORY ${corpus})
    message(FATAL_ERROR "fuzz target ${name}: seed corpus folder ${corpus} is missing")
  endif()
  add_executable(fuzz_${name} ${F_SOURCES})
  target_compile_options(fuzz_${name} PRIVATE ${CML_WARNINGS})
  target_link_libraries(fuzz_${name} PRIVATE ${F_DEPS})
  if(CML_FUZZ)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    set(found ${PROJECT_BINARY_DIR}/fuzz/found/${name})
    set(artifacts ${PROJECT_BINARY_DIR}/fuzz/artifacts)
    file(MAKE_DIRECTORY ${found} ${artifacts})
    # The first corpus folder is the one libFuzzer writes to; the seed corpus comes second (read only).
    add_test(NAME fuzz_smoke.${name}
      COMMAND fuzz_${name} -max_total_time=15 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
              -artifact_prefix=${artifacts}/${name}- ${found} ${corpus})
  else()
    target_link_libraries(fuzz_${name} PRIVATE cml_fuzz_replay)
    add_test(NAME fuzz_smoke.${name} COMMAND fuzz_${name} ${corpus} --iterations=20000)
  endif()
  set_tests_properties(fuzz_smoke.${name} PROPERTIES LABELS fuzz TIMEOUT 300
    ENVIRONMENT "CML_TESTDATA_DIR=${CML_TESTDATA_DIR}")
endfunction()
