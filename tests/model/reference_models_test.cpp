// Real models: stories260K (llama2.c checkpoint and GGUF) greedy decoding reproduces llama2.c's output
// token for token; split ranges of it are bit-identical.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "model/executor.h"
#include "model/generate.h"
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
