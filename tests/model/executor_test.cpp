// Layer-range executor on synthetic Llama and GPT-2 models: split ranges are bit-identical to the whole
// model, batched sequences equal their single runs, failures leave the cache untouched, bad input is
// refused.
#include "model/executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/linear_backend_blas.h"
#include "model/synthetic.h"

namespace cml::model {
namespace {

SyntheticSpec small_spec(bool llama, tensor::DType dt = tensor::DType::kF32) {
  SyntheticSpec s;
  s.vocab = 101;
  s.dim = 48;
  s.n_layers = 4;
  s.n_heads = llama ? 6 : 4;
  s.n_kv_heads = llama ? 2 : 4;
  s.ffn_dim = llama ? 80 : 192;
  s.max_context = 64;
  s.dtype = dt;
  s.init_std = 0.1f;
  s.tied_head = !llama;  // Llama gets a separate output.weight
  s.seed = llama ? 7 : 8;
  return s;
}

std::shared_ptr<const WeightFile> model(bool llama, tensor::DType dt = tensor::DType::kF32) {
  return llama ? std::shared_ptr<const WeightFile>(make_synthetic_llama(small_spec(llama, dt)))
               : std::shared_ptr<const WeightFile>(make_synthetic_gpt2(small_spec(llama, dt)));
}

std::unique_ptr<Executor> exec(std::shared_ptr<const WeightFile> f, LayerRange r, int threads = 2,
                               LinearBackend* backend = nullptr) {
  ExecutorOptions o;
  o.threads = threads;
  o.backend = backend;
  auto e = Executor::create(std::move(f), r, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(*e) : nullptr;
}

// Prefill + decode through a chain of executors; returns every logits row produced, concatenated.
std::vector<float> run_chain(std::vector<std::unique_ptr<Executor>>& chain, const std::vector<int32_t>& prompt,
                             int decode_steps) {
  std::vector<float> all;
  for (auto& e : chain) EXPECT_TRUE(e->start_sequence(1).is_ok());
  std::vector<int32_t> tokens = prompt;
  int64_t pos = 0;
  for (int step = 0; step <= decode_steps; ++step) {
    std::vector<int32_t> in = step == 0 ? prompt : std::vector<int32_t>{tokens.back()};
    std::vector<float> h;
    EXPECT_TRUE(chain[0]->forward(1, pos, in, h).is_ok());
    for (size_t i = 1; i < chain.size(); ++i) {
      std::vector<float> next;
      const Status s = chain[i]->forward_hidden(1, pos, h, next);
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      h.swap(next);
    }
    const int64_t vocab = chain.back()->config().vocab;
    EXPECT_EQ(static_cast<int64_t>(h.size()), static_cast<int64_t>(in.size()) * vocab);
    all.insert(all.end(), h.begin(), h.end());
    // greedy next token from the last row
    const float* last = h.data() + (in.size() - 1) * vocab;
    tokens.push_back(static_cast<int32_t>(std::max_element(last, last + vocab) - last));
    pos += static_cast<int64_t>(in.size());
  }
  return all;
}

class ExecutorArch : public ::testing::TestWithParam<bool> {};  // true: Llama, false: GPT-2

TEST_P(ExecutorArch, SplitRangesAreBitIdentical) {
  auto f = model(GetParam());
  const std::vector<int32_t> prompt{3, 17, 42, 99, 5, 0, 64, 12, 7, 33, 2};
  std::vector<std::unique_ptr<Executor>> whole;
  whole.push_back(exec(f, {0, -1}));
  const auto ref = run_chain(whole, prompt, 6);
  for (const auto& cuts : std::vector<std::vector<int64_t>>{{0, 2, 4}, {0, 1, 3, 4}, {0, 3, 4}}) {
    std::vector<std::unique_ptr<Executor>> chain;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) chain.push_back(exec(f, {cuts[i], cuts[i + 1]}));
    EXPECT_TRUE(chain.front()->takes_tokens());
    EXPECT_FALSE(chain.front()->returns_logits());
    EXPECT_TRUE(chain.back()->returns_logits());
    const auto got = run_chain(chain, prompt, 6);
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), ref.size() * 4)) << cuts.size() - 1 << " ranges";
  }
}

TEST_P(ExecutorArch, ThreadCountDoesNotChangeResults) {
  auto f = model(GetParam());
  const std::vector<int32_t> prompt{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<std::unique_ptr<Executor>> a, b;
  a.push_back(exec(f, {0, -1}, 1));
  b.push_back(exec(f, {0, -1}, 3));
  const auto ra = run_chain(a, prompt, 4), rb = run_chain(b, prompt, 4);
  EXPECT_EQ(0, std::memcmp(ra.data(), rb.data(), ra.size() * 4));
}

TEST_P(ExecutorArch, ConcurrentSequencesEqualTheirSingleRuns) {
  for (auto dt : {tensor::DType::kF32, tensor::DType::kBF16}) {
    auto f = model(GetParam(), dt);
    const std::vector<std::vector<int32_t>> prompts{{5, 9, 14, 20, 3, 8, 1, 77, 45},
                                                    {60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70},
                                                    {100, 0, 50, 25, 12, 6, 3, 1, 2, 4}};
    const int steps = 5;
    // Single runs.
    std::vector<std::vector<float>> single;
    for (const auto& p : prompts) {
      std::vector<std::unique_ptr<Executor>> c;
      c.push_back(exec(f, {0, -1}));
      single.push_back(run_chain(c, p, steps));
    }
    // All three in flight in one executor: prefills as they arrive, then every decode step batched.
    auto e = exec(f, {0, -1});
    const int64_t vocab = e->config().vocab;
    std::vector<std::vector<float>> got(3);
    std::vector<std::vector<int32_t>> next(3);
    std::vector<int64_t> pos(3, 0);
    for (SeqId s = 0; s < 3; ++s) ASSERT_TRUE(e->start_sequence(s + 10).is_ok());
    auto take = [&](size_t s, const float* rows, size_t n) {
      got[s].insert(got[s].end(), rows, rows + n * static_cast<size_t>(vocab));
      const float* last = rows + (n - 1) * static_cast<size_t>(vocab);
      pos[s] += static_cast<int64_t>(n);
      next[s] = {static_cast<int32_t>(std::max_element(last, last + vocab) - last)};
    };
    for (size_t s = 0; s < 3; ++s) {
      std::vector<float> out;
      ASSERT_TRUE(e->forward(s + 10, 0, prompts[s], out).is_ok());
      take(s, out.data(), prompts[s].size());
    }
    for (int step = 1; step <= steps; ++step) {
      std::vector<StepInput> in(3);
      for (size_t s = 0; s < 3; ++s) {
        in[s].seq = s + 10;
        in[s].start_pos = pos[s];
        in[s].tokens = next[s];
      }
      std::vector<float> out;
      ASSERT_TRUE(e->forward(in, out).is_ok());
      for (size_t s = 0; s < 3; ++s) take(s, out.data() + s * static_cast<size_t>(vocab), 1);
    }
    for (size_t s = 0; s < 3; ++s) {
      ASSERT_EQ(got[s].size(), single[s].size());
      EXPECT_EQ(0, std::memcmp(got[s].data(), single[s].data(), got[s].size() * 4)) << "sequence " << s;
    }
  }
}

TEST_P(ExecutorArch, BatchedPrefillMatchesSingleRunsClosely) {
  // Prefills of several sequences in one step go through BLAS with a larger row count, which may round
  // differently in the last bits: equal within f32 noise, and the same greedy tokens.
  auto f = model(GetParam());
  const std::vector<std::vector<int32_t>> prompts{{5, 9, 14, 20, 3, 8, 1, 77, 45},
                                                  {60, 61, 62, 63, 64, 65, 66, 67, 68}};
  auto e = exec(f, {0, -1});
  std::vector<StepInput> in(2);
  for (size_t s = 0; s < 2; ++s) {
    ASSERT_TRUE(e->start_sequence(s).is_ok());
    in[s].seq = s;
    in[s].tokens = prompts[s];
  }
  std::vector<float> batched;
  ASSERT_TRUE(e->forward(in, batched).is_ok());
  const size_t v = static_cast<size_t>(e->config().vocab);
  for (size_t s = 0; s < 2; ++s) {
    auto one = exec(f, {0, -1});
    ASSERT_TRUE(one->start_sequence(1).is_ok());
    std::vector<float> single;
    ASSERT_TRUE(one->forward(1, 0, prompts[s], single).is_ok());
    const float* b = batched.data() + s * prompts[0].size() * v;
    for (size_t i = 0; i < single.size(); ++i) ASSERT_NEAR(b[i], single[i], 1e-4 * (1 + std::fabs(single[i])));
    for (size_t r = 0; r < prompts[s].size(); ++r) {
      EXPECT_EQ(std::max_element(b + r * v, b + (r + 1) * v) - (b + r * v),
                std::max_element(single.data() + r * v, single.data() + (r + 1) * v) - (single.data() + r * v));
    }
  }
}

TEST_P(ExecutorArch, MiddleRangeLoadsOnlyItsTensors) {
  auto f = model(GetParam());
  auto e = exec(f, {1, 3});
  for (const auto& name : e->used_tensors()) {
    EXPECT_TRUE(name.find(".1.") != std::string::npos || name.find(".2.") != std::string::npos) << name;
  }
  EXPECT_FALSE(e->takes_tokens());
  EXPECT_FALSE(e->returns_logits());
  EXPECT_EQ(e->output_width(), e->config().dim);
}

TEST_P(ExecutorArch, LastOnlyReturnsTheFinalRowPerSequence) {
  auto f = model(GetParam());
  auto a = exec(f, {0, -1}), b = exec(f, {0, -1});
  ASSERT_TRUE(a->start_sequence(1).is_ok());
  ASSERT_TRUE(b->start_sequence(1).is_ok());
  const std::vector<int32_t> p{4, 8, 15, 16, 23, 42};  // <= kGemvMaxRows: same kernel for 1 and all rows
  std::vector<float> all, last;
  ASSERT_TRUE(a->forward(1, 0, p, all).is_ok());
  ASSERT_TRUE(b->forward(1, 0, p, last, /*last_only=*/true).is_ok());
  const int64_t v = a->config().vocab;
  ASSERT_EQ(static_cast<int64_t>(last.size()), v);
  EXPECT_EQ(0, std::memcmp(last.data(), all.data() + (p.size() - 1) * v, static_cast<size_t>(v) * 4));
}

// Fails every run after the first `ok_runs`.
class FlakyBackend final : public LinearBackend {
 public:
  explicit FlakyBackend(int ok_runs) : ok_runs_(ok_runs) {}
  std::string name() const override { return "flaky"; }
  Result<LinearId> add(std::span<const LinearPart> parts) override { return inner_.add(parts); }
  Status run(LinearId id, const float* x, int64_t rows, float* y) override {
    if (runs_++ >= ok_runs_) return unavailable("worker went away");
    return inner_.run(id, x, rows, y);
  }
  int64_t out_features(LinearId id) const override { return inner_.out_features(id); }
  void reset(int ok_runs) {
    runs_ = 0;
    ok_runs_ = ok_runs;
  }

 private:
  BlasLinearBackend inner_;
  int ok_runs_, runs_ = 0;
};

TEST_P(ExecutorArch, BackendFailureLeavesSequenceUntouchedAndRetrySucceeds) {
  auto f = model(GetParam());
  FlakyBackend flaky(1000000);
  auto e = exec(f, {0, -1}, 1, &flaky);
  auto ref = exec(f, {0, -1}, 1);
  ASSERT_TRUE(e->start_sequence(1).is_ok());
  ASSERT_TRUE(ref->start_sequence(1).is_ok());
  const std::vector<int32_t> p{1, 2, 3};
  std::vector<float> out, want;
  ASSERT_TRUE(e->forward(1, 0, p, out).is_ok());
  ASSERT_TRUE(ref->forward(1, 0, p, want).is_ok());
  flaky.reset(5);  // fails in the middle of the blocks
  const std::vector<int32_t> t{9};
  const Status s = e->forward(1, 3, t, out);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(*e->sequence_length(1), 3);
  flaky.reset(1000000);
  ASSERT_TRUE(e->forward(1, 3, t, out).is_ok());
  ASSERT_TRUE(ref->forward(1, 3, t, want).is_ok());
  EXPECT_EQ(out, want);
  EXPECT_EQ(*e->sequence_length(1), 4);
}

TEST_P(ExecutorArch, TransposedHeadAgreesAndKeepsBatchesEqualToSingleSequences) {
  auto f = model(GetParam());
  ExecutorOptions o;
  o.threads = 2;
  o.transpose_head = true;
  auto t = Executor::create(f, {0, -1}, o);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  auto plain = exec(f, {0, -1});
  const std::vector<int32_t> p{1, 2, 3};
  std::vector<float> a, b;
  ASSERT_TRUE((*t)->start_sequence(1).is_ok());
  ASSERT_TRUE(plain->start_sequence(1).is_ok());
  ASSERT_TRUE((*t)->forward(1, 0, p, a).is_ok());
  ASSERT_TRUE(plain->forward(1, 0, p, b).is_ok());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4f + 1e-4f * std::fabs(b[i])) << i;
  // Two sequences in one step give each the numbers it gets alone (same kernel chain per row).
  ASSERT_TRUE((*t)->start_sequence(2).is_ok());
  ASSERT_TRUE((*t)->start_sequence(3).is_ok());
  const std::vector<int32_t> one{5}, two{7};
  std::vector<StepInput> steps(2);
  steps[0].seq = 2;
  steps[0].tokens = one;
  steps[0].n_tokens = 1;
  steps[1].seq = 3;
  steps[1].tokens = two;
  steps[1].n_tokens = 1;
  std::vector<float> both, alone2, alone3;
  ASSERT_TRUE((*t)->forward(steps, both).is_ok());
  auto solo = Executor::create(f, {0, -1}, o);
  ASSERT_TRUE(solo.is_ok());
  ASSERT_TRUE((*solo)->start_sequence(2).is_ok());
  ASSERT_TRUE((*solo)->start_sequence(3).is_ok());
  ASSERT_TRUE((*solo)->forward(2, 0, one, alone2).is_ok());
  ASSERT_TRUE((*solo)->forward(3, 0, two, alone3).is_ok());
  ASSERT_EQ(both.size(), alone2.size() + alone3.size());
  EXPECT_TRUE(std::equal(alone2.begin(), alone2.end(), both.begin()));
  EXPECT_TRUE(std::equal(alone3.begin(), alone3.end(), both.begin() + std::ptrdiff_t(alone2.size())));
}

TEST_P(ExecutorArch, RefusesBadInput) {
  auto f = model(GetParam());
  auto first = exec(f, {0, 2});
  auto last = exec(f, {2, -1});
  std::vector<float> out;
  const std::vector<int32_t> p{1, 2};
  EXPECT_EQ(first->forward(1, 0, p, out).code(), StatusCode::kNotFound);
  ASSERT_TRUE(first->start_sequence(1).is_ok());
  EXPECT_FALSE(first->start_sequence(1).is_ok());
  EXPECT_EQ(first->forward(1, 0, std::vector<int32_t>{101}, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(first->forward(1, 0, std::vector<int32_t>{-1}, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(first->forward(1, 1, p, out).code(), StatusCode::kInvalidArgument);  // gap
  EXPECT_EQ(first->forward(1, 0, std::vector<int32_t>{}, out).code(), StatusCode::kInvalidArgument);
  std::vector<int32_t> too_long(65, 1);
  EXPECT_EQ(first->forward(1, 0, too_long, out).code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(last->start_sequence(1).is_ok());
  EXPECT_EQ(last->forward(1, 0, p, out).code(), StatusCode::kInvalidArgument);  // wants hidden states
  std::vector<float> short_hidden(47);
  EXPECT_EQ(last->forward_hidden(1, 0, short_hidden, out).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(first->drop_sequence(1).is_ok());
  EXPECT_EQ(first->drop_sequence(1).code(), StatusCode::kNotFound);
  ExecutorOptions o;
  EXPECT_FALSE(Executor::create(f, {3, 2}, o).is_ok());
  EXPECT_FALSE(Executor::create(f, {0, 5}, o).is_ok());
  o.max_sequences = 1;
  auto one = Executor::create(f, {0, -1}, o);
  ASSERT_TRUE(one.is_ok());
  ASSERT_TRUE((*one)->start_sequence(1).is_ok());
  EXPECT_EQ((*one)->start_sequence(2).code(), StatusCode::kResourceExhausted);
}

TEST_P(ExecutorArch, RewindReplacesLaterPositions) {
  auto f = model(GetParam());
  auto e = exec(f, {0, -1});
  auto ref = exec(f, {0, -1});
  ASSERT_TRUE(e->start_sequence(1).is_ok());
  ASSERT_TRUE(ref->start_sequence(1).is_ok());
  std::vector<float> a, b;
  ASSERT_TRUE(e->forward(1, 0, std::vector<int32_t>{1, 2, 3, 4}, a).is_ok());
  ASSERT_TRUE(e->forward(1, 2, std::vector<int32_t>{7, 8}, a).is_ok());
  ASSERT_TRUE(ref->forward(1, 0, std::vector<int32_t>{1, 2}, b).is_ok());
  ASSERT_TRUE(ref->forward(1, 2, std::vector<int32_t>{7, 8}, b).is_ok());
  EXPECT_EQ(a, b);
}

TEST_P(ExecutorArch, SequenceAfterADroppedOneEqualsAFreshExecutor) {
  // The second sequence reuses the first one's (wiped) cache block; it is shorter, so the block still holds
  // positions the first sequence wrote beyond the second one's length (zeros now), which must not matter.
  auto f = model(GetParam());
  auto e = exec(f, {0, -1});
  auto fresh = exec(f, {0, -1});
  std::vector<float> a, b;
  ASSERT_TRUE(e->start_sequence(1).is_ok());
  ASSERT_TRUE(e->forward(1, 0, std::vector<int32_t>{5, 9, 2, 44, 3, 17, 8, 60, 1, 2, 3, 4, 5, 6, 7, 8, 9}, a).is_ok());
  for (int t = 0; t < 6; ++t) ASSERT_TRUE(e->forward(1, 17 + t, std::vector<int32_t>{t + 10}, a).is_ok());
  ASSERT_TRUE(e->drop_sequence(1).is_ok());
  ASSERT_TRUE(e->start_sequence(2).is_ok());
  ASSERT_TRUE(fresh->start_sequence(2).is_ok());
  std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
  ASSERT_TRUE(e->forward(2, 0, prompt, a).is_ok());
  ASSERT_TRUE(fresh->forward(2, 0, prompt, b).is_ok());
  EXPECT_EQ(a, b);
  for (int t = 0; t < 4; ++t) {
    ASSERT_TRUE(e->forward(2, 5 + t, std::vector<int32_t>{t + 20}, a).is_ok());
    ASSERT_TRUE(fresh->forward(2, 5 + t, std::vector<int32_t>{t + 20}, b).is_ok());
    EXPECT_EQ(a, b);
  }
  // A start position past the new sequence's length (where the old one had data) is refused.
  EXPECT_FALSE(e->forward(2, 12, std::vector<int32_t>{1}, a).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Both, ExecutorArch, ::testing::Values(true, false),
                         [](const auto& i) { return i.param ? "llama" : "gpt2"; });

TEST(ExecutorConfig, HostileFilesAreRefused) {
  auto spec = small_spec(true);
  {
    auto f = make_synthetic_llama(spec);
    f->set_meta("llama.attention.head_count", int64_t{7});  // 48 % 7 != 0
    EXPECT_EQ(Executor::create(std::move(f), {}, {}).status().code(), StatusCode::kInvalidArgument);
  }
  {
    auto f = make_synthetic_llama(spec);
    f->set_meta("llama.attention.head_count_kv", int64_t{3});  // attn_k has 2 kv heads' rows
    auto r = Executor::create(std::move(f), {}, {});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("attn_k"), std::string::npos) << r.status().message();
  }
  {
    auto f = make_synthetic_llama(spec);
    f->set_meta("llama.block_count", int64_t{1000000});
    EXPECT_EQ(Executor::create(std::move(f), {}, {}).status().code(), StatusCode::kInvalidArgument);
  }
  {
    auto f = make_synthetic_llama(spec);
    f->set_meta("llama.block_count", int64_t{5});  // blk.4.* missing
    EXPECT_EQ(Executor::create(std::move(f), {}, {}).status().code(), StatusCode::kInvalidArgument);
  }
  {
    InMemoryWeightFile empty;
    EXPECT_EQ(Executor::create(std::make_shared<InMemoryWeightFile>(), {}, {}).status().code(),
              StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace cml::model

namespace cml::model {
namespace {

// The model_executor fuzz seeds are complete models (so the fuzzer starts from inputs that run).
TEST(ExecutorFuzzSeeds, SeedsLoadAndRun) {
  for (const char* name : {"llama_tiny.llama2c.bin", "gpt2_tiny.safetensors"}) {
    auto f = open_weight_file(std::string(CML_SOURCE_DIR) + "/fuzz/corpus/model_executor/" + name);
    ASSERT_TRUE(f.is_ok()) << name << ": " << f.status().to_string();
    auto e = Executor::create(std::shared_ptr<const WeightFile>(std::move(*f)), {}, {});
    ASSERT_TRUE(e.is_ok()) << name << ": " << e.status().to_string();
    ASSERT_TRUE((*e)->start_sequence(1).is_ok());
    std::vector<float> out;
    ASSERT_TRUE((*e)->forward(1, 0, std::vector<int32_t>{0, 15, 3}, out).is_ok()) << name;
    EXPECT_EQ(out.size(), 3u * 16);
  }
}

TEST(HfConfigJson, ParsesKnownFieldsAndRefusesJunk) {
  auto ok = parse_hf_config_json(R"({"n_head": 4, "layer_norm_epsilon": 1e-5, "n_embd": 48})");
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(*ok->n_heads, 4);
  EXPECT_DOUBLE_EQ(*ok->norm_eps, 1e-5);
  auto llama = parse_hf_config_json(R"({"num_attention_heads": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-6})");
  ASSERT_TRUE(llama.is_ok());
  EXPECT_EQ(*llama->n_kv_heads, 8);
  EXPECT_FALSE(parse_hf_config_json("[1, 2]").is_ok());
  EXPECT_FALSE(parse_hf_config_json("{\"n_head\": ").is_ok());
  EXPECT_FALSE(parse_hf_config_json(std::string((1 << 20) + 1, ' ')).is_ok());
  auto wrong_type = parse_hf_config_json(R"({"n_head": "4"})");
  ASSERT_TRUE(wrong_type.is_ok());
  EXPECT_FALSE(wrong_type->n_heads.has_value());
}

}  // namespace
}  // namespace cml::model

namespace cml::model {
namespace {

TEST(KvCache, DroppedBlocksAreWipedAndReused) {
  const int64_t layers = 2, kv_dim = 8, ctx = 16;
  KvCache c(layers, kv_dim, ctx, 4);
  ASSERT_TRUE(c.add(1).is_ok());
  KvSequence* s = c.find(1);
  ASSERT_NE(s, nullptr);
  // A step wrote 6 positions but only 2 were committed (e.g. a failed or rewound step).
  s->note_written(6);
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t i = 0; i < 6 * kv_dim; ++i) {
      s->k(l)[i] = 1.5f;
      s->v(l)[i] = -2.5f;
    }
  s->set_length(2);
  float* block = s->k(0);
  ASSERT_TRUE(c.drop(1));
  EXPECT_EQ(c.free_blocks(), 1u);
  ASSERT_TRUE(c.add(2).is_ok());
  EXPECT_EQ(c.free_blocks(), 0u);
  KvSequence* t = c.find(2);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->k(0), block);  // reused
  EXPECT_EQ(t->length(), 0);
  EXPECT_EQ(t->written(), 0);
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t i = 0; i < 6 * kv_dim; ++i) {
      EXPECT_EQ(t->k(l)[i], 0.0f);
      EXPECT_EQ(t->v(l)[i], 0.0f);
    }
}

TEST(KvCache, FreeListIsBounded) {
  KvCache peak(1, 4, 8, 4);  // default: as many as were in flight at once
  for (SeqId id = 1; id <= 3; ++id) ASSERT_TRUE(peak.add(id).is_ok());
  for (SeqId id = 1; id <= 3; ++id) ASSERT_TRUE(peak.drop(id));
  EXPECT_EQ(peak.free_blocks(), 3u);
  ASSERT_TRUE(peak.add(7).is_ok());
  EXPECT_EQ(peak.free_blocks(), 2u);
  EXPECT_FALSE(peak.drop(99));

  KvCache capped(1, 4, 8, 4, 1);
  for (SeqId id = 1; id <= 3; ++id) ASSERT_TRUE(capped.add(id).is_ok());
  for (SeqId id = 1; id <= 3; ++id) ASSERT_TRUE(capped.drop(id));
  EXPECT_EQ(capped.free_blocks(), 1u);

  KvCache none(1, 4, 8, 4, 0);
  ASSERT_TRUE(none.add(1).is_ok());
  ASSERT_TRUE(none.drop(1));
  EXPECT_EQ(none.free_blocks(), 0u);
}

}  // namespace
}  // namespace cml::model
