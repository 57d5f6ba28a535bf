#include "model/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "model/weights_storage.h"

namespace cml::model {
namespace {

using detail::BasicWeightFile;
using detail::Storage;
using tensor::DType;

struct DTypeName {
  const char* name;
  bool supported;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {
    {"F32", true, DType::kF32}, {"F16", true, DType::kF16}, {"BF16", true, DType::kBF16}, {"F64", true, DType::kF64},
    {"I32", true, DType::kI32}, {"I64", true, DType::kI64}, {"U8", true, DType::kU8},     {"U32", true, DType::kU32},
    {"I8", false, {}},          {"I16", false, {}},         {"U16", false, {}},           {"U64", false, {}},
    {"BOOL", false, {}},        {"F8_E4M3", false, {}},     {"F8_E5M2", false, {}},
};

// Deeply nested JSON is refused before parsing (nothing in a safetensors header nests deeper than 3).
constexpr int kMaxJsonDepth = 16;

bool nesting_within(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    if (in_string) {
      if (ch == '\\')
        ++i;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > max_depth) return false;
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  return true;
}

Result<uint64_t> json_u64(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_unsigned()) return invalid_argument(what + " must be a non-negative integer");
  return v.get<uint64_t>();
}

Result<std::unique_ptr<WeightFile>> parse(std::shared_ptr<Storage> storage) {
  const ByteSpan data = storage->bytes();
  if (data.size() < 8) return invalid_argument("safetensors file shorter than its 8-byte header length");
  const uint64_t n = load_u64_le(data.data());
  if (n > kSafetensorsMaxHeaderBytes)
    return invalid_argument("safetensors header of " + std::to_string(n) + " bytes exceeds the limit of " +
                            std::to_string(kSafetensorsMaxHeaderBytes));
  if (n > data.size() - 8)
    return invalid_argument("safetensors header length " + std::to_string(n) + " runs past the end of the file");
  const std::string_view header = as_string_view(data.subspan(8, static_cast<size_t>(n)));
  if (header.empty() || header[0] != '{') return invalid_argument("safetensors header is not a JSON object");
  if (!nesting_within(header, kMaxJsonDepth)) return invalid_argument("safetensors header JSON nests too deeply");
  nlohmann::json j = nlohmann::json::parse(header.begin(), header.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("safetensors header is not valid JSON object");

  const ByteSpan body = data.subspan(8 + static_cast<size_t>(n));
  auto file = std::make_unique<BasicWeightFile>("safetensors", storage);
  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  auto& tensors = file->mutable_tensors();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return invalid_argument("safetensors __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return invalid_argument("safetensors __metadata__ value of " + m.key() + " is not a string");
        file->mutable_metadata().emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    const std::string what = "safetensors tensor " + name;
    if (!v.is_object()) return invalid_argument(what + ": entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return invalid_argument(what + ": missing dtype");
    if (sh == v.end() || !sh->is_array()) return invalid_argument(what + ": missing shape");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      return invalid_argument(what + ": data_offsets must be [begin, end]");
    const std::string dname = dt->get<std::string>();
    const DTypeName* found = nullptr;
    for (const DTypeName& d : kDTypes)
      if (dname == d.name) found = &d;
    if (!found) return invalid_argument(what + ": unknown dtype " + dname);
    if (!found->supported) return unimplemented(what + " has dtype " + dname + ", which is not supported");
    if (sh->size() > kSafetensorsMaxDims) return invalid_argument(what + ": too many dimensions");
    TensorRef ref;
    ref.name = name;
    ref.dtype = found->dtype;
    for (const auto& d : *sh) {
      CML_ASSIGN_OR_RETURN(uint64_t dim, json_u64(d, what + " dimension"));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return invalid_argument(what + ": dimension too large");
      ref.shape.push_back(static_cast<int64_t>(dim));
    }
    CML_ASSIGN_OR_RETURN(uint64_t begin, json_u64((*off)[0], what + " data_offsets[0]"));
    CML_ASSIGN_OR_RETURN(uint64_t end, json_u64((*off)[1], what + " data_offsets[1]"));
    if (begin > end || end > body.size())
      return invalid_argument(what + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                              ") outside the data section of " + std::to_string(body.size()) + " bytes");
    CML_ASSIGN_OR_RETURN(uint64_t nbytes, detail::checked_nbytes(ref.shape, tensor::dtype_size(ref.dtype), what));
    if (nbytes != end - begin)
      return invalid_argument(what + ": shape and dtype need " + std::to_string(nbytes) +
                              " bytes but data_offsets span " + std::to_string(end - begin));
    ref.nbytes = static_cast<size_t>(nbytes);
    ref.data = body.data() + begin;
    ranges.push_back({begin, end, tensors.size()});
    tensors.push_back(std::move(ref));
  }
  // Tensors must tile the data section exactly: no overlap, no hole, nothing after the last one.
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expect = 0;
  for (const Range& r : ranges) {
    if (r.begin < expect)
      return invalid_argument("safetensors tensor " + tensors[r.index].name + " overlaps another tensor");
    if (r.begin > expect)
      return invalid_argument("safetensors data section has a hole before tensor " + tensors[r.index].name);
    expect = r.end;
  }
  if (expect != body.size())
    return invalid_argument("safetensors data section has " + std::to_string(body.size() - expect) +
                            " bytes not covered by any tensor");
  // Expose tensors in file order (the JSON object itself is unordered).
  std::vector<TensorRef> ordered;
  ordered.reserve(tensors.size());
  for (const Range& r : ranges) ordered.push_back(std::move(tensors[r.index]));
  tensors = std::move(ordered);
  file->ensure_aligned();
  return std::unique_ptr<WeightFile>(std::move(file));
}

Result<std::string> build_header(std::span<const SafetensorsTensor> tensors,
                                 const std::map<std::string, std::string>& metadata, uint64_t* data_bytes) {
  nlohmann::json j = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    j["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const SafetensorsTensor& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second)
      return invalid_argument("safetensors: duplicate or reserved tensor name " + t.name);
    CML_ASSIGN_OR_RETURN(uint64_t nbytes, detail::checked_nbytes(t.shape, tensor::dtype_size(t.dtype), t.name));
    if (nbytes != t.data.size())
      return invalid_argument("safetensors: tensor " + t.name + " has " + std::to_string(t.data.size()) +
                              " bytes of data, its shape needs " + std::to_string(nbytes));
    std::string_view dname = safetensors_dtype_name(t.dtype);
    if (dname.empty()) return invalid_argument("safetensors: dtype of " + t.name + " cannot be written");
    j[t.name] = {{"dtype", dname}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string header = j.dump();
  header.resize((header.size() + 7) / 8 * 8, ' ');
  *data_bytes = offset;
  return header;
}

}  // namespace

std::string_view safetensors_dtype_name(tensor::DType dtype) {
  for (const DTypeName& d : kDTypes)
    if (d.supported && d.dtype == dtype) return d.name;
  return {};
}

Result<std::unique_ptr<WeightFile>> open_safetensors(const std::string& path) {
  return detail::open_mapped(path, parse);
}

Result<std::unique_ptr<WeightFile>> parse_safetensors(ByteSpan data) {
  return parse(Storage::borrow(data));
}

Result<Bytes> write_safetensors(std::span<const SafetensorsTensor> tensors,
                                const std::map<std::string, std::string>& metadata) {
  uint64_t data_bytes = 0;
  CML_ASSIGN_OR_RETURN(std::string header, build_header(tensors, metadata, &data_bytes));
  ByteWriter w;
  w.u64_le(header.size());
  w.bytes(as_bytes(header));
  for (const SafetensorsTensor& t : tensors) w.bytes(t.data);
  return w.take();
}

Status write_safetensors_file(const std::string& path, std::span<const SafetensorsTensor> tensors,
                              const std::map<std::string, std::string>& metadata) {
  uint64_t data_bytes = 0;
  CML_ASSIGN_OR_RETURN(std::string header, build_header(tensors, metadata, &data_bytes));
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return unavailable("cannot create " + path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const SafetensorsTensor& t : tensors)
    ok = ok && (t.data.empty() || std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size());
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return unavailable("short write to " + path);
  return ok_status();
}

}  // namespace cml::model
