// The cuBLAS worker path (CML_WITH_CUDA builds only): products equal the OpenBLAS path's within float
// rounding, and a GroupCover backend served by a CUDA worker restores true results with Freivalds on.
// On a machine without a usable CUDA device every test is skipped with the device error.
#include <gtest/gtest.h>

#include <cmath>

#include "groupcover/backend.h"
#include "groupcover/cuda_gemm.h"
#include "groupcover/linalg.h"
#include "groupcover/local_worker.h"
#include "test_util.h"

namespace cml::groupcover {
namespace {

using testing::random_matrix;

#define CML_SKIP_WITHOUT_CUDA_DEVICE()                                              \
  do {                                                                              \
    const Status dev = cuda_device_status();                                        \
    if (!dev.is_ok()) GTEST_SKIP() << "no usable CUDA device: " << dev.to_string(); \
  } while (0)

TEST(Cuda, GemmMatchesOpenBlas) {
  CML_SKIP_WITHOUT_CUDA_DEVICE();
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{64, 96}, {96, 64}, {257, 33}};
  std::vector<std::vector<float>> ws;
  WorkerBundle bundle;
  for (size_t p = 0; p < shapes.size(); ++p) {
    ws.push_back(random_matrix(shapes[p].first, shapes[p].second, 10 + p, 0.1f));
    bundle.matrices.push_back({uint32_t(shapes[p].first), uint32_t(shapes[p].second), ws.back().data()});
  }
  auto cuda = CudaMatrices::create(bundle);
  ASSERT_TRUE(cuda.is_ok()) << cuda.status().to_string();
  for (size_t p = 0; p < shapes.size(); ++p) {
    const auto [out, in] = shapes[p];
    for (uint32_t rows : {1u, 4u, 33u}) {
      auto x = random_matrix(rows, in, 100 + rows);
      std::vector<float> got(size_t(rows * out)), want(size_t(rows * out));
      ASSERT_TRUE((*cuda)->gemm(uint32_t(p), x.data(), rows, got.data()).is_ok());
      gemm_abt(x.data(), ws[p].data(), want.data(), rows, out, in);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << i;
    }
  }
}

TEST(Cuda, BackendOverCudaWorkerRestoresWithFreivalds) {
  CML_SKIP_WITHOUT_CUDA_DEVICE();
  auto w = random_matrix(64, 96, 1, 0.1f);
  std::vector<NamedMatrix> nm = {{"a", {w.data(), tensor::DType::kF32, 64, 96, false}, nullptr}};
  auto om = obfuscate_model(nm, {});
  ASSERT_TRUE(om.is_ok());
  WorkerOptions wo;
  wo.use_cuda = true;
  LocalWorker worker(wo);
  BackendConfig c;
  c.freivalds = true;
  c.worker_label = "cuda";
  GroupCoverBackend be(c, om->secrets, om->worker, worker.factory());
  model::LinearPart part;
  part.name = "a";
  part.out_features = 64;
  part.in_features = 96;
  part.weight = w.data();
  auto id = be.add(std::span<const model::LinearPart>(&part, 1));
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(be.finalize().is_ok());
  for (int i = 0; i < 20; ++i) {
    const int64_t rows = 1 + i % 5;
    auto x = random_matrix(rows, 96, 300 + i);
    std::vector<float> y(size_t(rows * 64));
    const Status st = be.run(*id, x.data(), rows, y.data());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_LT(testing::max_row_rel_error(y.data(), testing::reference(w, nullptr, x.data(), rows, 64, 96), rows, 64),
              1e-4);
  }
  EXPECT_EQ(worker.service().stats().requests, 20u);
}

}  // namespace
}  // namespace cml::groupcover
