// GroupCover with the real model runtime: stories260K greedy generation reproduces llama2.c's 200-token
// story exactly with every weight product offloaded (offline bundles, in-process worker), and a
// GPT-2-shaped synthetic model gives logits within 1e-3 relative of local compute (session mode, with
// Freivalds checks on).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "groupcover/backend.h"
#include "groupcover/local_worker.h"
#include "groupcover/model_bundle.h"
#include "model/executor.h"
#include "model/synthetic.h"
#include "model/weights.h"
#include "support/test_support.h"

namespace cml::groupcover {
namespace {

std::vector<int32_t> greedy(model::Executor& ex, int steps) {
  std::vector<int32_t> out;
  CML_CHECK(ex.start_sequence(1).is_ok());
  int32_t tok = 1;  // BOS
  std::vector<float> logits;
  for (int pos = 0; pos < steps; ++pos) {
    const int32_t in[1] = {tok};
    Status st = ex.forward(1, pos, in, logits, true);
    CML_CHECK_MSG(st.is_ok(), st.to_string());
    tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(tok);
  }
  return out;
}

TEST(GroupCoverModel, Stories260KGreedyStoryMatchesExactly) {
  CML_TESTDATA_OR_SKIP(gguf, "llm/stories260K/tinyllamas-stories-260k-f32.gguf");
  CML_TESTDATA_OR_SKIP(ids_path, "llm/stories260K/greedy_t0_n200_token_ids.json");
  const Bytes raw = cml::testing::read_testdata(ids_path);
  auto doc = nlohmann::json::parse(raw.begin(), raw.end());
  const auto expected = doc["generated_token_ids_after_bos"].get<std::vector<int32_t>>();
  ASSERT_EQ(expected.size(), 200u);

  auto opened = model::open_weight_file(gguf);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  std::shared_ptr<const model::WeightFile> file = std::move(opened).value();
  // Offline obfuscation of every linear weight of the file, as `cml groupcover obfuscate` does.
  auto selected = select_linear_weights(file->tensors(), file->format());
  ASSERT_GE(selected.size(), 5u * 7u);
  auto om = obfuscate_model(selected, {});
  ASSERT_TRUE(om.is_ok()) << om.status().to_string();

  LocalWorker worker;
  std::atomic<uint64_t> requests{0};
  worker.service().set_observer(
      [&](const ComputeRequest&, std::span<const float>, std::span<const float>) { ++requests; });
  BackendConfig c;
  c.freivalds = true;
  GroupCoverBackend backend(c, om->secrets, om->worker, worker.factory());
  model::ExecutorOptions opt;
  opt.backend = &backend;
  auto ex = model::Executor::create(file, {}, opt);
  ASSERT_TRUE(ex.is_ok()) << ex.status().to_string();
  const auto got = greedy(**ex, 200);
  EXPECT_EQ(got, expected);
  // Every weight product went to the worker: 5 layers × 4 ops + the head, per token.
  EXPECT_EQ(requests.load(), 200u * 21u);
  EXPECT_EQ(backend.stats().freivalds_failures, 0u);

  // The worker bundle holds no row of W and no scaled row, even with π known: every de-permuted W'' row
  // has |cos| < 0.99 to every true row of its matrix (real, correlated weights).
  double worst = 0;
  for (size_t m = 0; m < selected.size(); ++m) {
    auto w = to_f32_rows(selected[m].w);
    ASSERT_TRUE(w.is_ok());
    const auto& e = om->secrets->entries[m];
    const WorkerMatrix& w2 = om->worker->matrices[e.index];
    std::vector<float> row(w2.in);
    for (uint32_t i = 0; i < w2.out; ++i) {
      for (uint32_t j = 0; j < w2.in; ++j) row[e.secrets.perm[j]] = w2.data[size_t(i) * w2.in + j];
      for (uint32_t k = 0; k < w2.out; ++k) {
        const float* t = w->data() + size_t(k) * w2.in;
        double ab = 0, aa = 0, bb = 0;
        for (uint32_t j = 0; j < w2.in; ++j) {
          ab += double(row[j]) * t[j];
          aa += double(row[j]) * row[j];
          bb += double(t[j]) * t[j];
        }
        if (aa > 0 && bb > 0) worst = std::max(worst, std::fabs(ab) / std::sqrt(aa * bb));
      }
    }
  }
  std::printf("stories260K: worst |cos| of a de-permuted W'' row to a true row: %.3f\n", worst);
  EXPECT_LT(worst, 0.99);
}

TEST(GroupCoverModel, Gpt2SyntheticLogitsAgreeWithLocal) {
  model::SyntheticSpec spec;
  spec.vocab = 512;
  spec.dim = 128;
  spec.n_layers = 3;
  spec.n_heads = 4;
  spec.ffn_dim = 512;
  spec.max_context = 64;
  spec.init_std = 0.05f;
  std::shared_ptr<const model::WeightFile> file = model::make_synthetic_gpt2(spec);
  auto local = model::Executor::create(file, {}, {});
  ASSERT_TRUE(local.is_ok()) << local.status().to_string();
  LocalWorker worker;
  BackendConfig c;
  c.freivalds = true;
  GroupCoverBackend backend(c, ObfuscationConfig{}, worker.factory());
  model::ExecutorOptions opt;
  opt.backend = &backend;
  auto remote = model::Executor::create(file, {}, opt);
  ASSERT_TRUE(remote.is_ok()) << remote.status().to_string();
  // A 12-token prefill, then 8 decode steps; compare every logit vector.
  std::vector<int32_t> prompt = {5, 77, 300, 12, 9, 411, 2, 33, 120, 7, 255, 64};
  ASSERT_TRUE((*local)->start_sequence(1).is_ok());
  ASSERT_TRUE((*remote)->start_sequence(1).is_ok());
  std::vector<float> a, b;
  double worst = 0;
  int64_t pos = 0;
  std::vector<int32_t> step = prompt;
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE((*local)->forward(1, pos, step, a).is_ok());
    ASSERT_TRUE((*remote)->forward(1, pos, step, b).is_ok());
    ASSERT_EQ(a.size(), b.size());
    const size_t vocab = size_t(spec.vocab);
    for (size_t r = 0; r < a.size() / vocab; ++r) {
      double num = 0, den = 0;
      for (size_t v = 0; v < vocab; ++v) {
        num += (a[r * vocab + v] - b[r * vocab + v]) * double(a[r * vocab + v] - b[r * vocab + v]);
        den += double(a[r * vocab + v]) * a[r * vocab + v];
      }
      worst = std::max(worst, std::sqrt(num / den));
    }
    pos += int64_t(step.size());
    const size_t last = a.size() / vocab - 1;
    step = {int32_t(std::max_element(a.begin() + last * vocab, a.end()) - (a.begin() + last * vocab))};
  }
  std::printf("worst relative logit difference (L2 per row): %.3g\n", worst);
  EXPECT_LT(worst, 1e-3);
  EXPECT_EQ(backend.stats().freivalds_failures, 0u);
}

// The GPT-2 fixture of the model runtime (tests/data/gpt2_tiny, Hugging Face safetensors with Conv1D
// [in, out] weights): offline bundles from the file's own tensors, logits with offload against local
// compute (1e-3 relative) and against the independent PyTorch float64 reference.
TEST(GroupCoverModel, Gpt2FixtureLogitsWithOffloadMatchLocal) {
  const std::string dir = std::string(CML_SOURCE_DIR) + "/tests/data/gpt2_tiny/";
  auto opened = model::open_weight_file(dir + "model.safetensors");
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  std::shared_ptr<const model::WeightFile> file = std::move(opened).value();
  auto ref_file = model::open_weight_file(dir + "reference.safetensors");
  ASSERT_TRUE(ref_file.is_ok());
  const model::TensorRef* tok = (*ref_file)->find("tokens");
  const model::TensorRef* want = (*ref_file)->find("logits");
  ASSERT_TRUE(tok && want);
  std::vector<int32_t> tokens(static_cast<const int32_t*>(tok->data),
                              static_cast<const int32_t*>(tok->data) + tok->numel());

  auto selected = select_linear_weights(file->tensors(), file->format());
  auto om = obfuscate_model(selected, {});
  ASSERT_TRUE(om.is_ok()) << om.status().to_string();
  LocalWorker worker;
  BackendConfig c;
  c.freivalds = true;
  GroupCoverBackend backend(c, om->secrets, om->worker, worker.factory());
  model::ExecutorOptions opt;
  opt.backend = &backend;
  opt.overrides.n_heads = 4;  // from the fixture's config.json
  auto remote = model::Executor::create(file, {}, opt);
  ASSERT_TRUE(remote.is_ok()) << remote.status().to_string();
  model::ExecutorOptions lopt;
  lopt.overrides.n_heads = 4;
  auto local = model::Executor::create(file, {}, lopt);
  ASSERT_TRUE(local.is_ok());
  std::vector<float> a, b;
  ASSERT_TRUE((*local)->start_sequence(1).is_ok());
  ASSERT_TRUE((*remote)->start_sequence(1).is_ok());
  ASSERT_TRUE((*local)->forward(1, 0, tokens, a).is_ok());
  ASSERT_TRUE((*remote)->forward(1, 0, tokens, b).is_ok());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(int64_t(a.size()), want->numel());
  const float* ref = static_cast<const float*>(want->data);
  double max_d = 0, max_a = 0, max_ref_d = 0, max_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_d = std::max(max_d, std::fabs(double(a[i]) - b[i]));
    max_a = std::max(max_a, std::fabs(double(a[i])));
    max_ref_d = std::max(max_ref_d, std::fabs(double(b[i]) - ref[i]));
    max_ref = std::max(max_ref, std::fabs(double(ref[i])));
  }
  std::printf(
      "gpt2_tiny with offload: max|offload-local|/max|local| = %.3g, max|offload-pytorch|/max|pytorch| = %.3g\n",
      max_d / max_a, max_ref_d / max_ref);
  EXPECT_LT(max_d / max_a, 1e-3);
  EXPECT_LT(max_ref_d / max_ref, 1e-3);
  EXPECT_EQ(backend.stats().freivalds_failures, 0u);
}

}  // namespace
}  // namespace cml::groupcover
