#include "model/llama2c_checkpoint.h"

#include "model/weights_storage.h"

namespace cml::model {
namespace {

using detail::BasicWeightFile;
using detail::Storage;

constexpr size_t kHeaderBytes = 7 * 4;

// The f32 arrays of the file in order: name pattern, per-layer?, rows, cols (rows × cols per layer).
struct Segment {
  const char* name;  // GGUF name; "%d" replaced by the layer for per-layer arrays
  bool per_layer;
  uint64_t rows, cols;
};

std::vector<Segment> layout(const Llama2cConfig& c) {
  const uint64_t dim = c.dim, hidden = c.hidden_dim, vocab = c.vocab_size;
  const uint64_t head = dim / c.n_heads, kv_dim = head * c.n_kv_heads;
  std::vector<Segment> s = {
      {"token_embd.weight", false, vocab, dim},
      {"blk.%d.attn_norm.weight", true, 1, dim},
      {"blk.%d.attn_q.weight", true, dim, dim},
      {"blk.%d.attn_k.weight", true, kv_dim, dim},
      {"blk.%d.attn_v.weight", true, kv_dim, dim},
      {"blk.%d.attn_output.weight", true, dim, dim},
      {"blk.%d.ffn_norm.weight", true, 1, dim},
      {"blk.%d.ffn_gate.weight", true, hidden, dim},
      {"blk.%d.ffn_down.weight", true, dim, hidden},
      {"blk.%d.ffn_up.weight", true, hidden, dim},
      {"output_norm.weight", false, 1, dim},
      {nullptr, false, static_cast<uint64_t>(c.seq_len), head},  // freq_cis_real and _imag: 2 × seq × head/2
  };
  if (!c.shared_classifier) s.push_back({"output.weight", false, vocab, dim});
  return s;
}

std::string layer_name(const char* pattern, int layer) {
  std::string s = pattern;
  auto at = s.find("%d");
  if (at != std::string::npos) s.replace(at, 2, std::to_string(layer));
  return s;
}

Result<std::unique_ptr<WeightFile>> parse(std::shared_ptr<Storage> storage) {
  const ByteSpan data = storage->bytes();
  if (data.size() < kHeaderBytes) return invalid_argument("llama2.c checkpoint shorter than its 28-byte config");
  CML_ASSIGN_OR_RETURN(Llama2cConfig c, parse_llama2c_config(data.first(kHeaderBytes)));
  CML_ASSIGN_OR_RETURN(uint64_t expected, llama2c_expected_file_size(c));
  if (expected != data.size())
    return invalid_argument("llama2.c checkpoint is " + std::to_string(data.size()) + " bytes but its config implies " +
                            std::to_string(expected) +
                            (c.shared_classifier ? " (shared classifier)" : " (separate classifier)"));
  auto file = std::make_unique<BasicWeightFile>("llama2c", storage);
  uint64_t offset = kHeaderBytes;
  for (const Segment& seg : layout(c)) {
    const uint64_t per = seg.rows * seg.cols * 4;  // bounded by llama2c_expected_file_size
    if (!seg.name) {
      offset += per;
      continue;
    }
    const int copies = seg.per_layer ? c.n_layers : 1;
    for (int l = 0; l < copies; ++l) {
      TensorRef t;
      t.name = layer_name(seg.name, l);
      t.dtype = tensor::DType::kF32;
      if (seg.rows == 1)
        t.shape = {static_cast<int64_t>(seg.cols)};
      else
        t.shape = {static_cast<int64_t>(seg.rows), static_cast<int64_t>(seg.cols)};
      t.data = data.data() + offset;
      t.nbytes = static_cast<size_t>(per);
      offset += per;
      file->mutable_tensors().push_back(std::move(t));
    }
  }
  CML_CHECK(offset == data.size());
  auto& m = file->mutable_metadata();
  m["general.architecture"] = std::string("llama");
  m["llama.embedding_length"] = int64_t{c.dim};
  m["llama.feed_forward_length"] = int64_t{c.hidden_dim};
  m["llama.block_count"] = int64_t{c.n_layers};
  m["llama.attention.head_count"] = int64_t{c.n_heads};
  m["llama.attention.head_count_kv"] = int64_t{c.n_kv_heads};
  m["llama.context_length"] = int64_t{c.seq_len};
  m["llama.vocab_size"] = int64_t{c.vocab_size};
  m["llama.rope.dimension_count"] = int64_t{c.dim / c.n_heads};
  m["llama.attention.layer_norm_rms_epsilon"] = double{1e-5f};
  m["llama.rope.freq_base"] = 10000.0;
  m["llama.tensor_data_layout"] = std::string("Meta AI original pth");
  m["llama2c.shared_classifier"] = c.shared_classifier;
  file->ensure_aligned();
  return std::unique_ptr<WeightFile>(std::move(file));
}

}  // namespace

Result<Llama2cConfig> parse_llama2c_config(ByteSpan header) {
  if (header.size() < kHeaderBytes) return invalid_argument("llama2.c config needs 28 bytes");
  int32_t v[7];
  for (int i = 0; i < 7; ++i) v[i] = static_cast<int32_t>(load_u32_le(header.data() + 4 * i));
  Llama2cConfig c;
  c.dim = v[0];
  c.hidden_dim = v[1];
  c.n_layers = v[2];
  c.n_heads = v[3];
  c.n_kv_heads = v[4];
  c.shared_classifier = v[5] > 0;
  c.vocab_size = v[5] == INT32_MIN ? 0 : (v[5] < 0 ? -v[5] : v[5]);
  c.seq_len = v[6];
  auto bad = [&](const std::string& why) {
    return invalid_argument("llama2.c config (dim " + std::to_string(v[0]) + ", hidden " + std::to_string(v[1]) +
                            ", layers " + std::to_string(v[2]) + ", heads " + std::to_string(v[3]) + ", kv heads " +
                            std::to_string(v[4]) + ", vocab " + std::to_string(v[5]) + ", seq " + std::to_string(v[6]) +
                            "): " + why);
  };
  if (c.dim <= 0 || c.dim > kLlama2cMaxDim) return bad("dim out of range");
  if (c.hidden_dim <= 0 || c.hidden_dim > 4 * kLlama2cMaxDim) return bad("hidden_dim out of range");
  if (c.n_layers <= 0 || c.n_layers > kLlama2cMaxLayers) return bad("n_layers out of range");
  if (c.n_heads <= 0 || c.n_heads > c.dim || c.dim % c.n_heads != 0) return bad("n_heads must divide dim");
  if (c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0)
    return bad("n_kv_heads must divide n_heads");
  if ((c.dim / c.n_heads) % 2 != 0) return bad("head size must be even (RoPE pairs)");
  if (c.vocab_size <= 0 || c.vocab_size > kLlama2cMaxVocab) return bad("vocab_size out of range");
  if (c.seq_len <= 0 || c.seq_len > kLlama2cMaxSeqLen) return bad("seq_len out of range");
  return c;
}

Result<uint64_t> llama2c_expected_file_size(const Llama2cConfig& c) {
  uint64_t total = kHeaderBytes;
  for (const Segment& seg : layout(c)) {
    uint64_t n = 0;
    const uint64_t copies = seg.name == nullptr ? 1 : (seg.per_layer ? static_cast<uint64_t>(c.n_layers) : 1);
    if (!detail::checked_mul(seg.rows, seg.cols, &n) || !detail::checked_mul(n, 4 * copies, &n) ||
        !detail::checked_add(total, n, &total))
      return invalid_argument("llama2.c config implies a file size that overflows");
  }
  return total;
}

Result<std::unique_ptr<WeightFile>> open_llama2c_checkpoint(const std::string& path) {
  return detail::open_mapped(path, parse);
}

Result<std::unique_ptr<WeightFile>> parse_llama2c_checkpoint(ByteSpan data) {
  return parse(Storage::borrow(data));
}

}  // namespace cml::model
