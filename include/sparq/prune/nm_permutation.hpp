// N:M input-channel permutation: reorder the inputs of a linear so that large-saliency weights fall
// in different groups of M, and fold the reorder into the producer of those inputs (zero run-time
// cost). Used by the jsq+ N:M recipes on the FFN hidden units (w2's inputs = w1/w3's outputs).
//
// Maths (docs/reconstruction.md#nm-channel-permutation): with scores S (rows x cin, here the OBS
// saliency w²/[H⁻¹]_jj) and a permutation π (new column k holds old column π(k)), the retained
// score of N:M pruning is R(π) = Σ_r Σ_groups g (sum of the N largest S[r, π(k)], k ∈ g). The
// search starts from the better of the identity and a balanced deal (channels sorted by column
// total, dealt to the groups in snake order), then improves R by swapping two channels of different
// groups while some swap helps (first improvement, scanned in index order, at most `passes`
// sweeps). Deterministic; R never decreases, so the result is never worse than the identity under
// this proxy.
//
// Folding (permute_ffn_hidden, joint/stages.hpp): h = silu(W1 x) ⊙ (W3 x), y = W2 h. Permuting the rows of W1 and
// W3 and the columns of W2 by the same π permutes h and leaves y unchanged (up to float summation
// order in y's dot products), so the block computes the same function.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq {

namespace perm_detail {
/// Sum of the n largest of v[0..m) (n ≤ m ≤ 64), in a fixed order (deterministic).
[[nodiscard]] inline double top_sum(const float* v, std::size_t m, std::size_t n) noexcept {
  if (n == 0) return 0.0;
  float best[64];
  std::size_t have = 0;
  for (std::size_t i = 0; i < m; ++i) {
    const float x = v[i];
    if (have < n) {
      std::size_t j = have++;
      for (; j > 0 && best[j - 1] < x; --j) best[j] = best[j - 1];
      best[j] = x;
    } else if (x > best[n - 1]) {
      std::size_t j = n - 1;
      for (; j > 0 && best[j - 1] < x; --j) best[j] = best[j - 1];
      best[j] = x;
    }
  }
  double t = 0;
  for (std::size_t i = 0; i < n; ++i) t += best[i];
  return t;
}
}  // namespace perm_detail

/// Checks that `perm` is a permutation of 0..n-1 (sparq::error naming the first bad entry).
inline void check_permutation(const std::vector<std::size_t>& perm, std::size_t n, const char* who) {
  SPARQ_CHECK(perm.size() == n, who, ": permutation has ", perm.size(), " entries, expected ", n);
  std::vector<std::uint8_t> seen(n, 0);
  for (std::size_t k = 0; k < n; ++k) {
    SPARQ_CHECK(perm[k] < n && !seen[perm[k]], who, ": entry ", k, " = ", perm[k],
                " is out of range or repeated (not a permutation of 0..", n - 1, ")");
    seen[perm[k]] = 1;
  }
}

/// R(π) of the file comment.
[[nodiscard]] inline double nm_retained_score(MatrixView<const float> s, const std::vector<std::size_t>& perm,
                                              std::size_t n, std::size_t m) {
  double total = 0;
  float buf[64];
  for (std::size_t r = 0; r < s.rows(); ++r)
    for (std::size_t g = 0; g + m <= s.cols(); g += m) {
      for (std::size_t i = 0; i < m; ++i) buf[i] = s(r, perm[g + i]);
      total += perm_detail::top_sum(buf, m, n);
    }
  return total;
}

/// The permutation search of the file comment. cin must be a multiple of m (m ≤ 64, n ≤ m).
[[nodiscard]] inline std::vector<std::size_t> nm_permutation(MatrixView<const float> s, std::size_t n, std::size_t m,
                                                             int passes = 3) {
  const std::size_t cin = s.cols(), rows = s.rows();
  SPARQ_CHECK(m >= 1 && m <= 64 && n <= m, "nm_permutation: N:M = ", n, ":", m, ", expected N <= M <= 64");
  SPARQ_CHECK(cin % m == 0, "nm_permutation: cin = ", cin, " is not a multiple of M = ", m);
  SPARQ_CHECK(passes >= 0, "nm_permutation: passes = ", passes, ", expected >= 0");
  std::vector<std::size_t> id(cin);
  std::iota(id.begin(), id.end(), std::size_t{0});
  // balanced deal
  std::vector<double> tot(cin, 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cin; ++j) tot[j] += s(r, j);
  std::vector<std::size_t> order = id;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tot[a] > tot[b]; });
  const std::size_t ng = cin / m;
  std::vector<std::size_t> dealt(cin);
  for (std::size_t i = 0; i < cin; ++i) {
    const std::size_t round = i / ng, pos = i % ng;
    const std::size_t g = round % 2 == 0 ? pos : ng - 1 - pos;
    dealt[g * m + round] = order[i];
  }
  std::vector<std::size_t> perm = nm_retained_score(s, dealt, n, m) > nm_retained_score(s, id, n, m) ? dealt : id;
  // swap search; per-(row, group) retained sums kept current
  auto group_score = [&](std::size_t r, std::size_t g, std::size_t a, std::size_t va) {
    float buf[64];
    const float* sr = s.row(r);
    for (std::size_t i = 0; i < m; ++i) buf[i] = sr[g * m + i == a ? va : perm[g * m + i]];
    return perm_detail::top_sum(buf, m, n);
  };
  std::vector<double> cur(rows * ng);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t g = 0; g < ng; ++g) cur[r * ng + g] = group_score(r, g, cin, 0);
  std::vector<double> na(rows), nb(rows);
  for (int pass = 0; pass < passes; ++pass) {
    bool improved = false;
    for (std::size_t a = 0; a < cin; ++a)
      for (std::size_t b = a + 1; b < cin; ++b) {
        const std::size_t ga = a / m, gb = b / m;
        if (ga == gb) continue;
        double delta = 0;
        for (std::size_t r = 0; r < rows; ++r) {
          na[r] = group_score(r, ga, a, perm[b]);
          nb[r] = group_score(r, gb, b, perm[a]);
          delta += na[r] + nb[r] - cur[r * ng + ga] - cur[r * ng + gb];
        }
        if (delta > 1e-12 * (1.0 + std::abs(delta))) {
          std::swap(perm[a], perm[b]);
          for (std::size_t r = 0; r < rows; ++r) {
            cur[r * ng + ga] = na[r];
            cur[r * ng + gb] = nb[r];
          }
          improved = true;
        }
      }
    if (!improved) break;
  }
  return perm;
}

/// Column k of the result = column perm[k] of w.
[[nodiscard]] inline Matrix<float> permute_columns(MatrixView<const float> w, const std::vector<std::size_t>& perm) {
  check_permutation(perm, w.cols(), "permute_columns");
  Matrix<float> out(w.rows(), w.cols());
  for (std::size_t r = 0; r < w.rows(); ++r)
    for (std::size_t k = 0; k < w.cols(); ++k) out(r, k) = w(r, perm[k]);
  return out;
}
/// Row k of the result = row perm[k] of w.
[[nodiscard]] inline Matrix<float> permute_rows(MatrixView<const float> w, const std::vector<std::size_t>& perm) {
  check_permutation(perm, w.rows(), "permute_rows");
  Matrix<float> out(w.rows(), w.cols());
  for (std::size_t k = 0; k < w.rows(); ++k) std::copy(w.row(perm[k]), w.row(perm[k]) + w.cols(), out.row(k));
  return out;
}

}  // namespace sparq
