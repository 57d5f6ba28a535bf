#include "wycheproof.h"

#include <iostream>
#include <sstream>

namespace cml::testing::wycheproof {

std::optional<Json> load(const std::string& path) {
  auto bytes = read_file(path, size_t{16} << 20);
  if (!bytes.is_ok()) {
    ADD_FAILURE() << path << ": " << bytes.status().to_string();
    return std::nullopt;
  }
  Json root = Json::parse(bytes.value().begin(), bytes.value().end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object() || !root.contains("testGroups")) {
    ADD_FAILURE() << path << ": not a Wycheproof vector file";
    return std::nullopt;
  }
  return root;
}

Bytes hex(const Json& field) {
  if (!field.is_string()) {
    ADD_FAILURE() << "expected a hex string, got " << field.dump();
    return {};
  }
  auto r = from_hex(field.get<std::string>());
  if (!r.is_ok()) {
    ADD_FAILURE() << "bad hex in vector: " << r.status().to_string();
    return {};
  }
  return std::move(r).value();
}

bool has_flag(const Json& test, std::string_view flag) {
  if (!test.contains("flags")) return false;
  for (const auto& f : test["flags"])
    if (f.get<std::string>() == flag) return true;
  return false;
}

std::string label(const Json& test) {
  // A stream rather than string concatenation: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
  std::ostringstream os;
  os << "tcId " << test.value("tcId", -1) << " (" << test.value("comment", "") << ") [";
  if (test.contains("flags"))
    for (size_t i = 0; i < test["flags"].size(); ++i) os << (i ? "," : "") << test["flags"][i].get<std::string>();
  os << "]";
  return os.str();
}

Expected expected(const Json& test) {
  const std::string r = test.at("result").get<std::string>();
  if (r == "valid") return Expected::kValid;
  if (r == "invalid") return Expected::kInvalid;
  EXPECT_EQ(r, "acceptable") << label(test);
  return Expected::kAcceptable;
}

void Tally::count(const Json& test) {
  switch (expected(test)) {
    case Expected::kValid:
      ++valid;
      break;
    case Expected::kInvalid:
      ++invalid;
      break;
    case Expected::kAcceptable:
      ++acceptable;
      break;
  }
}

void expect_all_checked(const std::string& name, const Json& root, const Tally& tally) {
  const size_t declared = root.value("numberOfTests", size_t{0});
  std::cout << "[wycheproof] " << name << ": " << tally.total() << " vectors checked (valid " << tally.valid
            << ", invalid " << tally.invalid << ", acceptable " << tally.acceptable << "; "
            << tally.documented_deviations << " documented deviations) of " << declared << " in the file\n";
  ::testing::Test::RecordProperty("vectors_checked", static_cast<int>(tally.total()));
  ::testing::Test::RecordProperty("documented_deviations", static_cast<int>(tally.documented_deviations));
  EXPECT_GT(tally.total(), 0u) << name;
  EXPECT_EQ(tally.total(), declared) << name << ": not every vector was checked";
}

}  // namespace cml::testing::wycheproof
