// Sparse formats (N:M packed, bitmask, CSR): byte layout and exact round trip; OWL ratios.
#include <algorithm>
#include <cmath>
#include <vector>

#include "sparq/prune/bitmask_sparse.hpp"
#include "sparq/prune/csr_matrix.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/prune/owl.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {
Matrix<float> rand_matrix(std::size_t r, std::size_t c, unsigned seed) {
  Matrix<float> m(r, c);
  const auto v = sparq_test::randn(r * c, seed);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}
}  // namespace

TEST_CASE("NMCompressed 2:4 and 4:8 round trip exactly with the documented layout", "[prune][formats]") {
  Matrix<float> w = rand_matrix(5, 24, 1);
  Pruner<Magnitude, NM<2, 4>>().prune(w.view());
  w(1, 4) = 0.0f;  // a group with only one non-zero (padding case)
  w(1, 5) = 0.0f; w(1, 6) = 0.0f; w(1, 7) = 0.0f;  // and one with none
  const auto c = NMCompressed<2, 4>::from_dense(w.view());
  REQUIRE(c.kept_per_row() == 12);
  REQUIRE(c.row_index_bytes() == 3);
  REQUIRE(c.to_dense().storage() == w.storage());
  // Layout by hand: every group's 2 indices increase; values match the dense positions.
  for (std::size_t r = 0; r < 5; ++r)
    for (std::size_t g = 0; g < 6; ++g) {
      const std::size_t i0 = g * 2;
      const std::size_t p0 = (c.row_indices(r)[i0 / 4] >> (2 * (i0 % 4))) & 3u;
      const std::size_t p1 = (c.row_indices(r)[(i0 + 1) / 4] >> (2 * ((i0 + 1) % 4))) & 3u;
      REQUIRE(p0 < p1);
      REQUIRE(c.row_values(r)[i0] == w(r, g * 4 + p0));
      REQUIRE(c.row_values(r)[i0 + 1] == w(r, g * 4 + p1));
    }
  // The empty group (row 1, group 1) is padded at positions 0 and 1.
  REQUIRE(c.index(1, 2) == 0);
  REQUIRE(c.index(1, 3) == 1);
  Matrix<float> w8 = rand_matrix(3, 24, 2);
  Pruner<Magnitude, NM<4, 8>>().prune(w8.view());
  const auto c8 = NMCompressed<4, 8>::from_dense(w8.view());
  REQUIRE(c8.row_index_bytes() == 6);
  REQUIRE(c8.to_dense().storage() == w8.storage());
  for (std::size_t i = 0; i < 12; ++i) {
    const std::uint8_t b = c8.row_indices(2)[i / 2];
    REQUIRE(c8.index(2, i) == (i % 2 == 0 ? (b & 0xfu) : (b >> 4)));
  }
  // Odd kept count per row: ceil for the row byte count, rows still byte-aligned.
  Matrix<float> w1 = rand_matrix(2, 12, 3);
  Pruner<Magnitude, NM<1, 4>>().prune(w1.view());
  const auto c1 = NMCompressed<1, 4>::from_dense(w1.view());
  REQUIRE(c1.row_index_bytes() == 1);
  REQUIRE(c1.to_dense().storage() == w1.storage());
  // int8 codes can be stored the same way.
  Matrix<float> wi(1, 8, 0.0f);
  wi(0, 1) = 3; wi(0, 3) = -7; wi(0, 6) = 100;
  const auto ci = NMCompressed<2, 4, std::int8_t>::from_dense(wi.view());
  REQUIRE(ci.to_dense().storage() == wi.storage());
  // The worked example of docs/pruning.md: [0, 1.5, 0, -2 | 3, 0, 0, 0] -> values [1.5, -2, 3, 0], byte 0x4D.
  Matrix<float> ex(1, 8, 0.0f);
  ex(0, 1) = 1.5f; ex(0, 3) = -2.0f; ex(0, 4) = 3.0f;
  const auto cex = NMCompressed<2, 4>::from_dense(ex.view());
  REQUIRE(cex.values() == std::vector<float>{1.5f, -2.0f, 3.0f, 0.0f});
  REQUIRE(cex.indices() == std::vector<std::uint8_t>{0x4D});
  // Errors: too many non-zeros, ragged columns.
  const Matrix<float> dense = rand_matrix(2, 8, 4);
  REQUIRE_THROWS_WITH((NMCompressed<2, 4>::from_dense(dense.view())), Catch::Contains("4 non-zeros"));
  const Matrix<float> ragged(2, 10, 0.0f);
  REQUIRE_THROWS_WITH((NMCompressed<2, 4>::from_dense(ragged.view())), Catch::Contains("cols = 10"));
}

TEST_CASE("BitmaskSparse and CSR round trip exactly", "[prune][formats]") {
  Matrix<float> w = rand_matrix(7, 21, 5);
  PruneOptions o;
  o.sparsity = 0.6;
  Pruner<Magnitude, Unstructured>(o).prune(w.view());
  const auto b = BitmaskSparse<>::from_dense(w.view());
  REQUIRE(b.row_mask_bytes() == 3);
  REQUIRE(b.to_dense().storage() == w.storage());
  REQUIRE(b.nnz() == 7 * (21 - 12));
  for (std::size_t r = 0; r < 7; ++r) {
    REQUIRE(b.row_offsets()[r + 1] - b.row_offsets()[r] == 9);
    REQUIRE((b.masks()[r * 3 + 2] >> 5) == 0);  // unused high bits
    for (std::size_t c = 0; c < 21; ++c)
      REQUIRE(((b.masks()[r * 3 + c / 8] >> (c % 8)) & 1) == (w(r, c) != 0.0f ? 1 : 0));
  }
  const auto s = CsrMatrix<>::from_dense(w.view());
  REQUIRE(s.to_dense().storage() == w.storage());
  REQUIRE(s.row_ptr().back() == s.nnz());
  for (std::size_t r = 0; r < 7; ++r)
    for (std::uint32_t i = s.row_ptr()[r]; i < s.row_ptr()[r + 1]; ++i) REQUIRE(w(r, s.col_idx()[i]) == s.values()[i]);
}

TEST_CASE("OWL ratios average to the target and favour outlier-rich blocks", "[prune][owl]") {
  // Three blocks of Wanda-like scores with increasing outlier counts.
  std::vector<Matrix<float>> blocks;
  std::vector<double> d;
  for (unsigned b = 0; b < 4; ++b) {
    Matrix<float> s = rand_matrix(16, 32, 10 + b);
    for (auto& v : s.storage()) v = std::fabs(v);
    for (std::size_t i = 0; i < 5 * b; ++i) s.data()[i * 7] = 40.0f;
    d.push_back(owl_outlier_ratio({s.view()}, 5.0));
    blocks.push_back(std::move(s));
  }
  // D by definition for block 3.
  {
    const auto& s = blocks[3];
    double mean = 0;
    for (float v : s.storage()) mean += v;
    mean /= double(s.size());
    std::size_t n = 0;
    for (float v : s.storage()) n += v > 5.0 * mean;
    REQUIRE(d[3] == Approx(100.0 * double(n) / double(s.size())));
  }
  const auto s = owl_sparsities(d, 0.5, {5.0, 0.08});
  double mean = 0;
  for (double v : s) mean += v;
  REQUIRE(mean / 4 == Approx(0.5).margin(1e-12));
  REQUIRE(s[3] < s[0]);
  REQUIRE(*std::max_element(s.begin(), s.end()) - *std::min_element(s.begin(), s.end()) == Approx(0.16));
  // max D == min D: uniform.
  for (double v : owl_sparsities({2.0, 2.0, 2.0}, 0.7)) REQUIRE(v == Approx(0.7));
  REQUIRE_THROWS_WITH(owl_sparsities({1.0}, 1.5), Catch::Contains("1.5"));
}
