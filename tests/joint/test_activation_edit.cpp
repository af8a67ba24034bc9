// ActivationEdit: Eq. 5 of the JSQ paper against a brute-force clamp, identity at r = 0, compat clip.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "sparq/joint/activation_edit.hpp"
#include "sparq_test.hpp"

using sparq::ActivationEdit;
using sparq::EditMode;
using sparq::Matrix;

namespace {
Matrix<float> random_acts(std::size_t t, std::size_t c, unsigned seed) {
  Matrix<float> m(t, c);
  auto v = sparq_test::randn(t * c, seed);
  std::copy(v.begin(), v.end(), m.data());
  m(3 % t, 1 % c) = 40.0f;  // an outlier
  m(5 % t, 2 % c) = -25.0f;
  return m;
}
}  // namespace

TEST_CASE("ActivationEdit with r = 0 is the identity in every min/max mode", "[joint][edit]") {
  const auto x = random_acts(17, 9, 1);
  for (auto mode : {EditMode::MinMaxTensor, EditMode::MinMaxChannel}) {
    ActivationEdit ed({mode, 0.0});
    const auto y = ed.edited(x.view());
    REQUIRE(y.storage() == x.storage());
  }
  ActivationEdit none({EditMode::PercentileCompat, 0.0, 0.0, 0.0, true});
  REQUIRE(none.edited(x.view()).storage() == x.storage());
}

TEST_CASE("ActivationEdit per tensor clamps to Eq. 5 bounds", "[joint][edit]") {
  const auto x = random_acts(31, 12, 2);
  const double r = 0.1;
  const auto y = ActivationEdit({EditMode::MinMaxTensor, r}).edited(x.view());
  const float mn = *std::min_element(x.storage().begin(), x.storage().end());
  const float mx = *std::max_element(x.storage().begin(), x.storage().end());
  const float lb = static_cast<float>(r * mx + (1 - r) * mn), hb = static_cast<float>((1 - r) * mx + r * mn);
  std::size_t changed = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(y.data()[i] == std::clamp(x.data()[i], lb, hb));
    changed += y.data()[i] != x.data()[i];
  }
  REQUIRE(changed >= 1);  // the outlier was edited
  const float ymax = *std::max_element(y.storage().begin(), y.storage().end());
  REQUIRE(ymax == Approx(mx - r * (mx - mn)));
}

TEST_CASE("ActivationEdit per channel uses each column's range", "[joint][edit]") {
  const auto x = random_acts(23, 7, 3);
  const double r = 0.2;
  const auto y = ActivationEdit({EditMode::MinMaxChannel, r}).edited(x.view());
  for (std::size_t j = 0; j < x.cols(); ++j) {
    float mn = INFINITY, mx = -INFINITY;
    for (std::size_t t = 0; t < x.rows(); ++t) {
      mn = std::min(mn, x(t, j));
      mx = std::max(mx, x(t, j));
    }
    const auto [lb, hb] = ActivationEdit::bounds(mn, mx, r);
    for (std::size_t t = 0; t < x.rows(); ++t) REQUIRE(y(t, j) == std::clamp(x(t, j), lb, hb));
  }
}

TEST_CASE("ActivationEdit compat mode clips at the k-th largest |x|", "[joint][edit]") {
  const auto x = random_acts(50, 20, 4);  // M = 1000, clip_h = 0.01 -> k = 10
  const auto y = ActivationEdit({EditMode::PercentileCompat, 0.0, 0.0, 0.01, true}).edited(x.view());
  std::vector<float> a;
  for (float v : x.storage()) a.push_back(std::fabs(v));
  std::sort(a.begin(), a.end(), std::greater<float>());
  const float tau = a[9];
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(y.data()[i] == std::clamp(x.data()[i], -tau, tau));
    clipped += std::fabs(x.data()[i]) > tau;
  }
  REQUIRE(clipped == 9);  // the 9 values strictly above the 10th largest (no ties in normal data)
  // Signed variant: k_l-th smallest and k_h-th largest signed values.
  const auto z = ActivationEdit({EditMode::PercentileCompat, 0.0, 0.02, 0.01, false}).edited(x.view());
  std::vector<float> s(x.storage().begin(), x.storage().end());
  std::sort(s.begin(), s.end());
  const float lo = s[19], hi = s[s.size() - 10];
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(z.data()[i] == std::clamp(x.data()[i], lo, hi));
  // Tiny tensor: k would be 0; the guard makes it 1 (clip to the largest value = no change).
  const auto small = random_acts(2, 3, 5);
  const auto w = ActivationEdit({EditMode::PercentileCompat, 0.0, 0.0, 0.01, true}).edited(small.view());
  REQUIRE(w.storage() == small.storage());
}

TEST_CASE("ActivationEdit rejects bad options and non-finite input", "[joint][edit][errors]") {
  REQUIRE_THROWS_WITH(ActivationEdit({EditMode::MinMaxTensor, 0.7}), Catch::Contains("r = 0.7"));
  REQUIRE_THROWS_WITH(ActivationEdit({EditMode::MinMaxTensor, -0.1}), Catch::Contains("[0, 0.5]"));
  REQUIRE_THROWS_AS(ActivationEdit({EditMode::PercentileCompat, 0.0, 0.0, 1.5, true}), sparq::error);
  auto x = random_acts(4, 4, 6);
  x(1, 1) = NAN;
  REQUIRE_THROWS_WITH(ActivationEdit({EditMode::MinMaxTensor, 0.1}).edit(x.view()), Catch::Contains("non-finite"));
}
