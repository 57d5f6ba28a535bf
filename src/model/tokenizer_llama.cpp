// SentencePiece-style Llama tokenizer (as llama2.c implements it), from tokenizer.bin or GGUF metadata.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "model/bpe_merge.h"
#include "model/tokenizer.h"
#include "model/tokenizer_internal.h"

namespace cml::model {
namespace {

// SentencePiece / GGUF token types.
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// llama2.c ignores merges whose score is not above this.
constexpr float kMinMergeScore = -1e10f;

class LlamaTokenizer final : public Tokenizer {
 public:
  LlamaTokenizer(std::vector<std::string> pieces, std::vector<float> scores, std::vector<int64_t> types, int32_t bos,
                 int32_t eos)
      : pieces_(std::move(pieces)), scores_(std::move(scores)), types_(std::move(types)), bos_(bos), eos_(eos) {
    byte_id_.fill(-1);
    for (size_t i = 0; i < types_.size() && unk_ < 0; ++i)
      if (types_[i] == kUnknown) unk_ = static_cast<int32_t>(i);
    if (unk_ < 0) unk_ = 0;
    lookup_.reserve(pieces_.size());
    for (size_t i = 0; i < pieces_.size(); ++i) {
      const auto id = static_cast<int32_t>(i);
      if (types_[i] == kByte) {
        int byte = parse_byte_piece(pieces_[i]);
        if (byte >= 0 && byte_id_[byte] < 0) byte_id_[byte] = id;
        continue;
      }
      if (types_[i] == kControl || types_[i] == kUnknown || types_[i] == kUnused) continue;
      lookup_.emplace(pieces_[i], id);  // first occurrence wins
    }
  }

  std::string kind() const override { return "llama"; }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  std::string_view piece(int32_t id) const override { return valid(id) ? std::string_view(pieces_[id]) : ""; }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> out;
    if (add_bos && bos_ >= 0) out.push_back(bos_);
    if (text.empty()) return out;
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 1);
    push_chars(" ", ids);  // the dummy prefix
    push_chars(text, ids);
    detail::bpe_merge<float>(ids, [&](int32_t a, int32_t b, float* priority, int32_t* merged) {
      std::string joined;
      joined.reserve(pieces_[a].size() + pieces_[b].size());
      joined.append(pieces_[a]).append(pieces_[b]);
      auto it = lookup_.find(joined);
      if (it == lookup_.end() || !(scores_[it->second] > kMinMergeScore)) return false;
      *priority = -scores_[it->second];
      *merged = it->second;
      return true;
    });
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }

  std::string decode_token(int32_t prev, int32_t id) const override {
    if (!valid(id)) return std::string(detail::kReplacementChar);
    if (types_[id] == kControl) return {};
    if (types_[id] == kByte) {
      int byte = parse_byte_piece(pieces_[id]);
      if (byte >= 0) return std::string(1, static_cast<char>(byte));
    }
    std::string_view p = pieces_[id];
    if (prev == bos_ && bos_ >= 0 && !p.empty() && p[0] == ' ') p.remove_prefix(1);
    return std::string(p);
  }

 private:
  bool valid(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < pieces_.size(); }

  static int parse_byte_piece(std::string_view p) {
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
    int hi = hex(p[3]), lo = hex(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }

  // Looks up each UTF-8 character (grouped as llama2.c does: a lead byte and up to 3 continuation bytes);
  // characters not in the vocabulary become byte tokens (or unknown when the vocabulary has none).
  void push_chars(std::string_view text, std::vector<int32_t>& ids) const {
    size_t i = 0;
    while (i < text.size()) {
      size_t j = i + 1;
      while (j < text.size() && j - i < 4 && (static_cast<uint8_t>(text[j]) & 0xC0) == 0x80) ++j;
      auto it = lookup_.find(std::string(text.substr(i, j - i)));
      if (it != lookup_.end()) {
        ids.push_back(it->second);
      } else {
        for (size_t k = i; k < j; ++k) {
          int32_t b = byte_id_[static_cast<uint8_t>(text[k])];
          ids.push_back(b >= 0 ? b : unk_id());
        }
      }
      i = j;
    }
  }

  int32_t unk_id() const { return unk_; }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<int64_t> types_;
  int32_t bos_, eos_;
  int32_t unk_ = -1;
  std::array<int32_t, 256> byte_id_{};
  std::unordered_map<std::string, int32_t> lookup_;
};

// llama2.c's tokenizer.bin carries no token types: <unk> is 0, BOS 1, EOS 2 (control), and pieces of
// the form <0xNN> are byte tokens.
std::vector<int64_t> infer_types(const std::vector<std::string>& pieces) {
  std::vector<int64_t> types(pieces.size(), kNormal);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string& p = pieces[i];
    if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') types[i] = kByte;
  }
  if (!types.empty()) types[0] = kUnknown;
  if (types.size() > 1) types[1] = kControl;
  if (types.size() > 2) types[2] = kControl;
  return types;
}

}  // namespace

namespace detail {

Result<std::unique_ptr<Tokenizer>> make_llama_tokenizer(std::vector<std::string> pieces, std::vector<float> scores,
                                                        std::vector<int64_t> types, int64_t bos, int64_t eos) {
  const size_t n = pieces.size();
  if (n == 0) return invalid_argument("tokenizer vocabulary is empty");
  if (n > static_cast<size_t>(kMaxVocabSize)) return invalid_argument("tokenizer vocabulary exceeds the limit");
  if (scores.size() != n || types.size() != n)
    return invalid_argument("tokenizer has " + std::to_string(n) + " tokens but " + std::to_string(scores.size()) +
                            " scores and " + std::to_string(types.size()) + " types");
  for (size_t i = 0; i < n; ++i)
    if (types[i] < kNormal || types[i] > kByte)
      return invalid_argument("tokenizer token " + std::to_string(i) + " has unknown type " + std::to_string(types[i]));
  auto check_id = [&](int64_t id, const char* what) -> Status {
    if (id < -1 || id >= static_cast<int64_t>(n))
      return invalid_argument(std::string("tokenizer ") + what + " id " + std::to_string(id) + " out of range");
    return ok_status();
  };
  CML_RETURN_IF_ERROR(check_id(bos, "BOS"));
  CML_RETURN_IF_ERROR(check_id(eos, "EOS"));
  return std::unique_ptr<Tokenizer>(std::make_unique<LlamaTokenizer>(
      std::move(pieces), std::move(scores), std::move(types), static_cast<int32_t>(bos), static_cast<int32_t>(eos)));
}

}  // namespace detail

Result<std::unique_ptr<Tokenizer>> parse_llama2c_tokenizer(ByteSpan data, int32_t expected_vocab_size) {
  if (data.size() > kMaxTokenizerFileBytes) return invalid_argument("tokenizer.bin exceeds the size limit");
  ByteReader r(data);
  CML_ASSIGN_OR_RETURN(uint32_t max_len, r.u32_le("tokenizer.bin max_token_length"));
  if (max_len > kMaxTokenBytes)
    return invalid_argument("tokenizer.bin max_token_length " + std::to_string(max_len) + " exceeds the limit");
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (!r.empty()) {
    if (expected_vocab_size > 0 && pieces.size() == static_cast<size_t>(expected_vocab_size)) break;
    if (pieces.size() >= static_cast<size_t>(kMaxVocabSize))
      return invalid_argument("tokenizer.bin has too many tokens");
    const std::string what = "tokenizer.bin token " + std::to_string(pieces.size());
    CML_ASSIGN_OR_RETURN(uint32_t score_bits, r.u32_le(what + " score"));
    CML_ASSIGN_OR_RETURN(uint32_t len, r.u32_le(what + " length"));
    if (len > max_len)
      return invalid_argument(what + " length " + std::to_string(len) + " exceeds max_token_length " +
                              std::to_string(max_len));
    CML_ASSIGN_OR_RETURN(ByteSpan bytes, r.take(len, what + " bytes"));
    float score;
    std::memcpy(&score, &score_bits, 4);
    if (std::isnan(score)) return invalid_argument(what + " score is NaN");
    scores.push_back(score);
    pieces.emplace_back(as_string_view(bytes));
  }
  if (expected_vocab_size > 0 && pieces.size() != static_cast<size_t>(expected_vocab_size))
    return invalid_argument("tokenizer.bin has " + std::to_string(pieces.size()) + " tokens, the model expects " +
                            std::to_string(expected_vocab_size));
  if (pieces.size() < 3) return invalid_argument("tokenizer.bin has fewer than 3 tokens (<unk>, BOS, EOS)");
  std::vector<int64_t> types = infer_types(pieces);
  return detail::make_llama_tokenizer(std::move(pieces), std::move(scores), std::move(types), 1, 2);
}

Result<std::unique_ptr<Tokenizer>> load_llama2c_tokenizer(const std::string& path, int32_t expected_vocab_size) {
  CML_ASSIGN_OR_RETURN(Bytes data, read_file(path, kMaxTokenizerFileBytes));
  auto r = parse_llama2c_tokenizer(data, expected_vocab_size);
  if (!r.is_ok()) return r.status().with_context(path);
  return r;
}

}  // namespace cml::model
