// The local BLAS backend against the agreement suite, with 1 and 2 compute threads.
#include "tests/model/linear_backend_agreement.h"

#include "model/linear_backend_blas.h"

namespace cml::model::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Blas, LinearBackendAgreement,
    ::testing::Values(BackendFactory{"blas_1thread", [] { return std::make_unique<BlasLinearBackend>(); }, 1e-5},
                      BackendFactory{
                          "blas_2threads",
                          [] { return std::make_unique<BlasLinearBackend>(std::make_shared<tensor::ThreadPool>(2)); },
                          1e-5}),
    factory_name);

}  // namespace
}  // namespace cml::model::testing
