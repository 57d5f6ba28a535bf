# Attestation parsers: COSE/CBOR (Nitro), SEV-SNP report + certificate table, TDX quote.
foreach(target cose snp_report tdx_quote)
  cml_add_fuzzer(${target} SOURCES ${CMAKE_CURRENT_LIST_DIR}/attest_fuzz.cpp DEPS cml::attest cml::crypto)
endforeach()
target_compile_definitions(fuzz_cose PRIVATE CML_FUZZ_TARGET=1)
target_compile_definitions(fuzz_snp_report PRIVATE CML_FUZZ_TARGET=2)
target_compile_definitions(fuzz_tdx_quote PRIVATE CML_FUZZ_TARGET=3)
