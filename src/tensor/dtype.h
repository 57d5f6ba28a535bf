// Element types of tensors and weights, with sizes and names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cml::tensor {

enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI32, kI64, kU8, kU32 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kI32:
    case DType::kU32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kU8:
      return 1;
  }
  return 0;
}
std::string_view dtype_name(DType t);

}  // namespace cml::tensor
