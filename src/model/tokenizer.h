// Tokenizers: text ↔ token ids for the Llama (SentencePiece-style) and GPT-2 (byte-level BPE) models.
//
// Llama: the vocabulary of llama2.c's tokenizer.bin or of a GGUF file's tokenizer.ggml.* metadata. Encoding
// follows llama2.c: a leading-space dummy prefix for non-empty text, each UTF-8 character looked up as a
// piece (byte-fallback tokens <0xNN> for characters not in the vocabulary and for invalid bytes), then
// repeated merging of the adjacent pair whose concatenation is the highest-scoring piece (leftmost on ties).
// Decoding maps byte tokens back to their byte, drops the leading space of the first piece after BOS, and
// renders control tokens (BOS, EOS) as nothing, so decode(encode(s, true)) == s for any bytes s when the
// vocabulary has the 256 byte tokens (as Llama's does). BOS/EOS: GGUF tokenizer.ggml.*_token_id, or 1 and 2
// for tokenizer.bin.
//
// GPT-2: encoder.json + vocab.bpe. Text is split by the GPT-2 pre-tokenization rules
// ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+), implemented by hand over
// Unicode 14 letter/number tables generated from Python's unicodedata (tools/gen_unicode_tables.py) and
// the Unicode White_Space property; bytes that are not valid UTF-8 count as "other" characters. Each piece
// is byte-level BPE-merged by merge rank. Every byte string round-trips: decode(encode(s)) == s.
// "<|endoftext|>" (50256) is BOS and EOS; text is never scanned for special tokens.
//
// Ids outside [0, vocab_size) decode to U+FFFD.
// Thread safety: tokenizers are immutable after construction; any thread may call any method.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "model/weights.h"

namespace cml::model {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // "llama" or "gpt2".
  virtual std::string kind() const = 0;
  virtual int32_t vocab_size() const = 0;
  // -1 when the vocabulary has none.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // Text (any bytes) → ids, with BOS first if add_bos and the vocabulary has one. Never fails.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  // The bytes that token `id` contributes when it follows `prev` (-1 for the first token). Concatenating
  // decode_token over a sequence gives decode(); a streaming printer calls this per generated token.
  // The result may end inside a UTF-8 character that the next token completes.
  virtual std::string decode_token(int32_t prev, int32_t id) const = 0;
  // The vocabulary entry of `id` as stored (for diagnostics); empty for ids out of range.
  virtual std::string_view piece(int32_t id) const = 0;

  std::string decode(std::span<const int32_t> ids) const;
};

// Bounds on tokenizer files.
inline constexpr size_t kMaxTokenizerFileBytes = 64u << 20;
inline constexpr int32_t kMaxVocabSize = 1 << 21;
inline constexpr uint32_t kMaxTokenBytes = 1u << 16;

// llama2.c tokenizer.bin: u32 max_token_length, then per token f32 score, u32 length, bytes; the token
// count is implied by the file size (or checked against expected_vocab_size when it is > 0).
// BOS = 1 and EOS = 2, as llama2.c assumes.
Result<std::unique_ptr<Tokenizer>> load_llama2c_tokenizer(const std::string& path, int32_t expected_vocab_size = 0);
Result<std::unique_ptr<Tokenizer>> parse_llama2c_tokenizer(ByteSpan data, int32_t expected_vocab_size = 0);

// From GGUF metadata: tokenizer.ggml.model "llama" (tokens, scores, token_type, bos/eos/unknown ids) or
// "gpt2" (tokens in byte-level form, merges, bos/eos ids).
Result<std::unique_ptr<Tokenizer>> tokenizer_from_gguf(const WeightFile& file);

// GPT-2 byte-level BPE from the contents of encoder.json and vocab.bpe.
Result<std::unique_ptr<Tokenizer>> parse_gpt2_tokenizer(std::string_view encoder_json, std::string_view vocab_bpe);
Result<std::unique_ptr<Tokenizer>> load_gpt2_tokenizer(const std::string& encoder_json_path,
                                                       const std::string& vocab_bpe_path);

// Opens whatever `path` names: a GGUF file (embedded tokenizer), a directory holding encoder.json and
// vocab.bpe, an encoder.json (vocab.bpe beside it), or a llama2.c tokenizer.bin.
Result<std::unique_ptr<Tokenizer>> open_tokenizer(const std::string& path);

// The tokenizer that goes with a model file: the one embedded in a GGUF file, else the first tok*.bin
// beside a llama2.c checkpoint whose vocabulary has `vocab` tokens, else encoder.json + vocab.bpe beside
// the file. NOT_FOUND names the model file when nothing fits.
Result<std::unique_ptr<Tokenizer>> tokenizer_for_model(const WeightFile& file, const std::string& model_path,
                                                       int32_t vocab);

// GPT-2 internals, exposed for tests and fuzzing.
// Splits text by the GPT-2 pre-tokenization rules; the pieces concatenate to `text`.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);
// GPT-2's reversible byte → printable code point mapping, and its UTF-8 form.
char32_t gpt2_byte_to_unicode(uint8_t b);

}  // namespace cml::model
