# GroupCover parsers of untrusted bytes: the worker's request decoder and the bundle parsers.
if(TARGET cml_groupcover)
  cml_add_fuzzer(groupcover_request SOURCES ${CMAKE_CURRENT_LIST_DIR}/groupcover_request.cpp DEPS cml::groupcover)
  cml_add_fuzzer(groupcover_bundle SOURCES ${CMAKE_CURRENT_LIST_DIR}/groupcover_bundle.cpp DEPS cml::groupcover)
endif()
