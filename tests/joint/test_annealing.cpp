// Simulated annealing: determinism, never worse than the start, Metropolis behaviour, memoisation.
#include <cmath>
#include <vector>

#include "sparq/joint/annealing.hpp"
#include "sparq_test.hpp"

namespace {
// A separable objective with a unique maximum at V = target.
double score_of(const std::vector<std::size_t>& v, const std::vector<std::size_t>& target) {
  double s = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double d = static_cast<double>(v[i]) - static_cast<double>(target[i]);
    s -= 50.0 * d * d;
  }
  return s;
}
}  // namespace

TEST_CASE("anneal is deterministic for a seed and differs across seeds", "[joint][anneal]") {
  const std::vector<std::size_t> target{1, 4, 0, 2, 3, 1};
  auto f = [&](const std::vector<std::size_t>& v) { return score_of(v, target); };
  const std::vector<std::size_t> start(6, 0);
  sparq::AnnealOptions o;
  o.steps = 200;
  o.seed = 11;
  const auto a = sparq::anneal(start, 5, f, o);
  const auto b = sparq::anneal(start, 5, f, o);
  REQUIRE(a.best == b.best);
  REQUIRE(a.trace.size() == b.trace.size());
  for (std::size_t i = 0; i < a.trace.size(); ++i) {
    REQUIRE(a.trace[i].proposal == b.trace[i].proposal);
    REQUIRE(a.trace[i].accepted == b.trace[i].accepted);
  }
  o.seed = 12;
  const auto c = sparq::anneal(start, 5, f, o);
  bool differs = false;
  for (std::size_t i = 0; i < c.trace.size() && !differs; ++i) differs = c.trace[i].proposal != a.trace[i].proposal;
  REQUIRE(differs);
}

TEST_CASE("anneal never returns worse than its start and finds a simple optimum", "[joint][anneal]") {
  const std::vector<std::size_t> target{3, 3, 0, 4};
  auto f = [&](const std::vector<std::size_t>& v) { return score_of(v, target); };
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    sparq::AnnealOptions o;
    o.steps = 5;
    o.seed = seed;
    const std::vector<std::size_t> start{3, 3, 1, 4};  // already near-optimal
    const auto r = sparq::anneal(start, 5, f, o);
    REQUIRE(r.best_score >= r.start_score);
    REQUIRE(r.best_score == f(r.best));
  }
  sparq::AnnealOptions o;
  o.steps = 400;
  o.t_initial = 300;
  o.t_final = 1;
  const auto r = sparq::anneal(std::vector<std::size_t>(4, 0), 5, f, o);
  REQUIRE(r.best == target);
  // Memoisation: 5^4 = 625 states at most, and fewer distinct evaluations than steps + 1.
  REQUIRE(r.evaluations <= o.steps + 1);
  std::size_t hits = 0;
  for (const auto& s : r.trace) hits += s.cached;
  REQUIRE(r.evaluations + hits == o.steps + 1);
}

TEST_CASE("anneal follows the Metropolis rule", "[joint][anneal]") {
  // Every proposal is worse by exactly 1 unit than the current state (score = -number of moves).
  std::size_t calls = 0;
  auto worse = [&](const std::vector<std::size_t>&) { return -static_cast<double>(calls++); };
  sparq::AnnealOptions hot;
  hot.t_initial = hot.t_final = 1e9;
  hot.steps = 100;
  const auto h = sparq::anneal({0, 0, 0}, 5, worse, hot);
  std::size_t acc = 0;
  for (const auto& s : h.trace) acc += s.accepted;
  REQUIRE(acc >= 95);  // exp(-1e-9) ~ 1
  calls = 0;
  sparq::AnnealOptions cold;
  cold.t_initial = cold.t_final = 1e-3;
  cold.steps = 100;
  const auto c = sparq::anneal({0, 0, 0}, 5, worse, cold);
  for (const auto& s : c.trace) REQUIRE_FALSE(s.accepted);  // exp(-1000) == 0
  REQUIRE(c.best == std::vector<std::size_t>{0, 0, 0});
}

TEST_CASE("anneal rejects bad input", "[joint][anneal][errors]") {
  auto f = [](const std::vector<std::size_t>&) { return 0.0; };
  REQUIRE_THROWS_WITH(sparq::anneal({}, 5, f), Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(sparq::anneal({0, 7}, 5, f), Catch::Contains("start[1] = 7"));
  auto nan = [](const std::vector<std::size_t>&) { return NAN; };
  REQUIRE_THROWS_WITH(sparq::anneal({0}, 5, nan), Catch::Contains("finite"));
  sparq::AnnealOptions o;
  o.t_final = 0;
  REQUIRE_THROWS_AS(sparq::anneal({0}, 5, f, o), sparq::error);
}
