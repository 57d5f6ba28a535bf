# Model runtime: LinearBackend agreement, executor (Llama / GPT-2 layer ranges), sampler, reference models.
foreach(n linear_backend_agreement_test executor_test sampler_test reference_models_test)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${n}.cpp)
    cml_add_test(model_${n} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${n}.cpp DEPS cml::model)
    target_include_directories(model_${n} PRIVATE ${PROJECT_SOURCE_DIR})
  endif()
endforeach()
