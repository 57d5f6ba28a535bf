#include "model/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "model/gguf.h"
#include "model/tokenizer_internal.h"

namespace cml::model {

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    out += decode_token(prev, id);
    prev = id;
  }
  return out;
}

namespace {

template <typename T>
const T* meta_get(const WeightFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  return it == f.metadata().end() ? nullptr : std::get_if<T>(&it->second);
}

int64_t meta_id(const WeightFile& f, const std::string& key, int64_t fallback) {
  auto v = f.meta_int(key);
  return v ? *v : fallback;
}

// SentencePiece writes a space as U+2581 (▁); llama2.c's tokenizer.bin and this tokenizer use ' '.
std::string sentencepiece_to_text(std::string_view piece) {
  static constexpr std::string_view kSpace = "\xE2\x96\x81";
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kSpace.size()) == kSpace) {
      out.push_back(' ');
      i += kSpace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> tokenizer_from_gguf(const WeightFile& file) {
  auto model = file.meta_string("tokenizer.ggml.model");
  if (!model) return not_found("the weight file has no embedded tokenizer (tokenizer.ggml.model)");
  const auto* tokens = meta_get<std::vector<std::string>>(file, "tokenizer.ggml.tokens");
  if (!tokens) return invalid_argument("GGUF tokenizer.ggml.tokens is missing or not an array of strings");
  const int64_t bos = meta_id(file, "tokenizer.ggml.bos_token_id", -1);
  const int64_t eos = meta_id(file, "tokenizer.ggml.eos_token_id", -1);
  if (*model == "llama") {
    const auto* scores = meta_get<std::vector<double>>(file, "tokenizer.ggml.scores");
    const auto* types = meta_get<std::vector<int64_t>>(file, "tokenizer.ggml.token_type");
    if (!scores) return invalid_argument("GGUF tokenizer.ggml.scores is missing or not an array of floats");
    std::vector<std::string> pieces;
    pieces.reserve(tokens->size());
    for (const std::string& t : *tokens) pieces.push_back(sentencepiece_to_text(t));
    std::vector<float> s;
    s.reserve(scores->size());
    for (double d : *scores) {
      if (std::isnan(d)) return invalid_argument("GGUF tokenizer score is NaN");
      s.push_back(static_cast<float>(d));
    }
    std::vector<int64_t> ty = types ? *types : std::vector<int64_t>(tokens->size(), 1);
    return detail::make_llama_tokenizer(std::move(pieces), std::move(s), std::move(ty), bos, eos);
  }
  if (*model == "gpt2") {
    const auto* merges = meta_get<std::vector<std::string>>(file, "tokenizer.ggml.merges");
    if (!merges) return invalid_argument("GGUF tokenizer.ggml.merges is missing or not an array of strings");
    std::vector<std::string_view> m(merges->begin(), merges->end());
    return detail::make_gpt2_tokenizer(*tokens, m, bos, eos);
  }
  return unimplemented("GGUF tokenizer model \"" + *model + "\" is not supported (llama, gpt2)");
}

Result<std::unique_ptr<Tokenizer>> open_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return load_gpt2_tokenizer((fs::path(path) / "encoder.json").string(), (fs::path(path) / "vocab.bpe").string());
  }
  if (fs::path(path).filename() == "encoder.json")
    return load_gpt2_tokenizer(path, (fs::path(path).parent_path() / "vocab.bpe").string());
  CML_ASSIGN_OR_RETURN(Bytes head, [&]() -> Result<Bytes> {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return not_found("cannot open " + path);
    Bytes b(4);
    size_t got = std::fread(b.data(), 1, 4, f);
    std::fclose(f);
    b.resize(got);
    return b;
  }());
  if (head.size() == 4 && std::memcmp(head.data(), "GGUF", 4) == 0) {
    CML_ASSIGN_OR_RETURN(auto file, open_gguf(path));
    return tokenizer_from_gguf(*file);
  }
  return load_llama2c_tokenizer(path);
}

Result<std::unique_ptr<Tokenizer>> tokenizer_for_model(const WeightFile& file, const std::string& model_path,
                                                       int32_t vocab) {
  if (file.format() == "gguf") return tokenizer_from_gguf(file);
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(model_path).parent_path().empty() ? fs::path(".") : fs::path(model_path).parent_path();
  if (file.format() == "llama2c") {
    std::vector<fs::path> candidates;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.starts_with("tok") && e.path().extension() == ".bin")
        candidates.push_back(e.path());
    }
    std::sort(candidates.begin(), candidates.end());
    for (const auto& p : candidates) {
      auto t = load_llama2c_tokenizer(p.string(), vocab);
      if (t.is_ok()) return t;
    }
    return not_found("no tokenizer (tokenizer.bin or tok*.bin with " + std::to_string(vocab) + " tokens) beside " +
                     model_path + "; pass --tokenizer");
  }
  return open_tokenizer(dir.string());
}

}  // namespace cml::model
