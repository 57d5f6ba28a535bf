# Fuzz targets of the model runtime: hostile weight files through the executor, config.json.
cml_add_fuzzer(model_executor SOURCES ${CMAKE_CURRENT_LIST_DIR}/runtime/model_executor_fuzz.cpp DEPS cml::model)
cml_add_fuzzer(hf_config_json SOURCES ${CMAKE_CURRENT_LIST_DIR}/runtime/hf_config_json_fuzz.cpp DEPS cml::model)
