# Fuzz targets of the model module's parsers of outside bytes (weight files, tokenizer files, text).
set(model_fuzz_dir ${CMAKE_CURRENT_LIST_DIR}/model)
cml_add_fuzzer(gguf SOURCES ${model_fuzz_dir}/gguf_fuzz.cpp DEPS cml::model)
cml_add_fuzzer(safetensors SOURCES ${model_fuzz_dir}/safetensors_fuzz.cpp DEPS cml::model)
cml_add_fuzzer(llama2c SOURCES ${model_fuzz_dir}/llama2c_fuzz.cpp DEPS cml::model)
cml_add_fuzzer(tokenizer_bin SOURCES ${model_fuzz_dir}/tokenizer_bin_fuzz.cpp DEPS cml::model)
cml_add_fuzzer(gpt2_text SOURCES ${model_fuzz_dir}/gpt2_text_fuzz.cpp DEPS cml::model nlohmann_json::nlohmann_json)
