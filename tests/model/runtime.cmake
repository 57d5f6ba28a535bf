# Model runtime: LinearBackend agreement, executor (Llama / GPT-2 layer ranges), sampler, reference models.
foreach(n linear_backend_agreement_test executor_test sampler_test reference_models_test)
  cml_add_test(model_${n} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${n}.cpp DEPS cml::model LABELS model)
  target_include_directories(model_${n} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(model_${n} PRIVATE CML_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endforeach()

# The cml binary itself.
if(TARGET cml)
  cml_add_test(model_generate_cli_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/generate_cli_test.cpp DEPS cml::base LABELS model)
  target_include_directories(model_generate_cli_test PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(model_generate_cli_test PRIVATE CML_BINARY="$<TARGET_FILE:cml>")
  add_dependencies(model_generate_cli_test cml)
endif()

# The benchmark command runs end to end (small sizes; figures are not checked: no timing assertions).
if(TARGET cml)
  add_test(NAME cml_bench_model_quick COMMAND cml bench model --quick --json)
  set_tests_properties(cml_bench_model_quick PROPERTIES LABELS model TIMEOUT 300)
endif()
