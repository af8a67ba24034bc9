// Simulated annealing over a discrete vector (JSQ's search for per-layer editing strengths).
//
// State: V = [v_1 .. v_n], each v_i an index into a list of `n_choices` values. Objective: a
// score to MAXIMISE (the JSQ driver passes P(V) = -scale * ln(perplexity)). Each step picks one
// position uniformly at random and replaces its value by a different choice, evaluates the
// objective, and accepts by the Metropolis rule: always if dP >= 0, otherwise with probability
// exp(dP / T). T falls geometrically from t_initial (300) to t_final (10) over the steps, as in the
// paper. With dP in nats of log-perplexity (~0.001-0.1) such temperatures accept every move, so
// the JSQ driver scales the objective to basis points: scale = 1e4 means a 1% perplexity change is
// ~100 units, accepted at T = 300 with p ~ 0.72 and at T = 10 with p ~ 5e-5.
// Evaluated states are memoised, so revisiting a state costs nothing; the best state seen is kept,
// so the result is never worse than the start. Deterministic for a seed (own integer RNG).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "sparq/core/error.hpp"

namespace sparq {

struct AnnealOptions {
  double t_initial = 300.0;
  double t_final = 10.0;
  std::size_t steps = 50;   ///< objective evaluations after the start (cache hits included)
  std::uint64_t seed = 0;
};

struct AnnealStep {
  std::size_t step = 0;
  double temperature = 0.0;
  std::vector<std::size_t> proposal;
  double score = 0.0;
  bool accepted = false;
  bool cached = false;
};

struct AnnealResult {
  std::vector<std::size_t> best;
  double best_score = 0.0;
  std::vector<std::size_t> start;
  double start_score = 0.0;
  std::size_t evaluations = 0;  ///< distinct states evaluated (cache misses), start included
  std::vector<AnnealStep> trace;
};

namespace detail {
/// splitmix64: small, fast, and identical on every platform (unlike std:: distributions).
struct SplitMix64 {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform integer in [0, n) (n > 0), by rejection (no modulo bias).
  std::size_t below(std::size_t n) noexcept {
    const std::uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t r;
    do r = next(); while (r >= lim);
    return static_cast<std::size_t>(r % n);
  }
  /// Uniform double in [0, 1).
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};
}  // namespace detail

/// Runs simulated annealing from `start` (indices < n_choices). `objective(V)` returns a finite
/// score to maximise. `on_step` (optional) sees every step, e.g. to print progress.
inline AnnealResult anneal(const std::vector<std::size_t>& start, std::size_t n_choices,
                           const std::function<double(const std::vector<std::size_t>&)>& objective,
                           const AnnealOptions& opt = {},
                           const std::function<void(const AnnealStep&)>& on_step = {}) {
  SPARQ_CHECK(!start.empty(), "anneal: the state vector is empty");
  SPARQ_CHECK(n_choices >= 1, "anneal: n_choices = 0, expected at least 1");
  for (std::size_t i = 0; i < start.size(); ++i)
    SPARQ_CHECK(start[i] < n_choices, "anneal: start[", i, "] = ", start[i], ", expected < ", n_choices);
  SPARQ_CHECK(opt.t_initial > 0 && opt.t_final > 0 && std::isfinite(opt.t_initial) && std::isfinite(opt.t_final),
              "anneal: temperatures must be positive and finite, got ", opt.t_initial, " and ", opt.t_final);

  std::map<std::vector<std::size_t>, double> cache;
  AnnealResult res;
  auto eval = [&](const std::vector<std::size_t>& v, bool& cached) {
    auto it = cache.find(v);
    if (it != cache.end()) {
      cached = true;
      return it->second;
    }
    cached = false;
    const double s = objective(v);
    SPARQ_CHECK(std::isfinite(s), "anneal: the objective returned ", s, ", expected a finite score");
    cache.emplace(v, s);
    ++res.evaluations;
    return s;
  };
  bool cached = false;
  std::vector<std::size_t> cur = start;
  double cur_score = eval(cur, cached);
  res.start = start;
  res.start_score = cur_score;
  res.best = cur;
  res.best_score = cur_score;
  if (n_choices == 1) return res;  // nothing to search

  detail::SplitMix64 rng{opt.seed};
  for (std::size_t k = 0; k < opt.steps; ++k) {
    const double frac = opt.steps > 1 ? static_cast<double>(k) / static_cast<double>(opt.steps - 1) : 0.0;
    const double temp = opt.t_initial * std::pow(opt.t_final / opt.t_initial, frac);
    std::vector<std::size_t> prop = cur;
    const std::size_t pos = rng.below(prop.size());
    std::size_t nv = rng.below(n_choices - 1);
    if (nv >= prop[pos]) ++nv;  // a different choice, uniformly
    prop[pos] = nv;
    const double s = eval(prop, cached);
    const double d = s - cur_score;
    const double u = rng.uniform();  // drawn every step so the stream does not depend on d
    const bool accept = d >= 0 || u < std::exp(d / temp);
    if (accept) {
      cur = prop;
      cur_score = s;
    }
    if (s > res.best_score) {
      res.best = prop;
      res.best_score = s;
    }
    AnnealStep st{k, temp, prop, s, accept, cached};
    if (on_step) on_step(st);
    res.trace.push_back(std::move(st));
  }
  return res;
}

}  // namespace sparq
