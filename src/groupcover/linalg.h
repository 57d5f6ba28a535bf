// Small dense linear algebra for GroupCover: g×g mixing matrices (inverse, condition number) and a
// float32 GEMM wrapper over OpenBLAS. Sizes here are tiny (g ≤ 16) except in gemm().
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cml::groupcover {

// Inverse of a k×k row-major matrix by Gauss–Jordan elimination with partial pivoting (double).
// Returns false when the matrix is numerically singular.
bool invert_small(std::span<const double> a, int k, std::vector<double>& inv);

// 2-norm condition number σ_max/σ_min of a k×k matrix (Jacobi eigenvalues of AᵀA); +inf if singular.
double condition_number(std::span<const double> a, int k);

// C[m×n] = A[m×k] · B[n×k]ᵀ (row-major, float32, OpenBLAS sgemm; sgemv per row when m ≤ 2). `beta` scales
// the old C.
void gemm_abt(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, float beta = 0.0f);

}  // namespace cml::groupcover
