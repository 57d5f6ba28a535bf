#include "groupcover/worker.h"

#include <cblas.h>

#include <cstring>

#include "groupcover/linalg.h"

#if defined(CML_WITH_CUDA)
#include "groupcover/cuda_gemm.h"
#endif

namespace cml::groupcover {

struct WorkerService::Model {
  WorkerBundle bundle;
  ModelShapes shapes;
#if defined(CML_WITH_CUDA)
  std::unique_ptr<CudaMatrices> cuda;
#endif
};

void set_blas_threads(int n) {
  openblas_set_num_threads(n < 1 ? 1 : n);
}

WorkerService::WorkerService(WorkerOptions options) : options_(options) {}
WorkerService::~WorkerService() = default;

WorkerStats WorkerService::stats() const {
  WorkerStats s;
  s.connections = connections_;
  s.requests = requests_;
  s.rows = rows_;
  s.uploads = uploads_;
  s.errors = errors_;
  std::lock_guard lock(mu_);
  s.models = models_.size();
  return s;
}

Result<std::shared_ptr<const WorkerService::Model>> WorkerService::find(const crypto::Digest256& d) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(d);
  if (it == models_.end()) return not_found("model not registered");
  return it->second;
}

Status WorkerService::compute(const Model& m, const ComputeRequest& q, std::span<const float> in,
                              std::vector<float>& out) {
  uint64_t total = 0;
  for (uint32_t p : q.parts) total += uint64_t(q.rows) * m.shapes.shapes[p].first;
  out.resize(size_t(total));
  const float* src = in.data();
  float* dst = out.data();
  for (uint32_t p : q.parts) {
    const WorkerMatrix& w = m.bundle.matrices[p];
#if defined(CML_WITH_CUDA)
    if (m.cuda) {
      CML_RETURN_IF_ERROR(m.cuda->gemm(p, src, q.rows, dst));
    } else {
      gemm_abt(src, w.data, dst, q.rows, w.out, w.in);
    }
#else
    gemm_abt(src, w.data, dst, q.rows, w.out, w.in);
#endif
    src += size_t(q.rows) * w.in;
    dst += size_t(q.rows) * w.out;
  }
  return ok_status();
}

Status WorkerService::serve(MessageLink& link) {
  ++connections_;
  LinkMessage msg;
  std::shared_ptr<const Model> model;
  std::vector<float> result;
  auto fail = [&](const Status& st) {
    ++errors_;
    link.send(encode_error(st.to_string()), {}, Deadline::after(std::chrono::seconds(1))).ignore_error();
    return st;
  };
  // Registration: HELLO, then (if the model is new) UPLOAD… UPLOAD_DONE.
  Status st = link.recv(msg, 0, Deadline::after(options_.idle_timeout));
  if (!st.is_ok()) return st;
  auto hello = decode_hello(msg.header);
  if (!hello.is_ok()) return fail(hello.status());
  auto shape_size = worker_bundle_size(hello->model.shapes);
  if (!shape_size.is_ok()) return fail(shape_size.status());
  if (*shape_size > options_.max_model_bytes) return fail(resource_exhausted("model larger than this worker accepts"));
  auto known = find(hello->digest);
  if (known.is_ok()) {
    model = *known;
    if (model->shapes.shapes != hello->model.shapes)
      return fail(protocol_error("model shapes differ from the registered model"));
    CML_RETURN_IF_ERROR(link.send(encode_hello_ok(false), {}, Deadline::after(std::chrono::seconds(30))));
  } else {
    CML_RETURN_IF_ERROR(link.send(encode_hello_ok(true), {}, Deadline::after(std::chrono::seconds(30))));
    // Build the canonical encoding in place, then check its digest.
    Bytes storage;
    {
      ByteWriter w;
      w.bytes(as_bytes(std::string_view("CMLGCW1\0", 8)));
      w.u32_le(1);
      w.u32_le(uint32_t(hello->model.shapes.size()));
      for (auto [o, i] : hello->model.shapes) {
        w.u32_le(o);
        w.u32_le(i);
      }
      storage = w.take();
    }
    std::vector<size_t> offsets;
    size_t header = storage.size();
    for (auto [o, i] : hello->model.shapes) {
      offsets.push_back(header);
      header += size_t(o) * i * 4;
    }
    storage.resize(*shape_size, 0);
    std::vector<std::vector<char>> filled;
    for (auto [o, i] : hello->model.shapes) filled.emplace_back(o, 0);
    for (;;) {
      st = link.recv(msg, kMaxUploadFloats, Deadline::after(options_.idle_timeout));
      if (!st.is_ok()) return st;
      auto type = peek_type(msg.header);
      if (!type.is_ok()) return fail(type.status());
      if (*type == MsgType::kUploadDone) {
        CML_RETURN_IF_ERROR(decode_simple(msg.header, MsgType::kUploadDone));
        break;
      }
      auto up = decode_upload(msg.header, hello->model, msg.payload.size());
      if (!up.is_ok()) return fail(up.status());
      const uint32_t in = hello->model.shapes[up->matrix].second;
      std::memcpy(storage.data() + offsets[up->matrix] + size_t(up->row0) * in * 4, msg.payload.data(),
                  msg.payload.size() * 4);
      for (uint32_t r = 0; r < up->rows; ++r) filled[up->matrix][up->row0 + r] = 1;
    }
    for (const auto& f : filled)
      for (char c : f)
        if (!c) return fail(protocol_error("upload incomplete: some rows were never sent"));
    auto parsed = parse_worker_bundle(std::move(storage));
    if (!parsed.is_ok()) return fail(parsed.status());
    if (parsed->digest != hello->digest) return fail(protocol_error("uploaded matrices do not match the model digest"));
    auto fresh = std::make_shared<Model>();
    fresh->bundle = std::move(parsed).value();
    fresh->shapes = hello->model;
#if defined(CML_WITH_CUDA)
    if (options_.use_cuda) {
      auto c = CudaMatrices::create(fresh->bundle);
      if (!c.is_ok()) return fail(c.status());
      fresh->cuda = std::move(c).value();
    }
#endif
    ++uploads_;
    {
      std::lock_guard lock(mu_);
      auto [it, inserted] = models_.emplace(hello->digest, fresh);
      model = it->second;  // a concurrent upload of the same model may have won; identical content
    }
    CML_RETURN_IF_ERROR(link.send(encode_simple(MsgType::kReady), {}, Deadline::after(std::chrono::seconds(30))));
  }
  // Serving.
  for (;;) {
    st = link.recv(msg, kMaxPayloadFloats, Deadline::after(options_.idle_timeout));
    if (st.code() == StatusCode::kUnavailable) return ok_status();  // peer closed
    if (!st.is_ok()) return st;
    auto req = decode_compute(msg.header, model->shapes, msg.payload.size());
    if (!req.is_ok()) return fail(req.status());
    if (on_request_) on_request_(*req);
    st = compute(*model, *req, msg.payload, result);
    if (!st.is_ok()) return fail(st);
    if (corruptor_) corruptor_(*req, msg.payload, result);
    if (observer_) observer_(*req, msg.payload, result);
    ++requests_;
    rows_ += req->rows;
    CML_RETURN_IF_ERROR(
        link.send(encode_result({req->id, req->rows}), result, Deadline::after(std::chrono::seconds(60))));
  }
}

}  // namespace cml::groupcover
