// Bounded JSON parsing for documents and messages that arrive from outside, and small typed field readers
// whose errors name the field's path.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cml::pipeline::json_util {

constexpr size_t kMaxJsonDepth = 32;

// Parses `text` after checking its size (RESOURCE_EXHAUSTED above max_bytes) and its nesting depth
// (INVALID_ARGUMENT above kMaxJsonDepth); never throws. `what` names the document in errors.
Result<nlohmann::json> parse_bounded(std::string_view text, size_t max_bytes, std::string_view what);

// Field readers: INVALID_ARGUMENT "<path>.<key>: ..." when missing or of the wrong type/range.
Result<const nlohmann::json*> field(const nlohmann::json& obj, std::string_view path, std::string_view key,
                                    nlohmann::json::value_t type);
Result<std::string> get_string(const nlohmann::json& obj, std::string_view path, std::string_view key,
                               size_t max_len = 4096);
Result<uint64_t> get_uint(const nlohmann::json& obj, std::string_view path, std::string_view key,
                          uint64_t max_value = UINT64_MAX);
Result<bool> get_bool(const nlohmann::json& obj, std::string_view path, std::string_view key);
// Refuses keys not listed (catches typos such as "layer" for "layers").
Status only_keys(const nlohmann::json& obj, std::string_view path, std::initializer_list<std::string_view> keys);

}  // namespace cml::pipeline::json_util
