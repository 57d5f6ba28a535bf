#include "model/transformer.h"

#include <algorithm>
#include <cstring>

#include "tensor/half.h"

namespace cml::model {

Transformer::Transformer(const WeightFile& file, ModelConfig config, LayerRange range, LinearBackend& backend,
                         std::shared_ptr<tensor::ThreadPool> pool, bool transpose_head)
    : file_(file),
      config_(std::move(config)),
      range_(range),
      backend_(backend),
      pool_(std::move(pool)),
      transpose_head_(transpose_head) {}

Result<const TensorRef*> Transformer::tensor(const std::string& name, std::initializer_list<int64_t> shape) {
  CML_ASSIGN_OR_RETURN(const TensorRef* t, require_tensor(file_, name, shape));
  used_.push_back(name);
  return t;
}

Result<std::vector<float>> Transformer::vector_f32(const std::string& name, int64_t n) {
  CML_ASSIGN_OR_RETURN(const TensorRef* t, tensor(name, {n}));
  std::vector<float> v(static_cast<size_t>(n));
  tensor::convert_to_f32(t->dtype, t->data, v.data(), n);
  return v;
}

Result<LinearPart> Transformer::part(const std::string& name, int64_t out, int64_t in, bool transposed,
                                     const std::vector<float>* bias) {
  const TensorRef* t = nullptr;
  if (transposed) {
    CML_ASSIGN_OR_RETURN(t, tensor(name, {in, out}));
  } else {
    CML_ASSIGN_OR_RETURN(t, tensor(name, {out, in}));
  }
  LinearPart p;
  p.name = name;
  p.out_features = out;
  p.in_features = in;
  p.dtype = t->dtype;
  p.weight = t->data;
  p.transposed = transposed;
  p.bias = bias ? bias->data() : nullptr;
  return p;
}

Result<LinearPart> Transformer::head_part(const std::string& name) {
  CML_ASSIGN_OR_RETURN(LinearPart p, part(name, config_.vocab, config_.dim, false));
  if (!transpose_head_) return p;
  // Blocks of 64 × 64 elements keep both the rows read and the rows written in cache.
  const size_t esz = tensor::dtype_size(p.dtype);
  const int64_t out = p.out_features, in = p.in_features;
  head_t_.resize(static_cast<size_t>(out * in) * esz);
  const auto* src = static_cast<const uint8_t*>(p.weight);
  constexpr int64_t kBlock = 64;
  for (int64_t o0 = 0; o0 < out; o0 += kBlock) {
    for (int64_t k0 = 0; k0 < in; k0 += kBlock) {
      for (int64_t o = o0; o < std::min(out, o0 + kBlock); ++o) {
        for (int64_t k = k0; k < std::min(in, k0 + kBlock); ++k) {
          std::memcpy(head_t_.data() + static_cast<size_t>(k * out + o) * esz,
                      src + static_cast<size_t>(o * in + k) * esz, esz);
        }
      }
    }
  }
  p.weight = head_t_.data();
  p.transposed = true;
  return p;
}

Result<LinearId> Transformer::add_op(std::vector<LinearPart> parts) {
  return backend_.add(parts);
}

void Transformer::embedding_row(const TensorRef& emb, int32_t token, float* out) const {
  const size_t esz = tensor::dtype_size(emb.dtype);
  tensor::convert_to_f32(emb.dtype, static_cast<const char*>(emb.data) + static_cast<size_t>(token) * config_.dim * esz,
                         out, config_.dim);
}

Status Transformer::check_tokens(std::span<const int32_t> tokens) const {
  for (int32_t t : tokens) {
    if (t < 0 || t >= config_.vocab) {
      return invalid_argument("token id " + std::to_string(t) + " outside the vocabulary (size " +
                              std::to_string(config_.vocab) + ")");
    }
  }
  return ok_status();
}

void Transformer::attend(std::span<const SeqSlice> seqs, int64_t layer, float* qkv, int64_t qkv_stride, int64_t k_off,
                         int64_t v_off, float* att) {
  const int64_t kv_dim = config_.kv_dim();
  const tensor::AttentionShape shape{config_.n_heads, config_.n_kv_heads, config_.head_dim};
  int64_t row = 0;
  for (const SeqSlice& s : seqs) {
    float* kc = s.kv->k(layer);
    float* vc = s.kv->v(layer);
    s.kv->note_written(s.start_pos + s.n);
    for (int64_t t = 0; t < s.n; ++t) {
      const float* src = qkv + (row + t) * qkv_stride;
      std::memcpy(kc + (s.start_pos + t) * kv_dim, src + k_off, static_cast<size_t>(kv_dim) * 4);
      std::memcpy(vc + (s.start_pos + t) * kv_dim, src + v_off, static_cast<size_t>(kv_dim) * 4);
    }
    tensor::attention(shape, qkv + row * qkv_stride, qkv_stride, s.n, s.start_pos, kc, vc, kv_dim,
                      att + row * config_.dim, config_.dim, pool_.get());
    row += s.n;
  }
}

}  // namespace cml::model
