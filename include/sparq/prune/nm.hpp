// NM<N, M>: semi-structured sparsity that KEEPS N of every M consecutive inputs of a row (2:4, 4:8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "sparq/prune/prune_options.hpp"

namespace sparq {

/// Keep N of every M: each row is cut into groups of M consecutive input columns starting at
/// column 0, and in each group the M - N lowest scores are pruned (ties: lower column first), so
/// every group holds exactly N kept entries (fewer non-zeros only if kept weights were already 0).
/// Convention: the numbers count KEPT weights (NVIDIA's "2:4" reading). The Wanda reference's
/// `prune_n` counts pruned ones; for 2:4 and 4:8 both mean 50 %. cin % M != 0 is an error (the
/// reference mishandles tail groups). The sparsity is 1 - N/M (PruneOptions::sparsity is ignored).
template <std::size_t N, std::size_t M>
struct NM {
  static_assert(M > 0, "NM<N, M>: the group size M must be positive");
  static_assert(N <= M, "NM<N, M> keeps N of every M inputs: N must not exceed M (NM<2, 4> keeps 2 of 4)");
  static_assert(M <= 64, "NM<N, M>: groups larger than 64 are not supported");
  static constexpr std::size_t kept = N;
  static constexpr std::size_t group = M;

  [[nodiscard]] static std::string name() { return std::to_string(N) + ":" + std::to_string(M); }
  static constexpr bool row_local = true;  ///< each group's selection reads that group's scores only

  static void validate(std::size_t /*rows*/, std::size_t cols) {
    SPARQ_CHECK(cols % M == 0, "NM<", N, ",", M, ">: cin = ", cols, " is not a multiple of M = ", M,
                " (", cols % M, " columns would form a partial group)");
  }

  /// Prunes the M - N lowest of `s[0..M)` in `keep[0..M)` (1 kept / 0 pruned), stable.
  static void select_group(const float* s, std::uint8_t* keep) noexcept {
    for (std::size_t i = 0; i < M; ++i) {
      std::size_t rank = 0;  // position of i in a stable ascending sort of the group
      for (std::size_t j = 0; j < M; ++j) rank += (s[j] < s[i] || (s[j] == s[i] && j < i)) ? 1 : 0;
      keep[i] = rank < M - N ? 0 : 1;
    }
  }

  static void select(MatrixView<const float> s, const PruneOptions& /*o*/, MatrixView<std::uint8_t> mask) {
    validate(s.rows(), s.cols());
    const long long rows = static_cast<long long>(s.rows());
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (long long r = 0; r < rows; ++r) {
      const float* sr = s.row(static_cast<std::size_t>(r));
      std::uint8_t* m = mask.row(static_cast<std::size_t>(r));
      for (std::size_t g = 0; g < s.cols(); g += M) select_group(sr + g, m + g);
    }
  }
};
static_assert(SparsityPattern<NM<2, 4>>);

}  // namespace sparq
