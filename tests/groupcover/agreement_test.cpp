// The GroupCover backend (session mode, in-process worker) against the shared LinearBackend agreement
// suite. Masked float arithmetic is not bit-reproducible between calls (each call draws a fresh mask),
// so the factory declares itself non-deterministic and is held to a looser tolerance: see
// docs/notes/gcover.md §error for the bound this tolerance comes from.
#include "groupcover/backend.h"
#include "groupcover/local_worker.h"
#include "tests/model/linear_backend_agreement.h"

namespace cml::groupcover {
namespace {}  // namespace

// Owns its worker: the backend is destroyed first (member order), then the worker.
class SelfContainedBackend final : public model::LinearBackend {
 public:
  SelfContainedBackend(bool freivalds) {
    BackendConfig c;
    c.freivalds = freivalds;
    c.worker_label = "in-process";
    backend_ = std::make_unique<GroupCoverBackend>(c, ObfuscationConfig{}, worker_.factory());
  }
  std::string name() const override { return backend_->name(); }
  Result<model::LinearId> add(std::span<const model::LinearPart> parts) override { return backend_->add(parts); }
  Status finalize() override { return backend_->finalize(); }
  Status run(model::LinearId id, const float* x, int64_t rows, float* y) override {
    return backend_->run(id, x, rows, y);
  }
  int64_t out_features(model::LinearId id) const override { return backend_->out_features(id); }

 private:
  LocalWorker worker_;
  std::unique_ptr<GroupCoverBackend> backend_;
};

}  // namespace cml::groupcover

namespace cml::model::testing {
namespace {
using groupcover::SelfContainedBackend;
INSTANTIATE_TEST_SUITE_P(
    GroupCover, LinearBackendAgreement,
    ::testing::Values(BackendFactory{"groupcover", [] { return std::make_unique<SelfContainedBackend>(false); }, 2e-4,
                                     false},
                      BackendFactory{"groupcover_freivalds",
                                     [] { return std::make_unique<SelfContainedBackend>(true); }, 2e-4, false}),
    factory_name);

}  // namespace
}  // namespace cml::model::testing
