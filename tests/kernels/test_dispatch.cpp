// Run-time dispatch: kernels registered from TUs built for SSE2, AVX2 and AVX-512 (this TU).
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "dispatch_table.hpp"
#include "pack_helpers.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

namespace {
const bool reg_here_f32 = kt::gemv_f32_table.add(sk::this_target(), &sk::gemv_f32<>);
const bool reg_here_q8 = kt::gemv_q8_a8_table.add(sk::this_target(), &sk::gemv_q8_a8<>);
}  // namespace

TEST_CASE("dispatch tables hold one distinct kernel per compiled target and pick the best", "[kernels][dispatch]") {
  REQUIRE(reg_here_f32);
  REQUIRE(reg_here_q8);
  const sk::Target here = sk::this_target();
  REQUIRE((here == sk::Target::avx512vnni || here == sk::Target::avx512bw));
  REQUIRE(kt::gemv_f32_table.get(sk::Target::sse2) != nullptr);
  REQUIRE(kt::gemv_f32_table.get(sk::Target::avx2fma) != nullptr);
  REQUIRE(kt::gemv_f32_table.get(here) != nullptr);
  REQUIRE(kt::gemv_f32_table.get(sk::Target::sse2) != kt::gemv_f32_table.get(sk::Target::avx2fma));
  REQUIRE(kt::gemv_f32_table.get(sk::Target::avx2fma) != kt::gemv_f32_table.get(here));
  REQUIRE(kt::gemv_f32_table.get(sk::Target::avx2) == nullptr);

  // best(): the most capable registered target the CPU runs
  sk::Target expect = sk::Target::sse2;
  if (sk::cpu_supports_target(sk::Target::avx2fma)) expect = sk::Target::avx2fma;
  if (sk::cpu_supports_target(here)) expect = here;
  REQUIRE(kt::gemv_f32_table.best_target() == expect);
  REQUIRE(kt::gemv_f32_table.best() == kt::gemv_f32_table.get(expect));
  sk::Dispatcher<kt::GemvF32> empty;
  REQUIRE(empty.best() == nullptr);

  // every runnable registered kernel computes the same product
  const std::size_t rows = 23, cols = 301;
  const auto w = sparq_test::randn(rows * cols, 1);
  const auto x = sparq_test::randn(cols, 2);
  const auto q = kt::rand_i8(rows * cols, 3);
  const auto sc = kt::rand_scales(rows, 4);
  const auto qx = kt::rand_i8(cols, 5);
  std::vector<float> ref(rows);
  sk::gemv_f32_reference(w.data(), rows, cols, x.data(), ref.data());
  std::vector<std::int32_t> acc(rows);
  sk::gemv_q8_a8_reference(q.data(), rows, cols, qx.data(), acc.data());
  int ran = 0;
  for (sk::Target t : {sk::Target::sse2, sk::Target::avx2fma, here}) {
    if (!sk::cpu_supports_target(t)) continue;
    INFO("target " << sk::target_name(t));
    std::vector<float> y(rows);
    kt::gemv_f32_table.get(t)(w.data(), rows, cols, x.data(), y.data(), 1);
    for (std::size_t k = 0; k < rows; ++k) {
      double mag = 0.0;
      for (std::size_t j = 0; j < cols; ++j) mag += std::fabs(static_cast<double>(w[k * cols + j]) * x[j]);
      REQUIRE(std::fabs(y[k] - ref[k]) <= 1e-5 * mag);
    }
    kt::gemv_q8_a8_table.get(t)(q.data(), sc.data(), rows, cols, qx.data(), 0.5f, y.data(), 1);
    for (std::size_t k = 0; k < rows; ++k) REQUIRE(y[k] == 0.5f * sc[k] * static_cast<float>(acc[k]));
    ++ran;
  }
  REQUIRE(ran >= 1);
}
