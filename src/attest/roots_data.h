// Embedded vendor certificates (see roots_data.cpp). Use roots.h, which parses and checks the pins.
#pragma once

#include <string_view>

namespace cml::attest::roots_data {

struct PinnedCert {
  std::string_view name;
  std::string_view sha256_hex;  // SHA-256 of the DER encoding, lower-case hex
  std::string_view pem;
};

extern const PinnedCert kAwsNitroRootG1;
extern const PinnedCert kIntelSgxRootCa;
extern const PinnedCert kAmdArkMilan, kAmdAskMilan, kAmdAsvkMilan;
extern const PinnedCert kAmdArkGenoa, kAmdAskGenoa, kAmdAsvkGenoa;
extern const PinnedCert kAmdArkTurin, kAmdAskTurin, kAmdAsvkTurin;

}  // namespace cml::attest::roots_data
