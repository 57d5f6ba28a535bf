// Real models: stories260K (llama2.c checkpoint and GGUF) greedy decoding reproduces llama2.c's output
// token for token; split ranges of it are bit-identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/executor.h"
#include "model/generate.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "tests/support/test_support.h"

namespace cml::model {
namespace {

std::vector<int32_t> expected_ids(const std::string& path) {
  std::ifstream in(path);
  const auto j = nlohmann::json::parse(in);
  return j.at("generated_token_ids_after_bos").get<std::vector<int32_t>>();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::unique_ptr<Executor> whole(const std::string& path, int threads = 1) {
  auto f = open_weight_file(path);
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  if (!f.is_ok()) return nullptr;
  ExecutorOptions o;
  o.threads = threads;
  auto e = Executor::create(std::shared_ptr<const WeightFile>(std::move(*f)), {}, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(*e) : nullptr;
}

class Stories260K : public ::testing::TestWithParam<const char*> {};

TEST_P(Stories260K, GreedyFromBosReproducesLlama2c) {
  CML_TESTDATA_OR_SKIP(model, std::string("llm/stories260K/") + GetParam());
  CML_TESTDATA_OR_SKIP(ids_path, "llm/stories260K/greedy_t0_n200_token_ids.json");
  const auto want = expected_ids(ids_path);
  ASSERT_EQ(want.size(), 200u);
  for (int threads : {1, 2}) {
    auto e = whole(model, threads);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->config().dim, 64);
    EXPECT_EQ(e->config().n_layers, 5);
    EXPECT_EQ(e->config().n_kv_heads, 4);
    GenerateOptions o;
    o.max_new_tokens = 200;
    const std::vector<int32_t> bos{1};
    auto got = generate(*e, bos, o);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(*got, want) << "threads " << threads;
  }
}

TEST_P(Stories260K, DecodedTextMatchesExpectedStory) {
  CML_TESTDATA_OR_SKIP(model, std::string("llm/stories260K/") + GetParam());
  CML_TESTDATA_OR_SKIP(tok_path, "llm/stories260K/tok512.llama2c.bin");
  CML_TESTDATA_OR_SKIP(text_path, "llm/stories260K/expected_greedy_t0_n200.txt");
  auto tok = load_llama2c_tokenizer(tok_path, 512);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  auto e = whole(model);
  ASSERT_TRUE(e);
  GenerateOptions o;
  o.max_new_tokens = 200;
  std::string text;
  int32_t prev = 1;
  auto got = generate(*e, std::vector<int32_t>{1}, o, [&](int32_t id) {
    text += (*tok)->decode_token(prev, id);
    prev = id;
    return true;
  });
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(text, read_text(text_path));
}

TEST_P(Stories260K, SplitRangesAreBitIdentical) {
  CML_TESTDATA_OR_SKIP(model, std::string("llm/stories260K/") + GetParam());
  auto f = open_weight_file(model);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  std::shared_ptr<const WeightFile> file(std::move(*f));
  const std::vector<int32_t> prompt{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
  auto run = [&](const std::vector<int64_t>& cuts) {
    std::vector<std::unique_ptr<Executor>> chain;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      auto e = Executor::create(file, {cuts[i], cuts[i + 1]}, {});
      EXPECT_TRUE(e.is_ok());
      chain.push_back(std::move(*e));
      EXPECT_TRUE(chain.back()->start_sequence(3).is_ok());
    }
    std::vector<float> all;
    int64_t pos = 0;
    for (size_t step = 0; step < 4; ++step) {
      std::vector<int32_t> in = step == 0 ? prompt : std::vector<int32_t>{static_cast<int32_t>(step + 100)};
      std::vector<float> h;
      EXPECT_TRUE(chain[0]->forward(3, pos, in, h).is_ok());
      for (size_t i = 1; i < chain.size(); ++i) {
        std::vector<float> next;
        EXPECT_TRUE(chain[i]->forward_hidden(3, pos, h, next).is_ok());
        h.swap(next);
      }
      all.insert(all.end(), h.begin(), h.end());
      pos += static_cast<int64_t>(in.size());
    }
    return all;
  };
  const auto ref = run({0, 5});
  ASSERT_EQ(ref.size(), (prompt.size() + 3) * 512);
  for (const auto& cuts : std::vector<std::vector<int64_t>>{{0, 2, 5}, {0, 1, 3, 5}, {0, 4, 5}}) {
    const auto got = run(cuts);
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), ref.size() * 4)) << cuts.size() - 1 << " ranges";
  }
}

INSTANTIATE_TEST_SUITE_P(BothFormats, Stories260K,
                         ::testing::Values("stories260K.llama2c.bin", "tinyllamas-stories-260k-f32.gguf"),
                         [](const auto& i) { return std::string(i.index == 0 ? "llama2c" : "gguf"); });

}  // namespace
}  // namespace cml::model

namespace cml::model {
namespace {

// GPT-2 fixture from tools/make_gpt2_fixture.py (tests/data/gpt2_tiny): logits and hidden states of an
// independent float64 PyTorch forward pass.
class Gpt2Tiny : public ::testing::TestWithParam<const char*> {};

std::string fixture(const std::string& name) {
  return std::string(CML_SOURCE_DIR) + "/tests/data/gpt2_tiny/" + name;
}

struct Reference {
  std::unique_ptr<WeightFile> file;
  std::vector<int32_t> tokens;
  const TensorRef* get(const std::string& n) const { return file->find(n); }
};

Reference load_reference() {
  Reference r;
  auto f = open_weight_file(fixture("reference.safetensors"));
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  r.file = std::move(*f);
  const TensorRef* t = r.file->find("tokens");
  EXPECT_TRUE(t && t->dtype == tensor::DType::kI32);
  const auto* p = static_cast<const int32_t*>(t->data);
  r.tokens.assign(p, p + t->numel());
  return r;
}

// max |a - b| / max |b| over the whole array, and the largest elementwise |a-b| / max(|b|, 1).
std::pair<double, double> rel_errors(const float* a, const float* b, size_t n) {
  double max_diff = 0, max_ref = 0, elem = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - b[i]);
    max_diff = std::max(max_diff, d);
    max_ref = std::max(max_ref, std::fabs(double(b[i])));
    elem = std::max(elem, d / std::max(1.0, std::fabs(double(b[i]))));
  }
  return {max_diff / max_ref, elem};
}

TEST_P(Gpt2Tiny, LogitsMatchPyTorchWithin1e4Relative) {
  const bool bf16 = std::string(GetParam()) == "model_bf16.safetensors";
  Reference ref = load_reference();
  ASSERT_FALSE(ref.tokens.empty());
  ExecutorOptions o;
  o.threads = 2;
  auto e = Executor::open(fixture(GetParam()), {}, o);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ((*e)->config().n_heads, 4);
  EXPECT_EQ((*e)->config().head_dim, 12);
  const TensorRef* want = ref.get(bf16 ? "logits_bf16" : "logits");
  ASSERT_TRUE(want);
  const int64_t v = (*e)->config().vocab;
  ASSERT_EQ(want->numel(), static_cast<int64_t>(ref.tokens.size()) * v);
  // Whole prompt at once (BLAS path), and one token at a time (decode kernels).
  for (bool incremental : {false, true}) {
    ASSERT_TRUE((*e)->start_sequence(incremental).is_ok());
    std::vector<float> got;
    if (incremental) {
      for (size_t t = 0; t < ref.tokens.size(); ++t) {
        std::vector<float> row;
        ASSERT_TRUE((*e)->forward(1, static_cast<int64_t>(t), std::span(&ref.tokens[t], 1), row).is_ok());
        got.insert(got.end(), row.begin(), row.end());
      }
    } else {
      ASSERT_TRUE((*e)->forward(0, 0, ref.tokens, got).is_ok());
    }
    ASSERT_EQ(got.size(), static_cast<size_t>(want->numel()));
    const auto [whole, elem] = rel_errors(got.data(), static_cast<const float*>(want->data), got.size());
    EXPECT_LT(whole, 1e-4) << "incremental " << incremental;
    EXPECT_LT(elem, 1e-4) << "incremental " << incremental;
    std::printf("gpt2_tiny %s %s: max|d|/max|ref| = %.3g, max elementwise rel = %.3g\n", GetParam(),
                incremental ? "token-by-token" : "prefill", whole, elem);
  }
}

TEST(Gpt2TinyHidden, EveryRangeBoundaryMatchesPyTorch) {
  Reference ref = load_reference();
  auto f = open_weight_file(fixture("model.safetensors"));
  ASSERT_TRUE(f.is_ok());
  std::shared_ptr<const WeightFile> file(std::move(*f));
  ExecutorOptions o;
  o.overrides.n_heads = 4;
  for (int64_t k = 1; k <= 4; ++k) {
    const TensorRef* want = ref.get("hidden." + std::to_string(k));
    ASSERT_TRUE(want) << k;
    if (k == 4) continue;  // the last range returns logits; hidden.4 is checked through them
    auto e = Executor::create(file, {0, k}, o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    ASSERT_TRUE((*e)->start_sequence(1).is_ok());
    std::vector<float> h;
    ASSERT_TRUE((*e)->forward(1, 0, ref.tokens, h).is_ok());
    ASSERT_EQ(h.size(), static_cast<size_t>(want->numel()));
    const auto [whole, elem] = rel_errors(h.data(), static_cast<const float*>(want->data), h.size());
    EXPECT_LT(whole, 1e-5) << "after block " << k;
    EXPECT_LT(elem, 1e-4) << "after block " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(F32AndBf16, Gpt2Tiny, ::testing::Values("model.safetensors", "model_bf16.safetensors"),
                         [](const auto& i) { return std::string(i.index == 0 ? "f32" : "bf16"); });

}  // namespace
}  // namespace cml::model
