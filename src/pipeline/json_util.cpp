#include "pipeline/json_util.h"

#include <algorithm>

namespace cml::pipeline::json_util {

using nlohmann::json;

Result<json> parse_bounded(std::string_view text, size_t max_bytes, std::string_view what) {
  if (text.size() > max_bytes) {
    return resource_exhausted(std::string(what) + " is " + std::to_string(text.size()) + " bytes, limit " +
                              std::to_string(max_bytes));
  }
  // Nesting depth outside strings, before the recursive parser sees it.
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth)
        return invalid_argument(std::string(what) + ": nesting deeper than " + std::to_string(kMaxJsonDepth));
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(std::string(what) + ": not valid JSON");
  return j;
}

static std::string join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return std::string(path) + "." + std::string(key);
}

Result<const json*> field(const json& obj, std::string_view path, std::string_view key, json::value_t type) {
  if (!obj.is_object())
    return invalid_argument((path.empty() ? std::string("document") : std::string(path)) + ": expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) return invalid_argument(join(path, key) + ": missing");
  bool ok = it->type() == type;
  if (type == json::value_t::number_unsigned) ok = it->is_number_unsigned();
  if (!ok) {
    const char* want = "a value";
    switch (type) {
      case json::value_t::object:
        want = "an object";
        break;
      case json::value_t::array:
        want = "an array";
        break;
      case json::value_t::string:
        want = "a string";
        break;
      case json::value_t::boolean:
        want = "true or false";
        break;
      case json::value_t::number_unsigned:
        want = "a non-negative integer";
        break;
      default:
        break;
    }
    return invalid_argument(join(path, key) + ": expected " + want);
  }
  return &*it;
}

Result<std::string> get_string(const json& obj, std::string_view path, std::string_view key, size_t max_len) {
  CML_ASSIGN_OR_RETURN(const json* v, field(obj, path, key, json::value_t::string));
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_len) return invalid_argument(join(path, key) + ": longer than " + std::to_string(max_len));
  return s;
}

Result<uint64_t> get_uint(const json& obj, std::string_view path, std::string_view key, uint64_t max_value) {
  CML_ASSIGN_OR_RETURN(const json* v, field(obj, path, key, json::value_t::number_unsigned));
  uint64_t x = v->get<uint64_t>();
  if (x > max_value)
    return invalid_argument(join(path, key) + ": " + std::to_string(x) + " exceeds " + std::to_string(max_value));
  return x;
}

Result<bool> get_bool(const json& obj, std::string_view path, std::string_view key) {
  CML_ASSIGN_OR_RETURN(const json* v, field(obj, path, key, json::value_t::boolean));
  return v->get<bool>();
}

Status only_keys(const json& obj, std::string_view path, std::initializer_list<std::string_view> keys) {
  if (!obj.is_object()) return invalid_argument(std::string(path) + ": expected an object");
  for (const auto& [k, v] : obj.items()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      return invalid_argument(join(path, k) + ": unknown field");
    }
  }
  return ok_status();
}

}  // namespace cml::pipeline::json_util
