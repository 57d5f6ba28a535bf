#include "pipeline/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "pipeline/fake_executor.h"
#include "support/test_support.h"

namespace cml::pipeline {
namespace {

Manifest sample() {
  FakeModelConfig c;
  c.layers = 6;
  return fake_model_manifest(c, 3,
                             {{"tcp://127.0.0.1:9000", "tcp://127.0.0.1:9001"},
                              {"tcp://127.0.0.1:9010", "tcp://127.0.0.1:9011"},
                              {"vsock://16:5000", "vsock://16:5001"}});
}

nlohmann::json sample_json() {
  return nlohmann::json::parse(manifest_to_json(sample()));
}

std::string parse_error(const nlohmann::json& j) {
  auto r = parse_manifest(j.dump());
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? "" : r.status().message();
}

TEST(Manifest, RoundTripsThroughJson) {
  Manifest m = sample();
  auto text = manifest_to_json(m);
  auto back = parse_manifest(text);
  CML_ASSERT_OK(back);
  EXPECT_EQ(manifest_to_json(*back), text);
  EXPECT_EQ(manifest_digest(*back), manifest_digest(m));
  EXPECT_EQ(back->stages.size(), 3u);
  EXPECT_EQ(back->stages[1].layer_begin, 2u);
  EXPECT_EQ(back->stages[2].control.kind, Endpoint::Kind::kVsock);
  EXPECT_EQ(back->stages[2].control.cid, 16u);
}

TEST(Manifest, BalancesLayers) {
  auto r = balance_layers(5, 3);
  CML_ASSERT_OK(r);
  std::vector<std::pair<uint32_t, uint32_t>> want = {{0, 2}, {2, 4}, {4, 5}};
  EXPECT_EQ(*r, want);
  EXPECT_FALSE(balance_layers(2, 3).is_ok());
  EXPECT_FALSE(balance_layers(2, 0).is_ok());
  EXPECT_FALSE(balance_layers(4, 2, 0).is_ok());
  // Sizes differ by at most one, the extra layers going to the earliest stages.
  std::vector<std::pair<uint32_t, uint32_t>> ten = {{0, 3}, {3, 6}, {6, 8}, {8, 10}};
  EXPECT_EQ(balance_layers(10, 4).value(), ten);
  std::vector<std::pair<uint32_t, uint32_t>> each = {{0, 1}, {1, 2}, {2, 3}};
  EXPECT_EQ(balance_layers(3, 3, 7, 1000).value(), each);  // one layer each, however heavy the head
}

// GPT-2 124M: 12 layers of 7,077,888 weights and a 38,597,376-weight head. Four layers per stage left the
// last stage 2.4 times as heavy as the others; weighted, the bottleneck falls from 66.9 M to 45.7 M.
TEST(Manifest, BalancesTheOutputHeadLikeLayers) {
  model::ModelConfig c;
  c.arch = model::Arch::kGpt2;
  c.vocab = 50257;
  c.dim = 768;
  c.n_layers = 12;
  c.n_heads = c.n_kv_heads = 12;
  c.head_dim = 64;
  c.ffn_dim = 3072;
  EXPECT_EQ(c.layer_weight_count(), 7077888);
  EXPECT_EQ(c.head_weight_count(), 38597376);
  auto r = balance_layers(12, 3, c.layer_weight_count(), c.head_weight_count());
  CML_ASSERT_OK(r);
  std::vector<std::pair<uint32_t, uint32_t>> want = {{0, 6}, {6, 11}, {11, 12}};
  EXPECT_EQ(*r, want);
  // Two stages: the head (5.45 layers) sits best beside 3 layers, not 6.
  std::vector<std::pair<uint32_t, uint32_t>> two = {{0, 9}, {9, 12}};
  EXPECT_EQ(balance_layers(12, 2, c.layer_weight_count(), c.head_weight_count()).value(), two);
  // Llama's gate/up/down and grouped K/V projections: a stories260K-sized model, whose head is lighter than one layer.
  model::ModelConfig l;
  l.vocab = 512;
  l.dim = 64;
  l.n_heads = 8;
  l.n_kv_heads = 4;
  l.head_dim = 8;
  l.ffn_dim = 172;
  EXPECT_EQ(l.layer_weight_count(), 64 * (64 + 2 * 32) + 64 * 64 + 3 * 64 * 172);
  std::vector<std::pair<uint32_t, uint32_t>> five = {{0, 2}, {2, 4}, {4, 5}};
  EXPECT_EQ(balance_layers(5, 3, l.layer_weight_count(), l.head_weight_count()).value(), five);
}

TEST(Manifest, RejectsNonContiguousLayers) {
  auto j = sample_json();
  j["stages"][1]["layers"] = {3, 4};
  EXPECT_NE(parse_error(j).find("stages[1].layers: starts at 3, expected 2"), std::string::npos);
}

TEST(Manifest, RejectsLayersNotCoveringTheModel) {
  auto j = sample_json();
  j["model"]["n_layers"] = 7;
  EXPECT_NE(parse_error(j).find("model has 7"), std::string::npos);
}

TEST(Manifest, RejectsEmptyRangeAndWrongIndex) {
  auto j = sample_json();
  j["stages"][0]["layers"] = {0, 0};
  EXPECT_NE(parse_error(j).find("stages[0].layers"), std::string::npos);
  j = sample_json();
  j["stages"][2]["index"] = 5;
  EXPECT_NE(parse_error(j).find("stages[2].index"), std::string::npos);
}

TEST(Manifest, RejectsBadWeightHash) {
  auto j = sample_json();
  j["stages"][0]["weights"]["embed"] = "abc";
  EXPECT_NE(parse_error(j).find("stages[0].weights.embed"), std::string::npos);
  j = sample_json();
  j["stages"][0]["weights"] = nlohmann::json::object();
  EXPECT_NE(parse_error(j).find("stages[0].weights"), std::string::npos);
}

TEST(Manifest, RejectsBadAttestation) {
  auto j = sample_json();
  j["stages"][1]["attestation"]["type"] = "sgx";
  EXPECT_NE(parse_error(j).find("stages[1].attestation.type"), std::string::npos);
  j = sample_json();
  j["stages"][1]["attestation"]["expected_measurements"] = {{"pcr0", "zz"}};
  EXPECT_NE(parse_error(j).find("expected_measurements.pcr0"), std::string::npos);
  j = sample_json();
  j["stages"][1]["attestation"]["expected_measurements"] = {{"pcr0", std::string(96, 'a')}};
  CML_EXPECT_OK(parse_manifest(j.dump()));
}

TEST(Manifest, RejectsBadEndpoints) {
  auto j = sample_json();
  j["stages"][0]["endpoints"]["control"] = "udp://1.2.3.4:5";
  EXPECT_NE(parse_error(j).find("stages[0].endpoints.control"), std::string::npos);
  j = sample_json();
  j["stages"][0]["endpoints"]["data"] = "tcp://127.0.0.1:99999";
  EXPECT_NE(parse_error(j).find("stages[0].endpoints.data"), std::string::npos);
  j = sample_json();
  j["stages"][1]["endpoints"]["data"] = "tcp://127.0.0.1:9000";  // stage 0's control
  EXPECT_NE(parse_error(j).find("also used by stages[0]"), std::string::npos);
}

TEST(Manifest, ValidatesOffload) {
  auto j = sample_json();
  j["stages"][0]["offload"] = {{"kind", "groupcover"}, {"worker", "tcp://10.0.0.2:7000"}, {"secrets", "/s"}};
  auto m = parse_manifest(j.dump());
  CML_ASSERT_OK(m);
  EXPECT_EQ(m->stages[0].offload.kind, Offload::Kind::kGroupCover);
  EXPECT_EQ(m->stages[0].offload.worker->port, 7000);
  j["stages"][0]["offload"] = {{"kind", "groupcover"}, {"secrets", "/s"}};
  EXPECT_NE(parse_error(j).find("stages[0].offload.worker: missing"), std::string::npos);
  // Without secrets: session mode (tests/pipeline/manifest_offload_test.cpp covers every field).
  j["stages"][0]["offload"] = {{"kind", "groupcover"}, {"worker", "tcp://10.0.0.2:7000"}};
  CML_EXPECT_OK(parse_manifest(j.dump()));
  j["stages"][0]["offload"] = {{"kind", "gpu"}};
  EXPECT_NE(parse_error(j).find("stages[0].offload.kind"), std::string::npos);
  j["stages"][0]["offload"] = {{"kind", "none"}, {"worker", "tcp://10.0.0.2:7000"}};
  EXPECT_NE(parse_error(j).find("takes no worker"), std::string::npos);
}

TEST(Manifest, RejectsUnknownFieldsAndWrongTypes) {
  auto j = sample_json();
  j["stages"][0]["layer"] = 1;
  EXPECT_NE(parse_error(j).find("stages[0].layer: unknown field"), std::string::npos);
  j = sample_json();
  j["model"]["n_layers"] = "6";
  EXPECT_NE(parse_error(j).find("model.n_layers: expected a non-negative integer"), std::string::npos);
  j = sample_json();
  j["format"] = "cml-manifest/2";
  EXPECT_NE(parse_error(j).find("format"), std::string::npos);
  j = sample_json();
  j["orchestrator"] = {{"attest", true}};
  EXPECT_NE(parse_error(j).find("orchestrator.attestation: missing"), std::string::npos);
}

TEST(Manifest, RejectsHostileDocuments) {
  EXPECT_EQ(parse_manifest("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_manifest("[1,2]").status().code(), StatusCode::kInvalidArgument);
  std::string deep(100000, '[');
  EXPECT_EQ(parse_manifest(deep).status().code(), StatusCode::kInvalidArgument);
  std::string big(kMaxManifestBytes + 1, ' ');
  EXPECT_EQ(parse_manifest(big).status().code(), StatusCode::kResourceExhausted);
}

TEST(Manifest, ParsesEndpoints) {
  auto e = parse_endpoint("tcp://[::1]:80");
  CML_ASSERT_OK(e);
  EXPECT_EQ(e->host, "[::1]");
  EXPECT_FALSE(parse_endpoint("tcp://:80").is_ok());
  EXPECT_FALSE(parse_endpoint("tcp://host").is_ok());
  EXPECT_FALSE(parse_endpoint("vsock://x:1").is_ok());
  EXPECT_FALSE(parse_endpoint("tcp://a b:1").is_ok());
}

}  // namespace
}  // namespace cml::pipeline
