#include "model/llama2c_checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>

#include "support/test_support.h"

namespace cml::model {
namespace {

Bytes checkpoint(std::vector<int32_t> cfg, bool fill = true) {
  ByteWriter w;
  for (int32_t v : cfg) w.u32_le(static_cast<uint32_t>(v));
  if (fill) {
    Llama2cConfig c = *parse_llama2c_config(w.data());
    uint64_t size = *llama2c_expected_file_size(c);
    // Float i is the value i, so that each tensor's first element tells its offset.
    for (uint64_t i = 0; w.size() < size; ++i) {
      float f = static_cast<float>(i);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      w.u32_le(u);
    }
  }
  return w.take();
}

float first(const WeightFile& f, const std::string& name) {
  const TensorRef* t = f.find(name);
  EXPECT_NE(t, nullptr) << name;
  return t ? static_cast<const float*>(t->data)[0] : -1;
}

TEST(Llama2cCheckpoint, LayoutSharedAndUntied) {
  // dim 8, hidden 12, 2 layers, 4 heads, 2 kv heads, vocab 10, seq 4: head 2, kv_dim 4.
  for (bool shared : {true, false}) {
    Bytes img = checkpoint({8, 12, 2, 4, 2, shared ? 10 : -10, 4});
    auto f = parse_llama2c_checkpoint(img);
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    const WeightFile& w = **f;
    EXPECT_EQ(w.format(), "llama2c");
    EXPECT_EQ(w.find("token_embd.weight")->shape, (std::vector<int64_t>{10, 8}));
    EXPECT_EQ(first(w, "token_embd.weight"), 0);
    EXPECT_EQ(first(w, "blk.0.attn_norm.weight"), 80);
    EXPECT_EQ(first(w, "blk.1.attn_norm.weight"), 88);
    EXPECT_EQ(first(w, "blk.0.attn_q.weight"), 96);
    EXPECT_EQ(first(w, "blk.1.attn_q.weight"), 160);
    EXPECT_EQ(first(w, "blk.0.attn_k.weight"), 224);
    EXPECT_EQ(w.find("blk.0.attn_k.weight")->shape, (std::vector<int64_t>{4, 8}));
    EXPECT_EQ(first(w, "blk.0.attn_v.weight"), 288);
    EXPECT_EQ(first(w, "blk.0.attn_output.weight"), 352);
    EXPECT_EQ(first(w, "blk.0.ffn_norm.weight"), 480);
    EXPECT_EQ(first(w, "blk.0.ffn_gate.weight"), 496);
    EXPECT_EQ(w.find("blk.0.ffn_gate.weight")->shape, (std::vector<int64_t>{12, 8}));
    EXPECT_EQ(first(w, "blk.0.ffn_down.weight"), 688);
    EXPECT_EQ(w.find("blk.0.ffn_down.weight")->shape, (std::vector<int64_t>{8, 12}));
    EXPECT_EQ(first(w, "blk.0.ffn_up.weight"), 880);
    EXPECT_EQ(first(w, "output_norm.weight"), 1072);
    // then 2 × 4 × 1 RoPE floats (1080..1087), then the classifier when untied.
    if (shared) {
      EXPECT_EQ(w.find("output.weight"), nullptr);
      EXPECT_EQ(w.tensors().size(), 2u + 9u * 2u);
    } else {
      EXPECT_EQ(first(w, "output.weight"), 1088);
      EXPECT_EQ(w.tensors().size(), 3u + 9u * 2u);
    }
    EXPECT_EQ(std::get<bool>(w.metadata().at("llama2c.shared_classifier")), shared);
    EXPECT_EQ(w.meta_int("llama.vocab_size"), 10);
    EXPECT_EQ(w.meta_int("llama.rope.dimension_count"), 2);
  }
}

TEST(Llama2cCheckpoint, HostileConfigsAreRejected) {
  auto err = [](std::vector<int32_t> cfg) {
    Bytes img = checkpoint(cfg, false);
    img.resize(img.size() + 4096);
    auto r = parse_llama2c_checkpoint(img);
    EXPECT_FALSE(r.is_ok());
    return r.is_ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err({0, 12, 2, 4, 2, 10, 4}).find("dim"), std::string::npos);
  EXPECT_NE(err({8, 12, 2, 3, 1, 10, 4}).find("n_heads must divide dim"), std::string::npos);
  EXPECT_NE(err({8, 12, 2, 4, 3, 10, 4}).find("n_kv_heads"), std::string::npos);
  EXPECT_NE(err({8, 12, 2, 4, 2, INT32_MIN, 4}).find("vocab"), std::string::npos);
  EXPECT_NE(err({8, 12, -1, 4, 2, 10, 4}).find("n_layers"), std::string::npos);
  EXPECT_NE(err({65536, 262144, 1024, 1, 1, 1 << 20, 1 << 20}).find("bytes but its config implies"), std::string::npos);
  // Wrong size by one float, and the sign of vocab_size flipped (tied vs untied).
  Bytes img = checkpoint({8, 12, 2, 4, 2, 10, 4});
  img.push_back(0), img.push_back(0), img.push_back(0), img.push_back(0);
  EXPECT_FALSE(parse_llama2c_checkpoint(img).is_ok());
  Bytes untied = checkpoint({8, 12, 2, 4, 2, -10, 4});
  untied[20] = 10, untied[21] = 0, untied[22] = 0, untied[23] = 0;
  auto r = parse_llama2c_checkpoint(untied);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("shared classifier"), std::string::npos) << r.status().to_string();
  EXPECT_FALSE(parse_llama2c_checkpoint(Bytes(27, 0)).is_ok());
}

}  // namespace
}  // namespace cml::model
