// Internal to the model module: constructors shared by the tokenizer factories. Not a public header.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"

namespace cml::model::detail {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// pieces use ' ' for SentencePiece's ▁; types are SentencePiece/GGUF token types (1 normal … 6 byte);
// bos/eos may be -1.
Result<std::unique_ptr<Tokenizer>> make_llama_tokenizer(std::vector<std::string> pieces, std::vector<float> scores,
                                                        std::vector<int64_t> types, int64_t bos, int64_t eos);

// tokens in GPT-2's byte-to-unicode form, indexed by id; merges "left right" in rank order.
Result<std::unique_ptr<Tokenizer>> make_gpt2_tokenizer(const std::vector<std::string>& tokens,
                                                       const std::vector<std::string_view>& merges, int64_t bos,
                                                       int64_t eos);

}  // namespace cml::model::detail
