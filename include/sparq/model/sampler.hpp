// Sampler: picks the next token from logits — greedy argmax, or temperature + top-p with a seed.
//
// temperature == 0: argmax (the lowest id among equal maxima). Otherwise p = softmax(logits / T);
// with 0 < top_p < 1 the smallest set of most probable tokens whose mass reaches top_p is kept
// (nucleus sampling) and renormalised; a uniform draw u in [0, 1) from a std::mt19937_64 seeded
// with `seed` picks the token whose cumulative probability first exceeds u·mass. Same seed, same
// logits → same tokens.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "sparq/core/error.hpp"

namespace sparq::model {

class Sampler {
 public:
  explicit Sampler(float temperature = 0.0f, float top_p = 1.0f, std::uint64_t seed = 0)
      : temperature_(temperature), top_p_(top_p), rng_(seed) {
    SPARQ_CHECK(std::isfinite(temperature) && temperature >= 0.0f, "Sampler: temperature = ",
                temperature, ", expected a finite value >= 0");
    SPARQ_CHECK(top_p > 0.0f && top_p <= 1.0f, "Sampler: top_p = ", top_p, ", expected (0, 1]");
  }

  [[nodiscard]] static int argmax(const float* logits, std::size_t n) noexcept {
    std::size_t best = 0;
    for (std::size_t i = 1; i < n; ++i)
      if (logits[i] > logits[best]) best = i;
    return static_cast<int>(best);
  }

  [[nodiscard]] int sample(const float* logits, std::size_t n) {
    SPARQ_CHECK(n > 0, "Sampler::sample: no logits");
    if (temperature_ == 0.0f) return argmax(logits, n);
    probs_.resize(n);
    float mx = logits[0];
    for (std::size_t i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      probs_[i] = std::exp((static_cast<double>(logits[i]) - mx) / temperature_);
      sum += probs_[i];
    }
    for (auto& p : probs_) p /= sum;
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    std::size_t keep = n;
    double mass = 1.0;
    if (top_p_ < 1.0f) {
      std::stable_sort(order_.begin(), order_.end(),
                       [&](std::size_t a, std::size_t b) { return probs_[a] > probs_[b]; });
      mass = 0;
      for (keep = 0; keep < n;) {
        mass += probs_[order_[keep++]];
        if (mass >= top_p_) break;
      }
    }
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * mass;
    double cdf = 0;
    for (std::size_t k = 0; k < keep; ++k) {
      cdf += probs_[order_[k]];
      if (u < cdf) return static_cast<int>(order_[k]);
    }
    return static_cast<int>(order_[keep - 1]);
  }

 private:
  float temperature_;
  float top_p_;
  std::mt19937_64 rng_;
  std::vector<double> probs_;
  std::vector<std::size_t> order_;
};

}  // namespace sparq::model
