# net: libFuzzer harnesses for every parser of bytes from the wire.
cml_add_fuzzer(net_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/net/frame_fuzz.cpp DEPS cml::net)
cml_add_fuzzer(net_tensor SOURCES ${CMAKE_CURRENT_LIST_DIR}/net/tensor_fuzz.cpp DEPS cml::net)
cml_add_fuzzer(net_handshake SOURCES ${CMAKE_CURRENT_LIST_DIR}/net/handshake_fuzz.cpp DEPS cml::net)
cml_add_fuzzer(net_channel SOURCES ${CMAKE_CURRENT_LIST_DIR}/net/channel_fuzz.cpp DEPS cml::net cml::attest)
cml_add_fuzzer(attest_mock SOURCES ${CMAKE_CURRENT_LIST_DIR}/net/mock_evidence_fuzz.cpp DEPS cml::attest)
