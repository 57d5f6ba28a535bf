#include "groupcover/linalg.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace cml::groupcover {

bool invert_small(std::span<const double> a, int k, std::vector<double>& inv) {
  std::vector<double> m(a.begin(), a.end());
  inv.assign(size_t(k) * k, 0.0);
  for (int i = 0; i < k; ++i) inv[size_t(i) * k + i] = 1.0;
  double scale = 0.0;
  for (double v : m) scale = std::max(scale, std::fabs(v));
  if (scale == 0.0) return false;
  for (int col = 0; col < k; ++col) {
    int piv = col;
    for (int r = col + 1; r < k; ++r)
      if (std::fabs(m[size_t(r) * k + col]) > std::fabs(m[size_t(piv) * k + col])) piv = r;
    const double p = m[size_t(piv) * k + col];
    if (std::fabs(p) <= scale * 1e-13) return false;
    if (piv != col) {
      for (int c = 0; c < k; ++c) {
        std::swap(m[size_t(piv) * k + c], m[size_t(col) * k + c]);
        std::swap(inv[size_t(piv) * k + c], inv[size_t(col) * k + c]);
      }
    }
    for (int c = 0; c < k; ++c) {
      m[size_t(col) * k + c] /= p;
      inv[size_t(col) * k + c] /= p;
    }
    for (int r = 0; r < k; ++r) {
      if (r == col) continue;
      const double f = m[size_t(r) * k + col];
      if (f == 0.0) continue;
      for (int c = 0; c < k; ++c) {
        m[size_t(r) * k + c] -= f * m[size_t(col) * k + c];
        inv[size_t(r) * k + c] -= f * inv[size_t(col) * k + c];
      }
    }
  }
  return true;
}

double condition_number(std::span<const double> a, int k) {
  // S = AᵀA (symmetric positive semi-definite), eigenvalues by cyclic Jacobi rotations.
  std::vector<double> s(size_t(k) * k, 0.0);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      double acc = 0.0;
      for (int r = 0; r < k; ++r) acc += a[size_t(r) * k + i] * a[size_t(r) * k + j];
      s[size_t(i) * k + j] = acc;
    }
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int i = 0; i < k; ++i)
      for (int j = i + 1; j < k; ++j) off += s[size_t(i) * k + j] * s[size_t(i) * k + j];
    if (off < 1e-30) break;
    for (int p = 0; p < k; ++p)
      for (int q = p + 1; q < k; ++q) {
        const double apq = s[size_t(p) * k + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double app = s[size_t(p) * k + p], aqq = s[size_t(q) * k + q];
        const double theta = (aqq - app) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), sn = t * c;
        for (int r = 0; r < k; ++r) {
          const double srp = s[size_t(r) * k + p], srq = s[size_t(r) * k + q];
          s[size_t(r) * k + p] = c * srp - sn * srq;
          s[size_t(r) * k + q] = sn * srp + c * srq;
        }
        for (int r = 0; r < k; ++r) {
          const double spr = s[size_t(p) * k + r], sqr = s[size_t(q) * k + r];
          s[size_t(p) * k + r] = c * spr - sn * sqr;
          s[size_t(q) * k + r] = sn * spr + c * sqr;
        }
      }
  }
  double lo = std::numeric_limits<double>::infinity(), hi = 0.0;
  for (int i = 0; i < k; ++i) {
    const double ev = std::max(0.0, s[size_t(i) * k + i]);
    lo = std::min(lo, ev);
    hi = std::max(hi, ev);
  }
  if (lo <= hi * 1e-28) return std::numeric_limits<double>::infinity();
  return std::sqrt(hi / lo);
}

void gemm_abt(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, float beta) {
  if (m == 0 || n == 0) return;
  if (m <= 2) {
    // Decode-sized products: sgemm would first pack (copy) all of B, tripling the memory traffic of a
    // product that is bound by reading B once; one sgemv per row reads B once per row instead.
    for (int64_t i = 0; i < m; ++i)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(n), blasint(k), 1.0f, b, blasint(k), a + i * k, 1, beta,
                  c + i * n, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(n), blasint(k), 1.0f, a, blasint(k), b,
              blasint(k), beta, c, blasint(n));
}

}  // namespace cml::groupcover
