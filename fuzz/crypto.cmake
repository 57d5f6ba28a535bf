# crypto: the parsers of outside bytes are the ECDSA signature (DER / raw) and public-key (SPKI, SEC1
# point) decoders that attestation documents feed.
cml_add_fuzzer(crypto_ecdsa SOURCES ${CMAKE_CURRENT_LIST_DIR}/crypto_ecdsa_fuzz.cpp DEPS cml::crypto)
