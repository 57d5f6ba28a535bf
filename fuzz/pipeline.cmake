# pipeline: control-message decoding and manifest parsing (both read bytes from outside).
if(TARGET cml_pipeline)
  cml_add_fuzzer(pipeline_control SOURCES ${CMAKE_CURRENT_LIST_DIR}/pipeline_control.cpp DEPS cml::pipeline)
  cml_add_fuzzer(pipeline_manifest SOURCES ${CMAKE_CURRENT_LIST_DIR}/pipeline_manifest.cpp DEPS cml::pipeline)
endif()
