#include "model/gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "model/llama2c_checkpoint.h"
#include "support/test_support.h"

namespace cml::model {
namespace {

// Builds GGUF images for tests (v1 with u32 counts, v2/v3 with u64).
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) : version_(version) {}

  void size(uint64_t v) {
    if (version_ == 1)
      kv_.u32_le(static_cast<uint32_t>(v));
    else
      kv_.u64_le(v);
  }
  void str(ByteWriter& w, std::string_view s) {
    if (version_ == 1)
      w.u32_le(static_cast<uint32_t>(s.size()));
    else
      w.u64_le(s.size());
    w.bytes(as_bytes(s));
  }
  void key(std::string_view k, uint32_t type) {
    str(kv_, k);
    kv_.u32_le(type);
    ++n_kv_;
  }
  void kv_u32(std::string_view k, uint32_t v) { key(k, 4), kv_.u32_le(v); }
  void kv_string(std::string_view k, std::string_view v) { key(k, 8), str(kv_, v); }
  ByteWriter& raw_kv() { return kv_; }
  void bump_kv() { ++n_kv_; }

  // Adds a tensor with ne[] innermost first and appends its data (aligned to `alignment`).
  void tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, ByteSpan data) {
    str(ti_, name);
    ti_.u32_le(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) {
      if (version_ == 1)
        ti_.u32_le(static_cast<uint32_t>(d));
      else
        ti_.u64_le(d);
    }
    ti_.u32_le(type);
    while (data_.size() % alignment_) data_.u8(0);
    ti_.u64_le(offset_override_ ? *offset_override_ : data_.size());
    data_.bytes(data);
    ++n_t_;
  }
  void set_alignment(uint64_t a) { alignment_ = a; }
  void override_offset(std::optional<uint64_t> off) { offset_override_ = off; }

  Bytes build() const {
    ByteWriter w;
    for (char c : std::string_view("GGUF")) w.u8(static_cast<uint8_t>(c));
    w.u32_le(version_);
    if (version_ == 1) {
      w.u32_le(static_cast<uint32_t>(n_t_));
      w.u32_le(static_cast<uint32_t>(n_kv_));
    } else {
      w.u64_le(n_t_);
      w.u64_le(n_kv_);
    }
    w.bytes(kv_.data());
    w.bytes(ti_.data());
    while (w.size() % alignment_) w.u8(0);
    w.bytes(data_.data());
    return w.take();
  }

 private:
  uint32_t version_;
  uint64_t n_kv_ = 0, n_t_ = 0, alignment_ = 32;
  std::optional<uint64_t> offset_override_;
  ByteWriter kv_, ti_, data_;
};

Bytes floats(std::initializer_list<float> v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), std::data(v), b.size());
  return b;
}

TEST(Gguf, ParsesEveryVersionAndValueType) {
  for (uint32_t version : {1u, 2u, 3u}) {
    GgufBuilder g(version);
    g.kv_u32("general.alignment", 64);
    g.set_alignment(64);
    g.kv_string("general.architecture", "llama");
    g.key("u8", 0), g.raw_kv().u8(200);
    g.key("i8", 1), g.raw_kv().u8(0xff);
    g.key("u16", 2), g.raw_kv().u16_le(65535);
    g.key("i16", 3), g.raw_kv().u16_le(0x8000);
    g.key("i32", 5), g.raw_kv().u32_le(0xfffffffe);
    g.key("f32", 6), g.raw_kv().bytes(floats({1e-5f}));
    g.key("bool", 7), g.raw_kv().u8(1);
    g.key("u64", 10), g.raw_kv().u64_le(~uint64_t{0});
    g.key("i64", 11), g.raw_kv().u64_le(static_cast<uint64_t>(-5));
    double d = 2.5;
    uint64_t du;
    std::memcpy(&du, &d, 8);
    g.key("f64", 12), g.raw_kv().u64_le(du);
    // Arrays: of strings, of f32, of i32, of bools, and an array of arrays (parsed, not exposed).
    g.key("strs", 9), g.raw_kv().u32_le(8), g.size(2), g.str(g.raw_kv(), "a"),
        g.str(g.raw_kv(),
              "\xe2\x96\x81"
              "b");
    g.key("f32s", 9), g.raw_kv().u32_le(6), g.size(2), g.raw_kv().bytes(floats({0.5f, -1.0f}));
    g.key("i32s", 9), g.raw_kv().u32_le(5), g.size(3), g.raw_kv().u32_le(1), g.raw_kv().u32_le(2),
        g.raw_kv().u32_le(static_cast<uint32_t>(-3));
    g.key("bools", 9), g.raw_kv().u32_le(7), g.size(2), g.raw_kv().u8(0), g.raw_kv().u8(1);
    g.key("nested", 9), g.raw_kv().u32_le(9), g.size(1), g.raw_kv().u32_le(4), g.size(1), g.raw_kv().u32_le(7);
    Bytes w = floats({1, 2, 3, 4, 5, 6});
    g.tensor("w", {3, 2}, 0, w);                                 // ne innermost first → shape [2, 3]
    g.tensor("h", {4}, 1, Bytes{0, 0x3c, 0, 0xc0, 0, 0, 0, 0});  // f16 1, -2, 0, 0
    g.tensor("b", {2}, 30, Bytes{0x80, 0x3f, 0, 0});             // bf16 1.0, 0
    Bytes img = g.build();
    auto f = parse_gguf(img);
    ASSERT_TRUE(f.is_ok()) << "v" << version << ": " << f.status().to_string();
    const WeightFile& wf = **f;
    EXPECT_EQ(wf.format(), "gguf");
    EXPECT_EQ(wf.meta_int("general.alignment"), 64);
    EXPECT_EQ(wf.meta_string("general.architecture"), "llama");
    EXPECT_EQ(wf.meta_int("u8"), 200);
    EXPECT_EQ(wf.meta_int("i8"), -1);
    EXPECT_EQ(wf.meta_int("u16"), 65535);
    EXPECT_EQ(wf.meta_int("i16"), -32768);
    EXPECT_EQ(wf.meta_int("i32"), -2);
    EXPECT_EQ(static_cast<float>(*wf.meta_float("f32")), 1e-5f);
    EXPECT_EQ(std::get<bool>(wf.metadata().at("bool")), true);
    EXPECT_EQ(std::get<uint64_t>(wf.metadata().at("u64")), ~uint64_t{0});
    EXPECT_FALSE(wf.meta_int("u64").has_value());  // does not fit int64
    EXPECT_EQ(wf.meta_int("i64"), -5);
    EXPECT_EQ(wf.meta_float("f64"), 2.5);
    EXPECT_EQ(std::get<std::vector<std::string>>(wf.metadata().at("strs")), (std::vector<std::string>{"a",
                                                                                                      "\xe2\x96\x81"
                                                                                                      "b"}));
    EXPECT_EQ(std::get<std::vector<double>>(wf.metadata().at("f32s")), (std::vector<double>{0.5, -1.0}));
    EXPECT_EQ(std::get<std::vector<int64_t>>(wf.metadata().at("i32s")), (std::vector<int64_t>{1, 2, -3}));
    EXPECT_EQ(std::get<std::vector<int64_t>>(wf.metadata().at("bools")), (std::vector<int64_t>{0, 1}));
    EXPECT_EQ(wf.metadata().count("nested"), 0u);
    ASSERT_EQ(wf.tensors().size(), 3u);
    const TensorRef* t = wf.find("w");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(t->dtype, tensor::DType::kF32);
    EXPECT_EQ(t->nbytes, 24u);
    EXPECT_EQ(t->numel(), 6);
    EXPECT_EQ(static_cast<const float*>(t->data)[5], 6.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 4, 0u);
    EXPECT_EQ(wf.find("h")->dtype, tensor::DType::kF16);
    EXPECT_EQ(wf.find("b")->dtype, tensor::DType::kBF16);
    EXPECT_EQ(wf.find("b")->shape, (std::vector<int64_t>{2}));
    EXPECT_EQ(wf.find("missing"), nullptr);
  }
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
  GgufBuilder g(3);
  g.kv_string("general.architecture", "llama");
  g.key("strs", 9), g.raw_kv().u32_le(8), g.size(1), g.str(g.raw_kv(), "abc");
  g.tensor("w", {2, 2}, 0, floats({1, 2, 3, 4}));
  Bytes img = g.build();
  ASSERT_TRUE(parse_gguf(img).is_ok());
  for (size_t n = 0; n < img.size(); ++n) {
    auto r = parse_gguf(ByteSpan(img.data(), n));
    ASSERT_FALSE(r.is_ok()) << "prefix " << n;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  }
}

Status parse_status(const Bytes& img) {
  auto r = parse_gguf(img);
  return r.is_ok() ? ok_status() : r.status();
}

TEST(Gguf, HostileHeadersAreRejectedWithClearErrors) {
  {  // bad magic and version
    Bytes img = GgufBuilder(3).build();
    img[0] = 'X';
    EXPECT_NE(parse_status(img).message().find("magic"), std::string::npos);
    img = GgufBuilder(3).build();
    img[4] = 4;
    EXPECT_NE(parse_status(img).message().find("version 4"), std::string::npos);
    img = GgufBuilder(3).build();
    img[4] = 0, img[7] = 3;  // big-endian
    EXPECT_NE(parse_status(img).message().find("big-endian"), std::string::npos);
  }
  {  // a string length far past the end
    GgufBuilder g(3);
    g.key("k", 8), g.raw_kv().u64_le(uint64_t{1} << 40);
    Status s = parse_status(g.build());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("exceeds the limit"), std::string::npos) << s.to_string();
  }
  {  // an array that claims 2^26 elements in a few bytes
    GgufBuilder g(3);
    g.key("a", 9), g.raw_kv().u32_le(4), g.raw_kv().u64_le(uint64_t{1} << 25), g.raw_kv().u32_le(1);
    Status s = parse_status(g.build());
    EXPECT_NE(s.message().find("runs past the end"), std::string::npos) << s.to_string();
  }
  {  // arrays nested without bound
    GgufBuilder g(3);
    g.key("a", 9);
    for (int i = 0; i < 100; ++i) g.raw_kv().u32_le(9), g.raw_kv().u64_le(1);
    Status s = parse_status(g.build());
    EXPECT_NE(s.message().find("nested"), std::string::npos) << s.to_string();
  }
  {  // unknown value type, bool out of range, duplicate key
    GgufBuilder g(3);
    g.key("x", 13), g.raw_kv().u32_le(0);
    EXPECT_NE(parse_status(g.build()).message().find("unknown value type"), std::string::npos);
    GgufBuilder b(3);
    b.key("x", 7), b.raw_kv().u8(2);
    EXPECT_NE(parse_status(b.build()).message().find("bool"), std::string::npos);
    GgufBuilder d(3);
    d.kv_u32("x", 1), d.kv_u32("x", 2);
    EXPECT_NE(parse_status(d.build()).message().find("twice"), std::string::npos);
  }
  {  // huge counts
    ByteWriter w;
    w.bytes(as_bytes("GGUF")), w.u32_le(3), w.u64_le(~uint64_t{0}), w.u64_le(0);
    EXPECT_NE(parse_status(w.take()).message().find("tensor count"), std::string::npos);
  }
  {  // too many dimensions
    GgufBuilder g(3);
    g.tensor("t", {1, 1, 1, 1, 1}, 0, floats({1}));
    EXPECT_NE(parse_status(g.build()).message().find("dimensions"), std::string::npos);
  }
  {  // element count overflow: 2^40 × 2^40
    GgufBuilder g(3);
    g.tensor("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, floats({1}));
    Status s = parse_status(g.build());
    EXPECT_NE(s.message().find("overflows"), std::string::npos) << s.to_string();
  }
  {  // data past the end of the file
    GgufBuilder g(3);
    g.tensor("t", {1000}, 0, floats({1}));
    Status s = parse_status(g.build());
    EXPECT_NE(s.message().find("past the end"), std::string::npos) << s.to_string();
  }
  {  // offset that is not a multiple of the alignment, and a huge offset
    GgufBuilder g(3);
    g.override_offset(4);
    g.tensor("t", {1}, 0, floats({1}));
    EXPECT_NE(parse_status(g.build()).message().find("alignment"), std::string::npos);
    GgufBuilder h(3);
    h.override_offset(~uint64_t{0} - 31);
    h.tensor("t", {4}, 0, floats({1, 2, 3, 4}));
    EXPECT_NE(parse_status(h.build()).message().find("past the end"), std::string::npos);
  }
  {  // bad alignment values
    GgufBuilder g(3);
    g.kv_u32("general.alignment", 48);
    EXPECT_NE(parse_status(g.build()).message().find("power of two"), std::string::npos);
    GgufBuilder z(3);
    z.kv_u32("general.alignment", 0);
    EXPECT_NE(parse_status(z.build()).message().find("power of two"), std::string::npos);
  }
  {  // duplicate and overlapping tensors
    GgufBuilder g(3);
    g.tensor("t", {1}, 0, floats({1}));
    g.tensor("t", {1}, 0, floats({1}));
    EXPECT_NE(parse_status(g.build()).message().find("twice"), std::string::npos);
    GgufBuilder o(3);
    o.override_offset(0);
    o.tensor("a", {4}, 0, floats({1, 2, 3, 4}));
    o.tensor("b", {4}, 0, floats({1, 2, 3, 4}));
    EXPECT_NE(parse_status(o.build()).message().find("overlap"), std::string::npos);
  }
}

TEST(Gguf, QuantizedTensorsAreUnimplementedAndNamed) {
  GgufBuilder g(3);
  g.tensor("blk.0.attn_q.weight", {32, 1}, 2, Bytes(18, 0));
  Status s = parse_status(g.build());
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("Q4_0"), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("blk.0.attn_q.weight"), std::string::npos) << s.to_string();
  GgufBuilder u(3);
  u.tensor("t", {1}, 999, Bytes(4, 0));
  EXPECT_NE(parse_status(u.build()).message().find("type#999"), std::string::npos);
  EXPECT_EQ(gguf_type_name(12), "Q4_K");
  EXPECT_EQ(gguf_type_name(30), "BF16");
}

TEST(Gguf, Stories260kMatchesTheLlama2cCheckpointTensorForTensor) {
  CML_TESTDATA_OR_SKIP(gguf_path, "llm/stories260K/tinyllamas-stories-260k-f32.gguf");
  CML_TESTDATA_OR_SKIP(bin_path, "llm/stories260K/stories260K.llama2c.bin");
  auto g = open_gguf(gguf_path);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  auto any = open_weight_file(gguf_path);
  ASSERT_TRUE(any.is_ok());
  EXPECT_EQ((*any)->format(), "gguf");
  const WeightFile& gf = **g;
  EXPECT_EQ(gf.meta_string("general.architecture"), "llama");
  EXPECT_EQ(gf.meta_int("llama.embedding_length"), 64);
  EXPECT_EQ(gf.meta_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(gf.meta_int("llama.block_count"), 5);
  EXPECT_EQ(gf.meta_int("llama.attention.head_count"), 8);
  EXPECT_EQ(gf.meta_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(gf.meta_int("llama.context_length"), 512);
  EXPECT_EQ(static_cast<float>(*gf.meta_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(gf.meta_string("llama.tensor_data_layout"), "Meta AI original pth");
  EXPECT_EQ(std::get<std::vector<std::string>>(gf.metadata().at("tokenizer.ggml.tokens")).size(), 512u);
  EXPECT_EQ(std::get<std::vector<double>>(gf.metadata().at("tokenizer.ggml.scores")).size(), 512u);
  EXPECT_EQ(std::get<std::vector<int64_t>>(gf.metadata().at("tokenizer.ggml.token_type")).size(), 512u);
  EXPECT_EQ(gf.find("token_embd.weight")->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(gf.find("blk.0.attn_k.weight")->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(gf.find("blk.4.ffn_down.weight")->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(gf.find("blk.4.ffn_gate.weight")->shape, (std::vector<int64_t>{172, 64}));

  auto c = open_weight_file(bin_path);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  const WeightFile& cf = **c;
  EXPECT_EQ(cf.format(), "llama2c");
  // Same names, shapes and bytes in both files (the .bin was derived from the GGUF by copying bytes). The
  // GGUF stores the shared classifier as a copy in output.weight; the llama2.c file has none.
  ASSERT_EQ(cf.tensors().size() + 1, gf.tensors().size());
  const TensorRef* out = gf.find("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(cf.find("output.weight"), nullptr);
  EXPECT_EQ(std::memcmp(out->data, gf.find("token_embd.weight")->data, out->nbytes), 0);
  for (const TensorRef& t : gf.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.dtype, tensor::DType::kF32);
    if (t.name == "output.weight") continue;
    const TensorRef* u = cf.find(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->shape, t.shape);
    ASSERT_EQ(u->nbytes, t.nbytes);
    EXPECT_EQ(std::memcmp(u->data, t.data, t.nbytes), 0);
  }
  for (const char* key :
       {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.context_length", "llama.rope.dimension_count"})
    EXPECT_EQ(cf.meta_int(key), gf.meta_int(key)) << key;
  EXPECT_EQ(cf.meta_float("llama.attention.layer_norm_rms_epsilon"),
            gf.meta_float("llama.attention.layer_norm_rms_epsilon"));
  EXPECT_EQ(cf.meta_string("llama.tensor_data_layout"), gf.meta_string("llama.tensor_data_layout"));
}

}  // namespace
}  // namespace cml::model
