// GPT-2 byte-level BPE: pre-tokenization by the GPT-2 rules, then merges by rank over byte tokens.
#include <array>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "model/bpe_merge.h"
#include "model/tokenizer.h"
#include "model/tokenizer_internal.h"
#include "model/tokenizer_unicode.h"

namespace cml::model {
namespace {

using unicode::decode_utf8;
using unicode::is_letter;
using unicode::is_number;
using unicode::is_space;

enum class Cls { kSpace, kLetter, kNumber, kOther };

Cls classify(char32_t cp) {
  if (cp == unicode::kInvalid) return Cls::kOther;
  if (is_space(cp)) return Cls::kSpace;
  if (is_letter(cp)) return Cls::kLetter;
  if (is_number(cp)) return Cls::kNumber;
  return Cls::kOther;
}

// The byte → code point table: printable Latin-1 bytes map to themselves, the other 68 to U+0100 onwards.
std::array<char32_t, 256> make_byte_table() {
  std::array<char32_t, 256> t{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return t;
}
const std::array<char32_t, 256> kByteToUnicode = make_byte_table();

// Inverse of kByteToUnicode for a token string; false if a character is outside the byte alphabet.
bool unicode_to_bytes(std::string_view token, std::string* out) {
  static const auto inverse = [] {
    std::unordered_map<char32_t, uint8_t> m;
    for (int b = 0; b < 256; ++b) m.emplace(kByteToUnicode[b], static_cast<uint8_t>(b));
    return m;
  }();
  out->clear();
  for (size_t i = 0; i < token.size();) {
    char32_t cp;
    i += decode_utf8(token, i, &cp);
    auto it = inverse.find(cp);
    if (it == inverse.end()) return false;
    out->push_back(static_cast<char>(it->second));
  }
  return true;
}

class Gpt2Tokenizer final : public Tokenizer {
 public:
  std::string kind() const override { return "gpt2"; }
  int32_t vocab_size() const override { return static_cast<int32_t>(bytes_.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  std::string_view piece(int32_t id) const override { return valid(id) ? std::string_view(tokens_[id]) : ""; }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> out;
    if (add_bos && bos_ >= 0) out.push_back(bos_);
    std::vector<int32_t> ids;
    for (std::string_view word : gpt2_pretokenize(text)) {
      ids.clear();
      for (char c : word) ids.push_back(byte_id_[static_cast<uint8_t>(c)]);
      detail::bpe_merge<uint32_t>(ids, [&](int32_t a, int32_t b, uint32_t* rank, int32_t* merged) {
        auto it = merges_.find(key(a, b));
        if (it == merges_.end()) return false;
        *rank = it->second.rank;
        *merged = it->second.merged;
        return true;
      });
      out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
  }

  std::string decode_token(int32_t /*prev*/, int32_t id) const override {
    if (!valid(id)) return std::string(detail::kReplacementChar);
    return bytes_[id];
  }

  // Builds the tables; tokens are in byte-to-unicode form, indexed by id.
  Status init(const std::vector<std::string>& tokens, const std::vector<std::string_view>& merges, int64_t bos,
              int64_t eos) {
    const size_t n = tokens.size();
    if (n == 0) return invalid_argument("GPT-2 vocabulary is empty");
    if (n > static_cast<size_t>(kMaxVocabSize)) return invalid_argument("GPT-2 vocabulary exceeds the limit");
    tokens_ = tokens;
    bytes_.resize(n);
    std::unordered_map<std::string, int32_t> by_bytes;
    by_bytes.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (!unicode_to_bytes(tokens[i], &bytes_[i]))
        return invalid_argument("GPT-2 token " + std::to_string(i) + " has a character outside the byte alphabet");
      by_bytes.emplace(bytes_[i], static_cast<int32_t>(i));
    }
    for (int b = 0; b < 256; ++b) {
      auto it = by_bytes.find(std::string(1, static_cast<char>(b)));
      if (it == by_bytes.end())
        return invalid_argument("GPT-2 vocabulary lacks the token for byte " + std::to_string(b));
      byte_id_[b] = it->second;
    }
    merges_.reserve(merges.size());
    std::string left, right;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      std::string_view line = merges[rank];
      const std::string what = "GPT-2 merge " + std::to_string(rank + 1);
      size_t sp = line.find(' ');
      if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size() ||
          line.find(' ', sp + 1) != std::string_view::npos)
        return invalid_argument(what + " is not two tokens separated by one space");
      if (!unicode_to_bytes(line.substr(0, sp), &left) || !unicode_to_bytes(line.substr(sp + 1), &right))
        return invalid_argument(what + " has a character outside the byte alphabet");
      auto l = by_bytes.find(left), r = by_bytes.find(right), m = by_bytes.find(left + right);
      if (l == by_bytes.end() || r == by_bytes.end() || m == by_bytes.end())
        return invalid_argument(what + " (" + std::string(line) + ") names a token missing from the vocabulary");
      merges_.emplace(key(l->second, r->second), Merge{static_cast<uint32_t>(rank), m->second});  // first rank wins
    }
    for (int64_t id : {bos, eos})
      if (id < -1 || id >= static_cast<int64_t>(n))
        return invalid_argument("GPT-2 special token id " + std::to_string(id) + " out of range");
    bos_ = static_cast<int32_t>(bos);
    eos_ = static_cast<int32_t>(eos);
    return ok_status();
  }

 private:
  struct Merge {
    uint32_t rank;
    int32_t merged;
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  bool valid(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < bytes_.size(); }

  std::vector<std::string> tokens_;  // as stored (byte-to-unicode form)
  std::vector<std::string> bytes_;   // raw bytes of each token
  std::array<int32_t, 256> byte_id_{};
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t bos_ = -1, eos_ = -1;
};

}  // namespace

char32_t gpt2_byte_to_unicode(uint8_t b) {
  return kByteToUnicode[b];
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  // Decode once: code points with their byte offsets and classes.
  struct Ch {
    size_t pos;
    char32_t cp;
    Cls cls;
  };
  std::vector<Ch> ch;
  ch.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    size_t len = decode_utf8(text, i, &cp);
    ch.push_back({i, cp, classify(cp)});
    i += len;
  }
  const size_t n = ch.size();
  auto byte_at = [&](size_t k) { return k < n ? ch[k].pos : text.size(); };
  auto run = [&](size_t k, Cls c) {
    while (k < n && ch[k].cls == c) ++k;
    return k;
  };
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    const char32_t c = ch[i].cp;
    // 's 't 're 've 'm 'll 'd
    if (c == '\'' && i + 1 < n) {
      const char32_t a = ch[i + 1].cp, b = i + 2 < n ? ch[i + 2].cp : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd')
        end = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        end = i + 3;
    }
    if (end == i) {
      // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
      size_t k = (c == ' ' && i + 1 < n && ch[i + 1].cls != Cls::kSpace) ? i + 1 : i;
      if (ch[k].cls != Cls::kSpace) {
        end = run(k, ch[k].cls);
      } else {
        // `\s+(?!\S)` then `\s+`: a whitespace run, less its last character if non-space follows.
        size_t j = run(i, Cls::kSpace);
        end = (j < n && j - i >= 2) ? j - 1 : j;
      }
    }
    out.push_back(text.substr(byte_at(i), byte_at(end) - byte_at(i)));
    i = end;
  }
  return out;
}

namespace detail {

Result<std::unique_ptr<Tokenizer>> make_gpt2_tokenizer(const std::vector<std::string>& tokens,
                                                       const std::vector<std::string_view>& merges, int64_t bos,
                                                       int64_t eos) {
  auto t = std::make_unique<Gpt2Tokenizer>();
  CML_RETURN_IF_ERROR(t->init(tokens, merges, bos, eos));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace detail

Result<std::unique_ptr<Tokenizer>> parse_gpt2_tokenizer(std::string_view encoder_json, std::string_view vocab_bpe) {
  if (encoder_json.size() > kMaxTokenizerFileBytes || vocab_bpe.size() > kMaxTokenizerFileBytes)
    return invalid_argument("GPT-2 tokenizer file exceeds the size limit");
  nlohmann::json j = nlohmann::json::parse(encoder_json.begin(), encoder_json.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("encoder.json is not a JSON object");
  if (j.size() > static_cast<size_t>(kMaxVocabSize)) return invalid_argument("encoder.json has too many tokens");
  std::vector<std::string> tokens(j.size());
  std::vector<bool> seen(j.size(), false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_unsigned())
      return invalid_argument("encoder.json id of " + it.key() + " is not a non-negative integer");
    const uint64_t id = it.value().get<uint64_t>();
    if (id >= tokens.size() || seen[id])
      return invalid_argument("encoder.json ids must be 0.." + std::to_string(tokens.size() - 1) + ", each once (" +
                              it.key() + " → " + std::to_string(id) + ")");
    seen[id] = true;
    tokens[id] = it.key();
  }
  std::vector<std::string_view> merges;
  size_t pos = 0;
  bool first = true;
  while (pos < vocab_bpe.size()) {
    size_t nl = vocab_bpe.find('\n', pos);
    if (nl == std::string_view::npos) nl = vocab_bpe.size();
    std::string_view line = vocab_bpe.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first && line.starts_with("#version")) {
      first = false;
      continue;
    }
    first = false;
    if (line.empty()) continue;
    merges.push_back(line);
  }
  int64_t eot = -1;
  if (auto it = j.find("<|endoftext|>"); it != j.end()) eot = it->get<int64_t>();
  return detail::make_gpt2_tokenizer(tokens, merges, eot, eot);
}

Result<std::unique_ptr<Tokenizer>> load_gpt2_tokenizer(const std::string& encoder_json_path,
                                                       const std::string& vocab_bpe_path) {
  CML_ASSIGN_OR_RETURN(Bytes enc, read_file(encoder_json_path, kMaxTokenizerFileBytes));
  CML_ASSIGN_OR_RETURN(Bytes bpe, read_file(vocab_bpe_path, kMaxTokenizerFileBytes));
  return parse_gpt2_tokenizer(as_string_view(enc), as_string_view(bpe));
}

}  // namespace cml::model
