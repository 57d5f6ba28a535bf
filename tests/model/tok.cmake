# Weight-file loaders (GGUF, safetensors, llama2.c) and tokenizers.
cml_add_test(model_weights_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/weights_test.cpp ${CMAKE_CURRENT_LIST_DIR}/gguf_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cpp ${CMAKE_CURRENT_LIST_DIR}/llama2c_checkpoint_test.cpp
  DEPS cml::model LABELS model)
target_compile_definitions(model_weights_test PRIVATE CML_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
cml_add_test(model_tokenizer_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cpp
  DEPS cml::model nlohmann_json::nlohmann_json LABELS model)
target_compile_definitions(model_tokenizer_test PRIVATE CML_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
