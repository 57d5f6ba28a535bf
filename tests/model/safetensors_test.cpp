#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "support/test_support.h"

namespace cml::model {
namespace {

Bytes floats(std::vector<float> v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A raw image from a header string and a data section.
Bytes image(std::string_view header, const Bytes& body) {
  ByteWriter w;
  w.u64_le(header.size());
  w.bytes(as_bytes(header));
  w.bytes(body);
  return w.take();
}

Status parse_status(const Bytes& img) {
  auto r = parse_safetensors(img);
  return r.is_ok() ? ok_status() : r.status();
}

TEST(Safetensors, WriteThenParseRoundTrips) {
  Bytes a = floats({1, 2, 3, 4, 5, 6});
  Bytes h = {0, 0x3c, 0, 0xc0};  // f16 1, -2
  Bytes b = {0x80, 0x3f};        // bf16 1
  std::vector<SafetensorsTensor> ts = {{"a", tensor::DType::kF32, {2, 3}, a},
                                       {"h", tensor::DType::kF16, {2}, h},
                                       {"b", tensor::DType::kBF16, {1, 1}, b},
                                       {"empty", tensor::DType::kF32, {0, 4}, {}}};
  auto img = write_safetensors(ts, {{"format", "pt"}});
  ASSERT_TRUE(img.is_ok()) << img.status().to_string();
  EXPECT_EQ(load_u64_le(img->data()) % 8, 0u);  // padded header
  auto f = parse_safetensors(*img);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->format(), "safetensors");
  EXPECT_EQ((*f)->meta_string("format"), "pt");
  ASSERT_EQ((*f)->tensors().size(), 4u);
  EXPECT_EQ((*f)->tensors()[0].name, "a");  // file order
  const TensorRef* t = (*f)->find("a");
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(static_cast<const float*>(t->data)[4], 5.0f);
  EXPECT_EQ((*f)->find("h")->dtype, tensor::DType::kF16);
  EXPECT_EQ((*f)->find("b")->dtype, tensor::DType::kBF16);
  EXPECT_EQ((*f)->find("empty")->nbytes, 0u);

  auto tmp = std::filesystem::temp_directory_path() / ("cml_st_" + std::to_string(::getpid()) + ".safetensors");
  ASSERT_TRUE(write_safetensors_file(tmp.string(), ts, {{"k", "v"}}).is_ok());
  auto g = open_weight_file(tmp.string());
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ((*g)->format(), "safetensors");
  EXPECT_EQ(std::memcmp((*g)->find("a")->data, a.data(), a.size()), 0);
  g = Result<std::unique_ptr<WeightFile>>(not_found("reset"));
  std::filesystem::remove(tmp);

  std::vector<SafetensorsTensor> dup = {{"a", tensor::DType::kF32, {1}, floats({1})},
                                        {"a", tensor::DType::kF32, {1}, floats({1})}};
  EXPECT_FALSE(write_safetensors(dup).is_ok());
  std::vector<SafetensorsTensor> wrong = {{"a", tensor::DType::kF32, {2}, floats({1})}};
  EXPECT_FALSE(write_safetensors(wrong).is_ok());
}

TEST(Safetensors, MisalignedDataIsCopiedToAlignedStorage) {
  // Header of odd length: the f32 data starts at an odd offset in the image.
  std::string hdr = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  if ((8 + hdr.size()) % 4 == 0) hdr += " ";
  Bytes img = image(hdr, floats({1.5f, -2.5f}));
  auto f = parse_safetensors(img);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  const TensorRef* t = (*f)->find("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 4, 0u);
  float v[2];
  std::memcpy(v, t->data, 8);
  EXPECT_EQ(v[0], 1.5f);
  EXPECT_EQ(v[1], -2.5f);
}

TEST(Safetensors, HostileFilesAreRejectedWithClearErrors) {
  const Bytes body = floats({1, 2});
  auto expect_error = [&](std::string_view header, std::string_view needle, const Bytes& data) {
    Status s = parse_status(image(header, data));
    EXPECT_FALSE(s.is_ok()) << header;
    EXPECT_NE(s.message().find(needle), std::string::npos) << header << " → " << s.to_string();
    return s.code();
  };
  expect_error("[1,2]", "not a JSON object", body);
  expect_error("{\"x\":", "not valid JSON", body);
  expect_error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", "outside the data section", body);
  expect_error(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "need 12 bytes", body);
  expect_error(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", "non-negative", body);
  expect_error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", "outside", body);
  expect_error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", "data_offsets", body);
  expect_error(R"({"x":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", "unknown dtype Q4", body);
  expect_error(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", "missing dtype", body);
  expect_error(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", "overflows",
               body);
  expect_error(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "not covered", body);
  expect_error(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "hole", body);
  expect_error(
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      "overlaps", body);
  expect_error(R"({"__metadata__":{"a":1}})", "not a string", {});
  expect_error(R"({"x":{"dtype":"F32","shape":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]],"data_offsets":[0,8]}})",
               "nests too deeply", body);
  EXPECT_EQ(expect_error(R"({"x":{"dtype":"I16","shape":[4],"data_offsets":[0,8]}})", "I16", body),
            StatusCode::kUnimplemented);

  // Header length fields: larger than the file, larger than the bound.
  ByteWriter w;
  w.u64_le(1000), w.bytes(as_bytes("{}"));
  EXPECT_NE(parse_status(w.take()).message().find("runs past the end"), std::string::npos);
  ByteWriter big;
  big.u64_le(kSafetensorsMaxHeaderBytes + 1);
  EXPECT_NE(parse_status(big.take()).message().find("exceeds the limit"), std::string::npos);
  EXPECT_FALSE(parse_safetensors(Bytes{1, 2, 3}).is_ok());

  // Every truncation of a valid image is an error.
  std::vector<SafetensorsTensor> ts = {{"a", tensor::DType::kF32, {2}, body}};
  Bytes img = *write_safetensors(ts);
  for (size_t n = 0; n < img.size(); ++n) EXPECT_FALSE(parse_safetensors(ByteSpan(img.data(), n)).is_ok()) << n;
}

}  // namespace
}  // namespace cml::model

namespace cml::model {
namespace {

uint16_t bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);  // round to nearest even (no NaNs here)
}

// The committed GPT-2 fixture (tools/make_gpt2_fixture.py): names, shapes and dtypes as Hugging Face writes
// them, and the BF16 copy equal to the F32 weights rounded to nearest even.
TEST(Safetensors, Gpt2TinyFixture) {
  const std::string dir = std::string(CML_SOURCE_DIR) + "/tests/data/gpt2_tiny/";
  auto f32 = open_weight_file(dir + "model.safetensors");
  auto bf16 = open_weight_file(dir + "model_bf16.safetensors");
  auto ref = open_weight_file(dir + "reference.safetensors");
  ASSERT_TRUE(f32.is_ok()) << f32.status().to_string();
  ASSERT_TRUE(bf16.is_ok()) << bf16.status().to_string();
  ASSERT_TRUE(ref.is_ok()) << ref.status().to_string();
  const int64_t V = 256, P = 32, E = 48, L = 4, T = 12;
  using S = std::vector<int64_t>;
  std::map<std::string, S> expect = {
      {"wte.weight", {V, E}}, {"wpe.weight", {P, E}}, {"ln_f.weight", {E}}, {"ln_f.bias", {E}}};
  for (int l = 0; l < L; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    expect[h + "ln_1.weight"] = {E}, expect[h + "ln_1.bias"] = {E};
    expect[h + "ln_2.weight"] = {E}, expect[h + "ln_2.bias"] = {E};
    expect[h + "attn.bias"] = {1, 1, P, P};
    expect[h + "attn.c_attn.weight"] = {E, 3 * E}, expect[h + "attn.c_attn.bias"] = {3 * E};
    expect[h + "attn.c_proj.weight"] = {E, E}, expect[h + "attn.c_proj.bias"] = {E};
    expect[h + "mlp.c_fc.weight"] = {E, 4 * E}, expect[h + "mlp.c_fc.bias"] = {4 * E};
    expect[h + "mlp.c_proj.weight"] = {4 * E, E}, expect[h + "mlp.c_proj.bias"] = {E};
  }
  EXPECT_EQ((*f32)->tensors().size(), expect.size());
  EXPECT_EQ((*f32)->meta_string("format"), "pt");
  size_t bf16_count = 0;
  for (const auto& [name, shape] : expect) {
    SCOPED_TRACE(name);
    const TensorRef* t = (*f32)->find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, tensor::DType::kF32);
    EXPECT_EQ(t->shape, shape);
    if (name.ends_with(".attn.bias")) {
      EXPECT_EQ((*bf16)->find("transformer." + name), nullptr);  // mask buffers only in the F32 file
      continue;
    }
    const TensorRef* b = (*bf16)->find("transformer." + name);
    ASSERT_NE(b, nullptr);
    ++bf16_count;
    EXPECT_EQ(b->dtype, tensor::DType::kBF16);
    EXPECT_EQ(b->shape, shape);
    const auto* fp = static_cast<const float*>(t->data);
    const auto* bp = static_cast<const uint16_t*>(b->data);
    for (int64_t i = 0; i < t->numel(); ++i) ASSERT_EQ(bp[i], bf16_round(fp[i])) << i;
  }
  EXPECT_EQ((*bf16)->tensors().size(), bf16_count);
  const TensorRef* tokens = (*ref)->find("tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->dtype, tensor::DType::kI32);
  EXPECT_EQ(tokens->shape, (S{T}));
  for (int64_t i = 0; i < T; ++i) {
    EXPECT_GE(static_cast<const int32_t*>(tokens->data)[i], 0);
    EXPECT_LT(static_cast<const int32_t*>(tokens->data)[i], V);
  }
  EXPECT_EQ((*ref)->find("logits")->shape, (S{T, V}));
  EXPECT_EQ((*ref)->find("logits_bf16")->shape, (S{T, V}));
  for (int k = 0; k <= L; ++k) EXPECT_EQ((*ref)->find("hidden." + std::to_string(k))->shape, (S{T, E}));
}

}  // namespace
}  // namespace cml::model
