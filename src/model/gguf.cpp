#include "model/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "model/weights_storage.h"

namespace cml::model {
namespace {

using detail::BasicWeightFile;
using detail::Storage;

enum GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// ggml tensor type ids → names; the supported ones also map to a DType.
struct GgmlType {
  const char* name;
  bool supported;
  tensor::DType dtype;
};
constexpr GgmlType kGgmlTypes[] = {
    {"F32", true, tensor::DType::kF32},
    {"F16", true, tensor::DType::kF16},
    {"Q4_0", false, {}},
    {"Q4_1", false, {}},
    {"Q4_2", false, {}},
    {"Q4_3", false, {}},
    {"Q5_0", false, {}},
    {"Q5_1", false, {}},
    {"Q8_0", false, {}},
    {"Q8_1", false, {}},
    {"Q2_K", false, {}},
    {"Q3_K", false, {}},
    {"Q4_K", false, {}},
    {"Q5_K", false, {}},
    {"Q6_K", false, {}},
    {"Q8_K", false, {}},
    {"IQ2_XXS", false, {}},
    {"IQ2_XS", false, {}},
    {"IQ3_XXS", false, {}},
    {"IQ1_S", false, {}},
    {"IQ4_NL", false, {}},
    {"IQ3_S", false, {}},
    {"IQ2_S", false, {}},
    {"IQ4_XS", false, {}},
    {"I8", false, {}},
    {"I16", false, {}},
    {"I32", true, tensor::DType::kI32},
    {"I64", true, tensor::DType::kI64},
    {"F64", true, tensor::DType::kF64},
    {"IQ1_M", false, {}},
    {"BF16", true, tensor::DType::kBF16},
};

// Little-endian cursor over the header with the version-dependent widths of GGUF v1 (u32 counts and
// lengths) and v2+ (u64).
class Cursor {
 public:
  Cursor(ByteSpan data, uint32_t version) : r_(data), v1_(version == 1) {}

  size_t position() const { return r_.position(); }
  size_t remaining() const { return r_.remaining(); }

  Result<uint32_t> u32(std::string_view what) { return r_.u32_le(what); }
  Result<uint64_t> u64(std::string_view what) { return r_.u64_le(what); }
  // A count or length: u32 in v1, u64 from v2.
  Result<uint64_t> size(std::string_view what) {
    if (v1_) {
      CML_ASSIGN_OR_RETURN(uint32_t v, r_.u32_le(what));
      return uint64_t{v};
    }
    return r_.u64_le(what);
  }
  Result<std::string> string(std::string_view what) {
    CML_ASSIGN_OR_RETURN(uint64_t n, size(what));
    if (n > kGgufMaxStringBytes)
      return invalid_argument(std::string(what) + ": string of " + std::to_string(n) + " bytes exceeds the limit");
    if (n > r_.remaining()) return invalid_argument(std::string(what) + ": string runs past the end of the file");
    CML_ASSIGN_OR_RETURN(ByteSpan b, r_.take(static_cast<size_t>(n), what));
    return std::string(as_string_view(b));
  }
  Result<ByteSpan> take(size_t n, std::string_view what) { return r_.take(n, what); }

 private:
  ByteReader r_;
  bool v1_;
};

size_t scalar_size(uint32_t t) {
  switch (t) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kU64:
    case kI64:
    case kF64:
      return 8;
    default:
      return 0;
  }
}

// Reads one scalar of type t as the matching MetaValue alternative.
Result<MetaValue> read_scalar(Cursor& c, uint32_t t, const std::string& what) {
  CML_ASSIGN_OR_RETURN(ByteSpan b, c.take(scalar_size(t), what));
  const uint8_t* p = b.data();
  switch (t) {
    case kU8:
      return MetaValue(int64_t{p[0]});
    case kI8:
      return MetaValue(int64_t{static_cast<int8_t>(p[0])});
    case kU16:
      return MetaValue(int64_t{load_u16_le(p)});
    case kI16:
      return MetaValue(int64_t{static_cast<int16_t>(load_u16_le(p))});
    case kU32:
      return MetaValue(int64_t{load_u32_le(p)});
    case kI32:
      return MetaValue(int64_t{static_cast<int32_t>(load_u32_le(p))});
    case kU64:
      return MetaValue(load_u64_le(p));
    case kI64:
      return MetaValue(static_cast<int64_t>(load_u64_le(p)));
    case kF32: {
      uint32_t u = load_u32_le(p);
      float f;
      std::memcpy(&f, &u, 4);
      return MetaValue(double{f});
    }
    case kF64: {
      uint64_t u = load_u64_le(p);
      double d;
      std::memcpy(&d, &u, 8);
      return MetaValue(d);
    }
    case kBool:
      if (p[0] > 1) return invalid_argument(what + ": bool value " + std::to_string(p[0]));
      return MetaValue(p[0] == 1);
    default:
      break;
  }
  return invalid_argument(what + ": unknown value type " + std::to_string(t));
}

// Reads a value of type t. Arrays of arrays are consumed (depth-bounded) and reported as nullopt.
Result<std::optional<MetaValue>> read_value(Cursor& c, uint32_t t, const std::string& what, uint32_t depth) {
  if (t == kString) {
    CML_ASSIGN_OR_RETURN(std::string s, c.string(what));
    return std::optional<MetaValue>(MetaValue(std::move(s)));
  }
  if (t != kArray) {
    if (scalar_size(t) == 0) return invalid_argument(what + ": unknown value type " + std::to_string(t));
    CML_ASSIGN_OR_RETURN(MetaValue v, read_scalar(c, t, what));
    return std::optional<MetaValue>(std::move(v));
  }
  if (depth >= kGgufMaxArrayDepth) return invalid_argument(what + ": arrays nested too deeply");
  CML_ASSIGN_OR_RETURN(uint32_t et, c.u32(what + " (array element type)"));
  CML_ASSIGN_OR_RETURN(uint64_t n, c.size(what + " (array length)"));
  if (n > kGgufMaxArrayElements)
    return invalid_argument(what + ": array of " + std::to_string(n) + " elements exceeds the limit");
  // Every element takes at least one byte of the file (strings and arrays take at least 4), so the
  // length is bounded by what remains before anything is allocated.
  size_t min_elem = et == kString || et == kArray ? 4 : scalar_size(et);
  if (min_elem == 0) return invalid_argument(what + ": unknown array element type " + std::to_string(et));
  if (n > c.remaining() / min_elem) return invalid_argument(what + ": array runs past the end of the file");
  const std::string elem_what = what + "[]";
  if (et == kString) {
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      CML_ASSIGN_OR_RETURN(std::string s, c.string(elem_what));
      out.push_back(std::move(s));
    }
    return std::optional<MetaValue>(MetaValue(std::move(out)));
  }
  if (et == kArray) {
    for (uint64_t i = 0; i < n; ++i) {
      CML_ASSIGN_OR_RETURN(auto ignored, read_value(c, kArray, elem_what, depth + 1));
      (void)ignored;
    }
    return std::optional<MetaValue>();
  }
  if (et == kF32 || et == kF64) {
    std::vector<double> out;
    out.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      CML_ASSIGN_OR_RETURN(MetaValue v, read_scalar(c, et, elem_what));
      out.push_back(std::get<double>(v));
    }
    return std::optional<MetaValue>(MetaValue(std::move(out)));
  }
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    CML_ASSIGN_OR_RETURN(MetaValue v, read_scalar(c, et, elem_what));
    if (const auto* b = std::get_if<bool>(&v)) {
      out.push_back(*b ? 1 : 0);
    } else if (const auto* u = std::get_if<uint64_t>(&v)) {
      if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return invalid_argument(elem_what + ": u64 element does not fit int64");
      out.push_back(static_cast<int64_t>(*u));
    } else {
      out.push_back(std::get<int64_t>(v));
    }
  }
  return std::optional<MetaValue>(MetaValue(std::move(out)));
}

struct PendingTensor {
  std::string name;
  std::vector<int64_t> shape;  // row-major
  uint32_t type = 0;
  uint64_t offset = 0;
};

Result<std::unique_ptr<WeightFile>> parse(std::shared_ptr<Storage> storage) {
  const ByteSpan data = storage->bytes();
  if (data.size() < 8 || std::memcmp(data.data(), "GGUF", 4) != 0)
    return invalid_argument("not a GGUF file (bad magic)");
  const uint32_t version = load_u32_le(data.data() + 4);
  if (version < 1 || version > 3) {
    std::string hint = (version & 0xffff) == 0 && version != 0 ? " (big-endian GGUF files are not supported)" : "";
    return invalid_argument("unsupported GGUF version " + std::to_string(version) + hint);
  }
  Cursor c(data.subspan(8), version);
  CML_ASSIGN_OR_RETURN(uint64_t n_tensors, c.size("GGUF tensor count"));
  CML_ASSIGN_OR_RETURN(uint64_t n_kv, c.size("GGUF metadata count"));
  if (n_tensors > kGgufMaxTensors)
    return invalid_argument("GGUF tensor count " + std::to_string(n_tensors) + " exceeds the limit");
  if (n_kv > kGgufMaxKeyValues)
    return invalid_argument("GGUF metadata count " + std::to_string(n_kv) + " exceeds the limit");

  auto file = std::make_unique<BasicWeightFile>("gguf", storage);
  auto& meta = file->mutable_metadata();
  for (uint64_t i = 0; i < n_kv; ++i) {
    CML_ASSIGN_OR_RETURN(std::string key, c.string("GGUF metadata key"));
    CML_ASSIGN_OR_RETURN(uint32_t type, c.u32("GGUF metadata type of " + key));
    CML_ASSIGN_OR_RETURN(std::optional<MetaValue> v, read_value(c, type, "GGUF metadata " + key, 0));
    if (meta.count(key)) return invalid_argument("GGUF metadata key " + key + " appears twice");
    if (v) meta.emplace(key, std::move(*v));
  }

  uint64_t alignment = 32;
  if (auto it = meta.find("general.alignment"); it != meta.end()) {
    const auto* a = std::get_if<int64_t>(&it->second);
    if (!a || *a <= 0 || (*a & (*a - 1)) != 0 || *a > (1 << 16))
      return invalid_argument("GGUF general.alignment must be a power of two between 1 and 65536");
    alignment = static_cast<uint64_t>(*a);
  }

  std::vector<PendingTensor> pending;
  pending.reserve(static_cast<size_t>(std::min<uint64_t>(n_tensors, c.remaining() / 16 + 1)));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    PendingTensor t;
    CML_ASSIGN_OR_RETURN(t.name, c.string("GGUF tensor name"));
    const std::string what = "GGUF tensor " + t.name;
    CML_ASSIGN_OR_RETURN(uint32_t n_dims, c.u32(what + " dimension count"));
    if (n_dims > kGgufMaxDims)
      return invalid_argument(what + ": " + std::to_string(n_dims) + " dimensions (at most " +
                              std::to_string(kGgufMaxDims) + ")");
    t.shape.assign(n_dims, 0);
    for (uint32_t d = 0; d < n_dims; ++d) {
      CML_ASSIGN_OR_RETURN(uint64_t ne, c.size(what + " dimension"));
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return invalid_argument(what + ": dimension too large");
      t.shape[n_dims - 1 - d] = static_cast<int64_t>(ne);  // ne[] is innermost first
    }
    CML_ASSIGN_OR_RETURN(t.type, c.u32(what + " type"));
    CML_ASSIGN_OR_RETURN(t.offset, c.u64(what + " offset"));
    if (t.offset % alignment != 0)
      return invalid_argument(what + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                              std::to_string(alignment));
    pending.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = 8 + c.position();
  const uint64_t data_start = (header_end + alignment - 1) / alignment * alignment;
  if (data_start > data.size() && n_tensors > 0)
    return invalid_argument("GGUF data section starts past the end of the file");
  const uint64_t data_size = data_start <= data.size() ? data.size() - data_start : 0;

  auto& tensors = file->mutable_tensors();
  tensors.reserve(pending.size());
  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  std::unordered_set<std::string> names;
  ranges.reserve(pending.size());
  for (PendingTensor& t : pending) {
    const std::string what = "GGUF tensor " + t.name;
    if (t.type >= std::size(kGgmlTypes) || !kGgmlTypes[t.type].supported)
      return unimplemented(what + " has ggml type " + gguf_type_name(t.type) +
                           ", which is not supported (only F32, F16, BF16, F64, I32, I64)");
    const tensor::DType dtype = kGgmlTypes[t.type].dtype;
    CML_ASSIGN_OR_RETURN(uint64_t nbytes, detail::checked_nbytes(t.shape, tensor::dtype_size(dtype), what));
    uint64_t end = 0;
    if (!detail::checked_add(t.offset, nbytes, &end) || end > data_size)
      return invalid_argument(what + ": data [" + std::to_string(t.offset) + ", +" + std::to_string(nbytes) +
                              ") runs past the end of the file");
    if (!names.insert(t.name).second) return invalid_argument("GGUF tensor name " + t.name + " appears twice");
    TensorRef ref;
    ref.name = std::move(t.name);
    ref.dtype = dtype;
    ref.shape = std::move(t.shape);
    ref.nbytes = static_cast<size_t>(nbytes);
    ref.data = data.data() + data_start + t.offset;
    ranges.push_back({t.offset, end, tensors.size()});
    tensors.push_back(std::move(ref));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end && ranges[i].begin != ranges[i].end &&
        ranges[i - 1].begin != ranges[i - 1].end)
      return invalid_argument("GGUF tensors " + tensors[ranges[i - 1].index].name + " and " +
                              tensors[ranges[i].index].name + " overlap");
  }
  file->ensure_aligned();
  return std::unique_ptr<WeightFile>(std::move(file));
}

}  // namespace

std::string gguf_type_name(uint32_t ggml_type) {
  if (ggml_type < std::size(kGgmlTypes)) return kGgmlTypes[ggml_type].name;
  return "type#" + std::to_string(ggml_type);
}

Result<std::unique_ptr<WeightFile>> open_gguf(const std::string& path) {
  return detail::open_mapped(path, parse);
}

Result<std::unique_ptr<WeightFile>> parse_gguf(ByteSpan data) {
  return parse(Storage::borrow(data));
}

}  // namespace cml::model
