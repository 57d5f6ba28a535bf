// The manifest's per-stage offload object: every field, its default, and hostile values.
#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "pipeline/fake_executor.h"
#include "pipeline/manifest.h"
#include "support/test_support.h"

namespace cml::pipeline {
namespace {

using nlohmann::json;

json sample_json() {
  FakeModelConfig c;
  c.layers = 4;
  return json::parse(manifest_to_json(fake_model_manifest(
      c, 2, {{"tcp://127.0.0.1:9000", "tcp://127.0.0.1:9001"}, {"tcp://127.0.0.1:9010", "tcp://127.0.0.1:9011"}})));
}

json with_offload(const json& offload) {
  json j = sample_json();
  j["stages"][1]["offload"] = offload;
  return j;
}

json groupcover(std::initializer_list<std::pair<const std::string, json>> extra = {}) {
  json o = {{"kind", "groupcover"}, {"worker", "tcp://10.0.0.2:7000"}};
  for (const auto& [k, v] : extra) o[k] = v;
  return o;
}

Result<Offload> parse_offload_of(const json& offload) {
  auto m = parse_manifest(with_offload(offload).dump());
  if (!m) return m.status();
  return m->stages[1].offload;
}

std::string error_of(const json& offload) {
  auto r = parse_offload_of(offload);
  EXPECT_FALSE(r.is_ok()) << offload.dump();
  if (r.is_ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

#define EXPECT_OFFLOAD_ERROR(offload, text)                                                     \
  do {                                                                                          \
    const std::string e_ = error_of(offload);                                                   \
    EXPECT_NE(e_.find(text), std::string::npos) << "error: '" << e_ << "', expected: " << text; \
  } while (0)

TEST(ManifestOffload, DefaultsWhenOnlyKindAndWorkerAreGiven) {
  auto o = parse_offload_of(groupcover());
  CML_ASSERT_OK(o);
  EXPECT_EQ(o->kind, Offload::Kind::kGroupCover);
  EXPECT_EQ(o->worker->to_string(), "tcp://10.0.0.2:7000");
  EXPECT_EQ(o->secrets_dir, "");  // session mode
  EXPECT_FALSE(o->freivalds);
  EXPECT_EQ(o->on_mismatch, Offload::OnMismatch::kError);
  EXPECT_FALSE(o->timeout_s.has_value());
  // Absent offload and {"kind":"none"} are the same.
  auto m = parse_manifest(sample_json().dump());
  CML_ASSERT_OK(m);
  EXPECT_EQ(m->stages[0].offload, Offload{});
  auto none = parse_offload_of({{"kind", "none"}});
  CML_ASSERT_OK(none);
  EXPECT_EQ(*none, Offload{});
}

TEST(ManifestOffload, EveryFieldParsesAndRoundTrips) {
  auto o = parse_offload_of(
      groupcover({{"secrets", "/secrets/stage1"}, {"freivalds", true}, {"on_mismatch", "local"}, {"timeout_s", 2.5}}));
  CML_ASSERT_OK(o);
  EXPECT_EQ(o->secrets_dir, "/secrets/stage1");
  EXPECT_TRUE(o->freivalds);
  EXPECT_EQ(o->on_mismatch, Offload::OnMismatch::kLocal);
  ASSERT_TRUE(o->timeout_s.has_value());
  EXPECT_DOUBLE_EQ(*o->timeout_s, 2.5);
  // Integer seconds are accepted too.
  auto whole = parse_offload_of(groupcover({{"timeout_s", 30}}));
  CML_ASSERT_OK(whole);
  EXPECT_DOUBLE_EQ(*whole->timeout_s, 30.0);
  // The canonical form keeps every field and parses back to the same manifest (same digest).
  for (const json& off : {groupcover(), groupcover({{"secrets", "/s"}, {"freivalds", true}, {"timeout_s", 0.1}}),
                          groupcover({{"freivalds", true}, {"on_mismatch", "local"}, {"timeout_s", 30}})}) {
    auto m = parse_manifest(with_offload(off).dump());
    CML_ASSERT_OK(m);
    const std::string text = manifest_to_json(*m);
    auto back = parse_manifest(text);
    CML_ASSERT_OK(back);
    EXPECT_EQ(back->stages[1].offload, m->stages[1].offload);
    EXPECT_EQ(manifest_to_json(*back), text);
    EXPECT_EQ(manifest_digest(*back), manifest_digest(*m));
  }
  // kind none stays {"kind":"none"} in the canonical form (digests of manifests without offload are
  // unchanged).
  auto m = parse_manifest(sample_json().dump());
  CML_ASSERT_OK(m);
  EXPECT_EQ(json::parse(manifest_to_json(*m))["stages"][0]["offload"], json({{"kind", "none"}}));
}

TEST(ManifestOffload, OffloadChangesTheDigest) {
  auto a = parse_manifest(with_offload(groupcover()).dump());
  auto b = parse_manifest(with_offload(groupcover({{"freivalds", true}})).dump());
  auto c = parse_manifest(sample_json().dump());
  CML_ASSERT_OK(a);
  CML_ASSERT_OK(b);
  CML_ASSERT_OK(c);
  EXPECT_NE(manifest_digest(*a), manifest_digest(*b));
  EXPECT_NE(manifest_digest(*a), manifest_digest(*c));
}

TEST(ManifestOffload, RejectsBadKindAndWorker) {
  EXPECT_OFFLOAD_ERROR(json({{"kind", "gpu"}}), "stages[1].offload.kind: 'gpu' is not none or groupcover");
  EXPECT_OFFLOAD_ERROR(json({{"kind", 1}}), "stages[1].offload.kind");
  EXPECT_OFFLOAD_ERROR(json::object(), "stages[1].offload.kind");
  EXPECT_OFFLOAD_ERROR(json({{"kind", "groupcover"}}), "stages[1].offload.worker");
  EXPECT_OFFLOAD_ERROR(groupcover({{"worker", "vsock://3:7000"}}),
                       "stages[1].offload.worker: the worker is reached over tcp://");
  EXPECT_OFFLOAD_ERROR(groupcover({{"worker", "mem://w"}}), "stages[1].offload.worker");
  EXPECT_OFFLOAD_ERROR(groupcover({{"worker", "tcp://10.0.0.2"}}), "stages[1].offload.worker");
  EXPECT_OFFLOAD_ERROR(groupcover({{"worker", "tcp://10.0.0.2:70000"}}), "stages[1].offload.worker");
  EXPECT_OFFLOAD_ERROR(groupcover({{"worker", 7000}}), "stages[1].offload.worker");
  EXPECT_OFFLOAD_ERROR(groupcover({{"worker", "tcp://" + std::string(600, 'a') + ":1"}}), "stages[1].offload.worker");
  // The worker cannot be the stage's own listener.
  EXPECT_OFFLOAD_ERROR(groupcover({{"worker", "tcp://127.0.0.1:9011"}}), "is the stage's own endpoint");
}

TEST(ManifestOffload, RejectsBadSecrets) {
  EXPECT_OFFLOAD_ERROR(groupcover({{"secrets", 5}}), "stages[1].offload.secrets");
  EXPECT_OFFLOAD_ERROR(groupcover({{"secrets", nullptr}}), "stages[1].offload.secrets");
  EXPECT_OFFLOAD_ERROR(groupcover({{"secrets", std::string(5000, 'd')}}),
                       "stages[1].offload.secrets: longer than 4096");
  EXPECT_OFFLOAD_ERROR(groupcover({{"secrets", std::string("/a\0b", 4)}}),
                       "stages[1].offload.secrets: control character");
  EXPECT_OFFLOAD_ERROR(groupcover({{"secrets", "/a\nb"}}), "stages[1].offload.secrets: control character");
  CML_EXPECT_OK(parse_offload_of(groupcover({{"secrets", ""}})));  // empty: session mode
  CML_EXPECT_OK(parse_offload_of(groupcover({{"secrets", "relative/dir"}})));
}

TEST(ManifestOffload, RejectsBadFreivaldsAndOnMismatch) {
  EXPECT_OFFLOAD_ERROR(groupcover({{"freivalds", "yes"}}), "stages[1].offload.freivalds");
  EXPECT_OFFLOAD_ERROR(groupcover({{"freivalds", 1}}), "stages[1].offload.freivalds");
  EXPECT_OFFLOAD_ERROR(groupcover({{"freivalds", true}, {"on_mismatch", "ignore"}}),
                       "stages[1].offload.on_mismatch: 'ignore' is not error or local");
  EXPECT_OFFLOAD_ERROR(groupcover({{"freivalds", true}, {"on_mismatch", "LOCAL"}}), "stages[1].offload.on_mismatch");
  EXPECT_OFFLOAD_ERROR(groupcover({{"on_mismatch", false}}), "stages[1].offload.on_mismatch");
  EXPECT_OFFLOAD_ERROR(groupcover({{"freivalds", true}, {"on_mismatch", std::string(100, 'x')}}),
                       "stages[1].offload.on_mismatch");
  // A fallback for checks that never run is a configuration mistake.
  EXPECT_OFFLOAD_ERROR(groupcover({{"on_mismatch", "local"}}), "\"local\" needs freivalds: true");
  EXPECT_OFFLOAD_ERROR(groupcover({{"freivalds", false}, {"on_mismatch", "local"}}), "needs freivalds: true");
  CML_EXPECT_OK(parse_offload_of(groupcover({{"on_mismatch", "error"}})));
}

TEST(ManifestOffload, RejectsBadTimeouts) {
  for (const json& t : {json(0), json(-1), json(-0.0), json(0.0001), json(86400), json(1e9), json(1e300)}) {
    EXPECT_OFFLOAD_ERROR(groupcover({{"timeout_s", t}}), "stages[1].offload.timeout_s: must be at least 0.001");
  }
  for (const json& t : {json("10"), json(true), json(nullptr), json::array({1})}) {
    EXPECT_OFFLOAD_ERROR(groupcover({{"timeout_s", t}}), "stages[1].offload.timeout_s: expected a number");
  }
  // A literal too large for a double parses to infinity (or is refused by the parser): never accepted.
  std::string text = with_offload(groupcover()).dump();
  const std::string key = "\"worker\":\"tcp://10.0.0.2:7000\"";
  text.replace(text.find(key), key.size(), key + ",\"timeout_s\":1e999");
  EXPECT_FALSE(parse_manifest(text).is_ok());
  CML_EXPECT_OK(parse_offload_of(groupcover({{"timeout_s", 0.001}})));
  CML_EXPECT_OK(parse_offload_of(groupcover({{"timeout_s", 86399.5}})));
}

TEST(ManifestOffload, KindNoneTakesNoSettings) {
  for (const char* k : {"worker", "secrets", "freivalds", "on_mismatch", "timeout_s"}) {
    json o = {{"kind", "none"}};
    o[k] = std::string(k) == "freivalds" ? json(false) : json("tcp://10.0.0.2:7000");
    EXPECT_OFFLOAD_ERROR(o, std::string("stages[1].offload.") + k + ": kind \"none\" takes no " + k);
  }
}

TEST(ManifestOffload, TheOperatorKeyIsNeverInTheManifest) {
  for (const char* k : {"key", "key_file", "operator_key"}) {
    EXPECT_OFFLOAD_ERROR(groupcover({{"secrets", "/s"}, {k, "/keys/op.key"}}), "--offload-key-file");
  }
  EXPECT_OFFLOAD_ERROR(groupcover({{"mask_scale", 4}}), "stages[1].offload.mask_scale: unknown field");
  EXPECT_OFFLOAD_ERROR(json("groupcover"), "stages[1].offload");
}

TEST(ManifestOffload, ValidateCatchesManifestsBuiltInCode) {
  auto m = parse_manifest(sample_json().dump());
  CML_ASSERT_OK(m);
  Manifest bad = *m;
  bad.stages[1].offload.kind = Offload::Kind::kGroupCover;  // no worker
  EXPECT_NE(validate_manifest(bad).message().find("stages[1].offload.worker: missing"), std::string::npos);
  bad.stages[1].offload.worker = parse_endpoint("tcp://10.0.0.2:7000").value();
  Status st = validate_manifest(bad);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  bad.stages[1].offload.timeout_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(validate_manifest(bad).message().find("timeout_s"), std::string::npos);
  bad = *m;
  bad.stages[0].offload.freivalds = true;  // kind none
  EXPECT_NE(validate_manifest(bad).message().find("stages[0].offload: kind \"none\" takes no other setting"),
            std::string::npos);
}

}  // namespace
}  // namespace cml::pipeline
