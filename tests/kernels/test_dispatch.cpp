// Run-time dispatch: the tables sparq_dispatch compiles once per target, the choice of the best one,
// pinning a target, and every runnable table's kernels against scalar references. This file is
// baseline code (no ISA flag): whatever AVX2/AVX-512 code runs here comes from the tables.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "pack_helpers.hpp"
#include "sparq/kernels/dispatch.hpp"
#include "sparq/kernels/gemm_dense.hpp"
#include "sparq/kernels/gemv_bitmask_q.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq/kernels/quantize.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

namespace {

std::vector<sk::Target> runnable_targets() {
  std::vector<sk::Target> out;
  for (std::size_t i = 0; i < sk::target_count; ++i) {
    const auto t = static_cast<sk::Target>(i);
    if (sk::target_available(t)) out.push_back(t);
  }
  return out;
}

// Pins a target for one scope, then restores the automatic choice.
struct PinTarget {
  explicit PinTarget(sk::Target t) { REQUIRE(sk::select_target(t)); }
  ~PinTarget() { sk::reset_target(); }
  PinTarget(const PinTarget&) = delete;
  PinTarget& operator=(const PinTarget&) = delete;
};

}  // namespace

TEST_CASE("each compiled target registers one table and the best runnable one is active", "[kernels][dispatch]") {
  REQUIRE(sk::dispatch_enabled());
  std::size_t registered = 0;
  for (std::size_t i = 0; i < sk::target_count; ++i) {
    const auto t = static_cast<sk::Target>(i);
    const sk::KernelTable* tab = sk::registered_table(t);
    if (tab == nullptr) continue;
    ++registered;
    INFO("target " << sk::target_name(t));
    REQUIRE(tab->target == t);  // each table sits in its own slot
    REQUIRE(tab->gemv_f32 != nullptr);
    REQUIRE(tab->gemv_q4_f32 != nullptr);
    REQUIRE(tab->gemm_f64 != nullptr);
  }
#if SPARQ_X86
  // sse2 (the baseline) is always compiled and always runnable on x86-64
  REQUIRE(sk::registered_table(sk::Target::sse2) != nullptr);
  REQUIRE(sk::target_available(sk::Target::sse2));
#endif
  REQUIRE(registered >= 1);
  const auto runnable = runnable_targets();
  REQUIRE(!runnable.empty());
  // automatic choice: the most capable runnable table (unless SPARQ_TARGET pinned one for this run)
  if (std::getenv("SPARQ_TARGET") == nullptr) {
    REQUIRE(sk::active_table().target == runnable.back());
    REQUIRE(sk::dispatch_summary().rfind(sk::target_name(runnable.back()), 0) == 0);
  }
  // distinct targets hold distinct code
  for (std::size_t a = 0; a + 1 < runnable.size(); ++a) {
    REQUIRE(sk::registered_table(runnable[a])->gemv_q4_f32 != sk::registered_table(runnable[a + 1])->gemv_q4_f32);
  }
}

TEST_CASE("select_target pins a runnable target and refuses others without changing anything", "[kernels][dispatch]") {
  const auto runnable = runnable_targets();
  for (sk::Target t : runnable) {
    PinTarget pin(t);
    REQUIRE(sk::active_table().target == t);
  }
  sk::reset_target();
  REQUIRE(sk::active_table().target == runnable.back());
  const sk::Target before = sk::active_table().target;
  for (std::size_t i = 0; i < sk::target_count; ++i) {
    const auto t = static_cast<sk::Target>(i);
    if (sk::target_available(t)) continue;
    INFO("target " << sk::target_name(t));
    REQUIRE_FALSE(sk::select_target(t));
    REQUIRE(sk::active_table().target == before);
  }
  sk::Target parsed{};
  REQUIRE(sk::target_from_name("avx2", parsed));
  REQUIRE(parsed == sk::Target::avx2);
  REQUIRE_FALSE(sk::target_from_name("avx3", parsed));
  REQUIRE(std::string(sk::target_name(static_cast<sk::Target>(99))) == "unknown");
}

TEST_CASE("every runnable table computes the scalar references (tails included)", "[kernels][dispatch]") {
  const std::size_t rows = 23;
  for (std::size_t cols : {64, 320, 1000}) {  // 1000: not a multiple of any vector width or of 512
    const auto w = sparq_test::randn(rows * cols, 1 + static_cast<unsigned>(cols));
    const auto x = sparq_test::randn(cols, 2);
    const auto q = kt::rand_i8(rows * cols, 3);
    const auto sc = kt::rand_scales(rows, 4);
    const auto qx = kt::rand_i8(cols, 5);
    std::vector<float> ref_f32(rows), ref_q8(rows);
    std::vector<std::int32_t> acc(rows);
    sk::gemv_f32_reference(w.data(), rows, cols, x.data(), ref_f32.data());
    sk::gemv_q8_a8_reference(q.data(), rows, cols, qx.data(), acc.data());
    sk::gemv_q8_f32_reference(q.data(), sc.data(), rows, cols, x.data(), ref_q8.data());
    std::vector<double> mag(rows, 0.0), mag_q8(rows, 0.0);
    for (std::size_t k = 0; k < rows; ++k)
      for (std::size_t j = 0; j < cols; ++j) {
        mag[k] += std::fabs(static_cast<double>(w[k * cols + j]) * x[j]);
        mag_q8[k] += std::fabs(static_cast<double>(sc[k]) * q[k * cols + j] * x[j]);
      }
    // int4 g32 symmetric (cols is a multiple of 32 only for 64 and 320)
    const bool q4_ok = cols % 32 == 0;
    const auto u = kt::rand_u8(rows * cols, 6, 15);
    const auto codes = kt::pack_nibbles(u, rows, cols);
    const auto s4 = kt::rand_scales(rows * (cols / 32), 7);
    std::vector<float> ref_q4(rows);
    if (q4_ok) sk::gemv_q4_reference(codes.data(), s4.data(), nullptr, rows, cols, 32, x.data(), ref_q4.data());

    for (sk::Target t : runnable_targets()) {
      INFO("target " << sk::target_name(t) << " cols " << cols);
      PinTarget pin(t);
      std::vector<float> y(rows, -1.0f), y2(rows, -2.0f);
      sk::gemv_f32(w.data(), rows, cols, x.data(), y.data());  // the dispatched entry point
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(std::fabs(y[k] - ref_f32[k]) <= 1e-5 * mag[k]);
      sk::registered_table(t)->gemv_f32(w.data(), rows, cols, x.data(), y2.data(), 2);  // the table, 2 threads
      REQUIRE(std::memcmp(y.data(), y2.data(), rows * sizeof(float)) == 0);

      sk::dense_gemm(x.data(), cols, 1, w.data(), cols, rows, cols, y2.data(), rows);
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(std::fabs(y2[k] - ref_f32[k]) <= 1e-5 * mag[k]);

      sk::gemv_q8_a8(q.data(), sc.data(), rows, cols, qx.data(), 0.5f, y.data());
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(y[k] == 0.5f * sc[k] * static_cast<float>(acc[k]));
      sk::gemv_q8_f32(q.data(), sc.data(), rows, cols, x.data(), y.data());
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(std::fabs(y[k] - ref_q8[k]) <= 1e-5 * mag_q8[k] + 1e-30);

      // bitmask int8 (about 40 % of q kept): the table's result is the dense int8 kernel's on the
      // masked codes, bit for bit (W8A8 and W8A32)
      {
        const std::size_t mb = (cols + 7) / 8;
        std::vector<std::uint8_t> mask(rows * mb, 0);
        std::vector<std::int8_t> kept, dq(rows * cols, 0);
        std::vector<std::size_t> off{0};
        for (std::size_t k = 0; k < rows; ++k) {
          for (std::size_t j = 0; j < cols; ++j) {
            if (q[k * cols + j] == 0 || (j * 7 + k * 3) % 5 >= 2) continue;
            mask[k * mb + j / 8] = static_cast<std::uint8_t>(mask[k * mb + j / 8] | (1u << (j % 8)));
            kept.push_back(q[k * cols + j]);
            dq[k * cols + j] = q[k * cols + j];
          }
          off.push_back(kept.size());
        }
        std::vector<float> yd(rows, -3.0f);
        sk::gemv_q8_a8(dq.data(), sc.data(), rows, cols, qx.data(), 0.5f, yd.data());
        sk::gemv_bitmask_q8_a8(mask.data(), kept.data(), off.data(), sc.data(), rows, cols, qx.data(), 0.5f, y.data());
        REQUIRE(std::memcmp(y.data(), yd.data(), rows * sizeof(float)) == 0);
        sk::registered_table(t)->gemv_bitmask_q8_a8(mask.data(), kept.data(), off.data(), sc.data(), rows, cols, qx.data(),
                                                     0.5f, y2.data(), 2);
        REQUIRE(std::memcmp(y2.data(), yd.data(), rows * sizeof(float)) == 0);
        sk::gemv_q8_f32(dq.data(), sc.data(), rows, cols, x.data(), yd.data());
        sk::gemv_bitmask_q8_f32(mask.data(), kept.data(), off.data(), sc.data(), rows, cols, x.data(), y.data());
        REQUIRE(std::memcmp(y.data(), yd.data(), rows * sizeof(float)) == 0);
      }

      if (q4_ok) {
        std::vector<unsigned char> work(sk::block_q8_workspace_bytes(cols));
        sk::gemv_q4_f32(codes.data(), s4.data(), nullptr, rows, cols, 32, x.data(), y.data(), work.data());
        for (std::size_t k = 0; k < rows; ++k) {
          // W4A8: x rounded to int8 per block of 32; |error| <= sum |w| a/2 (a <= max|x|/127)
          double bound = 0.0;
          for (std::size_t j = 0; j < cols; ++j)
            bound += std::fabs(s4[k * (cols / 32) + j / 32] * (double(u[k * cols + j]) - 8.0)) * 4.0 / 127.0 / 2.0;
          REQUIRE(std::fabs(y[k] - ref_q4[k]) <= bound + 1e-4);
        }

        // bitmask int4 (about 40 % of the codes kept, the others the zero code; symmetric and
        // asymmetric): the table's result is the dense int4 kernel's on those codes, bit for bit
        // (W4A32 and W4A8)
        const std::size_t mb = cols / 8, ng = cols / 32;
        for (bool asym : {false, true}) {
          std::vector<std::uint8_t> zeros(asym ? rows * ng : 0);
          for (std::size_t i = 0; i < zeros.size(); ++i) zeros[i] = static_cast<std::uint8_t>((i * 5) % 16);
          const std::uint8_t* zp = asym ? zeros.data() : nullptr;
          std::vector<std::uint8_t> mask(rows * mb, 0), kept, dq(rows * cols / 2, 0);
          std::vector<std::size_t> off{0};
          for (std::size_t k = 0; k < rows; ++k) {
            std::size_t n = 0;
            for (std::size_t j = 0; j < cols; ++j) {
              const unsigned z = asym ? zeros[k * ng + j / 32] : 8u;
              unsigned v = z;
              if (u[k * cols + j] != z && (j * 7 + k * 3) % 5 < 2) {
                v = u[k * cols + j];
                mask[k * mb + j / 8] = static_cast<std::uint8_t>(mask[k * mb + j / 8] | (1u << (j % 8)));
                if (n % 2 == 0) kept.push_back(static_cast<std::uint8_t>(v));
                else kept.back() = static_cast<std::uint8_t>(kept.back() | (v << 4));
                ++n;
              }
              dq[k * cols / 2 + j / 2] = static_cast<std::uint8_t>(dq[k * cols / 2 + j / 2] | (v << (4 * (j % 2))));
            }
            off.push_back(kept.size());
          }
          std::vector<float> yd(rows, -3.0f);
          sk::gemv_q4_f32(dq.data(), s4.data(), zp, rows, cols, 32, x.data(), yd.data(), work.data());
          sk::gemv_bitmask_q4_f32(mask.data(), kept.data(), off.data(), s4.data(), zp, rows, cols, 32, x.data(), y.data(),
                                  work.data());
          REQUIRE(std::memcmp(y.data(), yd.data(), rows * sizeof(float)) == 0);
          std::vector<unsigned char> work2(sk::block_q8_workspace_bytes(cols));
          const sk::BlockQ8 act = sk::BlockQ8::carve(work2.data(), cols);
          sk::quantize_block_q8(x.data(), cols, act);
          sk::gemv_q4_a8(dq.data(), s4.data(), zp, rows, cols, 32, act, yd.data());
          sk::registered_table(t)->gemv_bitmask_q4_a8(mask.data(), kept.data(), off.data(), s4.data(), zp, rows, cols, 32,
                                                      act, y2.data(), 2);
          REQUIRE(std::memcmp(y2.data(), yd.data(), rows * sizeof(float)) == 0);
        }
      }

      // element-wise quantization is exact: identical codes on every target
      std::vector<float> amax(1);
      REQUIRE(sk::group_absmax(x.data(), cols, cols, amax.data()));
      float ref_amax = 0.0f;
      for (float v : x) ref_amax = std::max(ref_amax, std::fabs(v));
      REQUIRE(amax[0] == ref_amax);
    }
  }
}

TEST_CASE("pinning changes which table the dispatched entry points run", "[kernels][dispatch]") {
  // An N:M kernel through every runnable target gives the same product within float rounding,
  // and the automatic choice equals the pinned best target bit for bit.
  const std::size_t rows = 9, cols = 96, n = 2, m = 4;
  const std::size_t nk = cols / m * n;
  const auto vals = sparq_test::randn(rows * nk, 11);
  const std::size_t rb = sk::nm_index_row_bytes(nk, m);
  std::vector<std::uint8_t> idx(rows * rb, 0);  // 2-bit in-group positions: kept values at 1 and 3
  for (std::size_t k = 0; k < rows; ++k)
    for (std::size_t i = 0; i < nk; ++i)
      idx[k * rb + i / 4] = static_cast<std::uint8_t>(idx[k * rb + i / 4] | ((i % n == 0 ? 1u : 3u) << (2 * (i % 4))));
  const auto x = sparq_test::randn(cols, 12);
  std::vector<float> y_auto(rows);
  sk::gemv_nm_f32(vals.data(), idx.data(), rows, cols, n, m, x.data(), y_auto.data());
  const auto runnable = runnable_targets();
  for (sk::Target t : runnable) {
    INFO("target " << sk::target_name(t));
    PinTarget pin(t);
    std::vector<float> y(rows);
    sk::gemv_nm_f32(vals.data(), idx.data(), rows, cols, n, m, x.data(), y.data());
    for (std::size_t k = 0; k < rows; ++k) {
      double ref = 0.0, mag = 0.0;
      for (std::size_t i = 0; i < nk; ++i) {
        const std::size_t j = i / n * m + (i % n == 0 ? 1 : 3);
        ref += double(vals[k * nk + i]) * x[j];
        mag += std::fabs(double(vals[k * nk + i]) * x[j]);
      }
      REQUIRE(std::fabs(y[k] - ref) <= 1e-5 * mag);
    }
    if (t == runnable.back()) REQUIRE(std::memcmp(y.data(), y_auto.data(), rows * sizeof(float)) == 0);
  }
}
