#include "net/tensor_codec.h"

#include <gtest/gtest.h>

#include <numeric>

#include "net_test_util.h"

namespace cml::net {
namespace {

using tensor::DType;

const DType kAllDTypes[] = {DType::kF32, DType::kF64, DType::kF16, DType::kBF16,
                            DType::kI32, DType::kI64, DType::kU8,  DType::kU32};

TEST(TensorCodec, WireCodes) {
  const uint8_t expected[] = {0, 1, 2, 3, 4, 5, 6, 7};  // F32 F64 F16 BF16 I32 I64 U8 U32
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(wire_dtype_code(kAllDTypes[i]), expected[i]);
    EXPECT_EQ(dtype_from_wire(expected[i]).value(), kAllDTypes[i]);
  }
  EXPECT_EQ(dtype_from_wire(8).status().code(), StatusCode::kInvalidArgument);
}

TEST(TensorCodec, RoundTripEveryDTypeAndShape) {
  const std::vector<std::vector<uint32_t>> shapes = {{}, {0}, {1}, {3}, {2, 3}, {1, 5, 7}, {2, 0, 4}};
  for (DType dt : kAllDTypes) {
    for (const auto& shape : shapes) {
      for (const std::string& name :
           std::vector<std::string>{"", "x", "hidden_states", "名前", std::string(300, 'n')}) {
        auto n = tensor_data_size(dt, shape).value();
        Bytes data(n);
        std::iota(data.begin(), data.end(), uint8_t(7));
        TensorView v{name, dt, shape, data};
        Bytes enc = encode_tensor(v);
        EXPECT_EQ(tensor_header_size(v) % 8, 0u);
        EXPECT_EQ(enc.size(), tensor_header_size(v) + n);
        auto back = decode_tensor(enc, 1 << 20);
        NET_ASSERT_OK(back);
        EXPECT_EQ(back->name, name);
        EXPECT_EQ(back->dtype, dt);
        EXPECT_EQ(back->shape, shape);
        EXPECT_EQ(back->data, data);
      }
    }
  }
}

// Reference v4 vector (reference §1.15, transport_v4_vectors.py): input_ids U32 [1,5].
TEST(TensorCodec, ReferenceVector) {
  const uint32_t shape[] = {1, 5};
  const uint32_t values[] = {464, 3139, 286, 4881, 318};
  Bytes data;
  for (uint32_t v : values) {
    for (int i = 0; i < 4; ++i) data.push_back(uint8_t(v >> (8 * i)));
  }
  TensorView v{"input_ids", DType::kU32, shape, data};
  EXPECT_EQ(to_hex(encode_tensor(v)),
            "02000701000000050000000900696e7075745f6964730000d0010000430c00001e010000111300003e010000");
}

Bytes sample() {
  static const uint32_t shape[] = {2, 2};
  static const Bytes data(16, 1);
  return encode_tensor({"t", DType::kF32, shape, data});
}

TEST(TensorCodec, RejectsNonZeroPadding) {
  Bytes b = sample();  // header 2+1+8+2+1 = 14 -> 2 padding bytes at 14,15
  b[15] = 1;
  NET_EXPECT_ERROR(decode_tensor(b, 1 << 20), StatusCode::kInvalidArgument, "padding");
}

TEST(TensorCodec, RejectsDataSizeMismatch) {
  Bytes b = sample();
  b.pop_back();
  NET_EXPECT_ERROR(decode_tensor(b, 1 << 20), StatusCode::kInvalidArgument, "declares 16");
  b = sample();
  b.push_back(0);
  NET_EXPECT_ERROR(decode_tensor(b, 1 << 20), StatusCode::kInvalidArgument, "declares 16");
}

TEST(TensorCodec, RejectsBadHeaders) {
  Bytes b = sample();
  b[0] = 33;  // ndims
  NET_EXPECT_ERROR(decode_tensor(b, 1 << 20), StatusCode::kInvalidArgument, "dims exceed");
  b = sample();
  b[2] = 9;  // dtype
  NET_EXPECT_ERROR(decode_tensor(b, 1 << 20), StatusCode::kInvalidArgument, "unknown dtype");
  b = sample();
  b[13] = 0xFF;  // name byte: invalid UTF-8
  NET_EXPECT_ERROR(decode_tensor(b, 1 << 20), StatusCode::kInvalidArgument, "UTF-8");
  b = sample();
  b[11] = 200;  // name_len beyond the buffer
  EXPECT_EQ(decode_tensor(b, 1 << 20).status().code(), StatusCode::kInvalidArgument);
  for (size_t n = 0; n < 16; ++n) {
    EXPECT_EQ(decode_tensor_header(ByteSpan(sample()).first(n), 1 << 20).status().code(), StatusCode::kInvalidArgument)
        << n;
  }
}

TEST(TensorCodec, SizeBoundBeforeAllocation) {
  // Declares 2^32-1 × 2^32-1 × 8 bytes: overflow. And 4 GiB: over the bound.
  const uint32_t huge[] = {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF};
  EXPECT_EQ(tensor_data_size(DType::kF64, huge).status().code(), StatusCode::kInvalidArgument);
  Bytes b;
  const uint32_t big[] = {1u << 30};
  append_tensor_header({"x", DType::kF32, big, {}}, b);
  NET_EXPECT_ERROR(decode_tensor_header(b, 1u << 30), StatusCode::kResourceExhausted, "exceed the limit");
  auto h = decode_tensor_header(b, uint64_t(4) << 30);
  NET_ASSERT_OK(h);
  EXPECT_EQ(h->data_size, uint64_t(4) << 30);
}

TEST(TensorCodec, ValidateView) {
  const uint32_t shape[] = {3};
  Bytes data(11);
  NET_EXPECT_ERROR(validate_tensor_view({"x", DType::kF32, shape, data}), StatusCode::kInvalidArgument, "needs 12");
  std::vector<uint32_t> many(33, 1);
  NET_EXPECT_ERROR(validate_tensor_view({"x", DType::kU8, many, Bytes(1)}), StatusCode::kInvalidArgument, "dims");
  const std::string bad = "\xC0\x80";
  NET_EXPECT_ERROR(validate_tensor_view({bad, DType::kU8, {}, Bytes(1)}), StatusCode::kInvalidArgument, "UTF-8");
}

TEST(TensorCodec, Utf8) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("\xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
}

}  // namespace
}  // namespace cml::net
