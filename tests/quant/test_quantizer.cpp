// Quantizer: error bounds, exact zeros, code ranges, packed layout bit by bit, calibrators,
// determinism, the typed front end, and real weights.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "sparq/io/llama2c.hpp"
#include "sparq/quant/quantizer.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {

Matrix<float> make(std::size_t rows, std::size_t cols, unsigned seed, float sigma = 1.0f) {
  Matrix<float> m(rows, cols);
  const auto v = sparq_test::randn(rows * cols, seed, sigma);
  std::copy(v.begin(), v.end(), m.data());
  for (std::size_t i = 0; i < m.size(); i += 13) m.data()[i] = 0.0f;          // exact zeros
  for (std::size_t i = 7; i < m.size(); i += 97) m.data()[i] *= 12.0f;        // outliers
  for (std::size_t c = 0; c < cols; ++c) m(rows - 1, c) = std::fabs(m(rows - 1, c));  // one all-positive row
  if (rows > 2)
    for (std::size_t c = 0; c < cols; ++c) m(rows - 2, c) = 0.0f;  // one all-zero row (degenerate range)
  return m;
}

QuantConfig config(SchemeKind s, GranularityKind g, std::size_t G, int bits,
                   CalibratorKind cal = CalibratorKind::minmax, QuantOptions o = {}) {
  QuantConfig c;
  c.scheme = s;
  c.granularity = g;
  c.group_size = G;
  c.bits = bits;
  c.calibrator = cal;
  c.options = o;
  return c;
}

std::vector<QuantConfig> integer_configs(std::size_t cols) {
  std::vector<QuantConfig> v;
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (auto g : {GranularityKind::per_tensor, GranularityKind::per_channel, GranularityKind::per_group,
                   GranularityKind::per_token}) {
      QuantOptions full;
      full.full_range = true;
      full.tail_group = true;
      QuantOptions tail;
      tail.tail_group = true;
      const std::size_t G = g == GranularityKind::per_group ? (cols % 2 ? 16 : 32) : 0;
      v.push_back(config(SchemeKind::symmetric, g, G, bits, CalibratorKind::minmax, tail));
      v.push_back(config(SchemeKind::symmetric, g, G, bits, CalibratorKind::minmax, full));
      v.push_back(config(SchemeKind::asymmetric, g, G, bits, CalibratorKind::minmax, tail));
    }
  }
  return v;
}

std::string describe(const QuantConfig& c) {
  return std::string(scheme_name(c.scheme)) + (c.options.full_range ? "(full)" : "") + " " +
         std::to_string(c.bits) + "b " + granularity_name(c.granularity) + " G=" +
         std::to_string(c.group_size) + " " + calibrator_name(c.calibrator);
}

double group_err(const Matrix<float>& w, const Matrix<float>& h, std::size_t r, std::size_t c0, std::size_t c1) {
  double e = 0;
  for (std::size_t c = c0; c < c1; ++c) e += std::pow(std::fabs(double(h(r, c)) - double(w(r, c))), 2.4);
  return e;
}

}  // namespace

TEST_CASE("integer round trip: within half a step inside the range, clamped outside", "[quant]") {
  for (std::size_t cols : {96, 37}) {
    const Matrix<float> w = make(9, cols, 1 + static_cast<unsigned>(cols));
    for (const QuantConfig& cfg : integer_configs(cols)) {
      INFO(describe(cfg) << " cols=" << cols);
      const QuantizedTensor q = quant::quantize(w.view(), cfg);
      const Matrix<float> h = quant::dequantize(q);
      const QuantParams& p = q.params();
      for (std::size_t r = 0; r < w.rows(); ++r) {
        for (std::size_t c = 0; c < cols; ++c) {
          const float s = p.scale_at(r, c);
          const int z = p.zero_at(r, c);
          const int lvl = q.level(r, c);
          const unsigned u = q.code(r, c);
          REQUIRE(lvl >= p.code_lo() - z);
          REQUIRE(lvl <= p.code_hi() - z);
          if (!p.signed_codes()) {
            REQUIRE(int(u) == lvl + z);
            REQUIRE(int(u) >= p.code_lo());  // restricted symmetric never uses u = 0
          }
          REQUIRE(h(r, c) == s * static_cast<float>(lvl));  // x̂ = scale · (u − zero), exactly
          const float lo = s * static_cast<float>(p.code_lo() - z), hi = s * static_cast<float>(p.code_hi() - z);
          const float x = w(r, c);
          if (x >= hi) {
            REQUIRE(h(r, c) >= hi - 0.5f * s * 1.000001f);
          } else if (x <= lo) {
            REQUIRE(h(r, c) <= lo + 0.5f * s * 1.000001f);
          }
          if (x > hi + 0.5f * s) REQUIRE(h(r, c) == hi);
          if (x < lo - 0.5f * s) REQUIRE(h(r, c) == lo);
          // Half a step, plus the float rounding of x·(1/s) and of the difference (a few ulps of x).
          if (x >= lo && x <= hi) REQUIRE(std::fabs(h(r, c) - x) <= 0.5f * s * 1.000001f + std::fabs(x) * 5e-7f);
        }
      }
    }
  }
}

TEST_CASE("exact zeros stay exactly zero for every scheme", "[quant]") {
  const Matrix<float> w = make(6, 64, 3);
  std::vector<QuantConfig> cfgs = integer_configs(64);
  for (auto g : {GranularityKind::per_channel, GranularityKind::per_group, GranularityKind::per_tensor}) {
    const std::size_t G = g == GranularityKind::per_group ? 32 : 0;
    cfgs.push_back(config(SchemeKind::nf4, g, G, 4));
    cfgs.push_back(config(SchemeKind::fp8_e4m3, g, G, 8));
    cfgs.push_back(config(SchemeKind::asymmetric, g, G, 4, CalibratorKind::mse_clip));
    cfgs.push_back(config(SchemeKind::symmetric, g, G, 4, CalibratorKind::percentile));
  }
  std::size_t zeros = 0;
  for (const QuantConfig& cfg : cfgs) {
    INFO(describe(cfg));
    const Matrix<float> h = quant::fake_quantize(w.view(), cfg);
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (w.data()[i] == 0.0f) {
        REQUIRE(h.data()[i] == 0.0f);
        ++zeros;
      }
    }
  }
  REQUIRE(zeros > 100);
}

TEST_CASE("scales follow the published formulas", "[quant]") {
  const Matrix<float> w = make(5, 64, 4);
  SECTION("JSQ/SmoothQuant W8 per channel: max(absmax, 1e-5)/127; Ŵ = round(W/Δ)·Δ") {
    const Quantizer<Symmetric, PerChannel, 8> qz;
    const QuantizedTensor q = qz.quantize(w.view());
    const Matrix<float> h = qz.dequantize(q);
    REQUIRE(q.params().scales.size() == w.rows());
    std::size_t differ = 0;
    for (std::size_t r = 0; r < w.rows(); ++r) {
      float a = 0;
      for (std::size_t c = 0; c < w.cols(); ++c) a = std::max(a, std::fabs(w(r, c)));
      const float d = std::max(a, 1e-5f) / 127.0f;
      REQUIRE(q.params().scales[r] == d);
      for (std::size_t c = 0; c < w.cols(); ++c) {
        const float ref = std::nearbyint(w(r, c) / d) * d;  // the reference divides
        if (h(r, c) != ref) {
          ++differ;
          REQUIRE(std::fabs(h(r, c) - ref) <= d * 1.0001f);  // x·(1/Δ) vs x/Δ: at most one step on ties
        }
      }
    }
    REQUIRE(differ <= 2);
  }
  SECTION("GPTQ asymmetric: range widened to 0, z = round(-xmin/Δ), degenerate row [-1, 1]") {
    const QuantizedTensor q = Quantizer<Asymmetric, PerChannel, 4>{}.quantize(w.view());
    for (std::size_t r = 0; r < w.rows(); ++r) {
      float mn = 0, mx = 0;
      for (std::size_t c = 0; c < w.cols(); ++c) {
        mn = std::min(mn, w(r, c));
        mx = std::max(mx, w(r, c));
      }
      if (mn == 0 && mx == 0) {
        mn = -1;
        mx = 1;
      }
      const float d = (mx - mn) / 15.0f;
      REQUIRE(q.params().scales[r] == d);
      REQUIRE(int(q.params().zeros[r]) == int(std::nearbyint(-mn / d)));
    }
  }
  SECTION("GPTQ full-range symmetric: Δ = 2·absmax/(2^b−1), zero 2^(b−1), max clips to (2^(b−1)−1)Δ") {
    QuantOptions o;
    o.full_range = true;
    const Quantizer<Symmetric, PerChannel, 4> qz(o);
    const QuantizedTensor q = qz.quantize(w.view());
    const Matrix<float> h = qz.dequantize(q);
    bool used_zero_code = false;
    for (std::size_t r = 0; r < w.rows(); ++r) {
      float a = 0;
      std::size_t arg = 0;
      for (std::size_t c = 0; c < w.cols(); ++c)
        if (std::fabs(w(r, c)) > a) a = std::fabs(w(r, arg = c));
      const float d = ((a > 0 ? a : 1.0f) * 2.0f) / 15.0f;
      REQUIRE(q.params().scales[r] == d);
      if (a > 0 && w(r, arg) > 0) REQUIRE(h(r, arg) == 7.0f * d);
      for (std::size_t c = 0; c < w.cols(); ++c) used_zero_code |= q.code(r, c) == 0;
    }
    REQUIRE(used_zero_code);  // the grid really reaches −8
  }
  SECTION("per tensor has one scale, per group ceil(cols/G) per row") {
    REQUIRE(Quantizer<Symmetric, PerTensor, 8>{}.fit(w.view()).scales.size() == 1);
    REQUIRE(Quantizer<Symmetric, PerGroup<32>, 4>{}.fit(w.view()).scales.size() == w.rows() * 2);
    REQUIRE(Quantizer<Asymmetric, PerGroup<32>, 4>{}.fit(w.view()).zeros.size() == w.rows() * 2);
    float a = 0;
    for (std::size_t i = 0; i < w.size(); ++i) a = std::max(a, std::fabs(w.data()[i]));
    REQUIRE(Quantizer<Symmetric, PerTensor, 8>{}.fit(w.view()).scales[0] == a / 127.0f);
  }
}

TEST_CASE("packed layout through the Quantizer, bit by bit, for every width", "[quant][layout]") {
  const std::size_t rows = 4, cols = 37;  // odd: rows do not end on a byte boundary
  const Matrix<float> w = make(rows, cols, 8);
  std::vector<QuantConfig> cfgs;
  QuantOptions tail;
  tail.tail_group = true;
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    cfgs.push_back(config(SchemeKind::symmetric, GranularityKind::per_group, 16, bits, CalibratorKind::minmax, tail));
    cfgs.push_back(config(SchemeKind::asymmetric, GranularityKind::per_channel, 0, bits));
  }
  cfgs.push_back(config(SchemeKind::nf4, GranularityKind::per_group, 16, 4, CalibratorKind::minmax, tail));
  cfgs.push_back(config(SchemeKind::fp8_e4m3, GranularityKind::per_channel, 0, 8));
  for (const QuantConfig& cfg : cfgs) {
    INFO(describe(cfg));
    const QuantizedTensor q = quant::quantize(w.view(), cfg);
    const QuantParams& p = q.params();
    const unsigned b = static_cast<unsigned>(cfg.bits);
    REQUIRE(q.row_bytes() == (cols * b + 7) / 8);
    REQUIRE(q.code_bytes() == rows * q.row_bytes());
    for (std::size_t r = 0; r < rows; ++r) {
      // Expected stored code from the definitions (independent of the kernels).
      std::vector<unsigned> want(cols);
      for (std::size_t c = 0; c < cols; ++c) {
        const float s = p.scale_at(r, c), x = w(r, c);
        switch (cfg.scheme) {
          case SchemeKind::symmetric: {
            const int qmin = p.code_lo() - p.symmetric_zero(), qmax = p.code_hi() - p.symmetric_zero();
            const int qv = std::clamp(static_cast<int>(std::nearbyint(x * (1.0f / s))), qmin, qmax);
            want[c] = b == 8 ? static_cast<std::uint8_t>(static_cast<std::int8_t>(qv))  // signed exception
                             : static_cast<unsigned>(qv + p.symmetric_zero());          // offset binary
            break;
          }
          case SchemeKind::asymmetric:
            want[c] = static_cast<unsigned>(std::clamp(
                static_cast<int>(std::nearbyint(x * (1.0f / s))) + p.zero_at(r, c), 0, p.maxq()));
            break;
          case SchemeKind::nf4: {
            const float v = std::clamp(x * (1.0f / s), -1.0f, 1.0f);
            unsigned best = 0;
            for (unsigned i = 1; i < 16; ++i)
              if (std::fabs(nf4::levels[i] - v) < std::fabs(nf4::levels[best] - v)) best = i;
            want[c] = best;
            break;
          }
          case SchemeKind::fp8_e4m3:
            want[c] = fp8::encode_e4m3(x * (1.0f / s));
            break;
        }
        REQUIRE(q.code(r, c) == want[c]);
      }
      const std::uint8_t* row = q.row_codes(r);
      for (std::size_t j = 0; j < q.row_bytes() * 8; ++j) {
        const unsigned got = (row[j / 8] >> (j % 8)) & 1u;
        const std::size_t c = j / b;
        const unsigned expect = c < cols ? (want[c] >> (j - c * b)) & 1u : 0u;
        INFO("row " << r << " bit " << j);
        REQUIRE(got == expect);
      }
    }
  }
}

TEST_CASE("8-bit symmetric codes are signed int8 q", "[quant][layout]") {
  const Matrix<float> w = make(3, 40, 12);
  const QuantizedTensor q = Quantizer<Symmetric, PerChannel, 8>{}.quantize(w.view());
  const auto s8 = q.int8_codes();
  REQUIRE(s8.size() == 120);
  bool negative = false;
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t c = 0; c < 40; ++c) {
      REQUIRE(s8[r * 40 + c] == q.level(r, c));
      REQUIRE(s8[r * 40 + c] >= -127);
      negative |= s8[r * 40 + c] < 0;
    }
  REQUIRE(negative);
  REQUIRE_THROWS_AS((Quantizer<Asymmetric, PerChannel, 8>{}.quantize(w.view()).int8_codes()), sparq::error);
}

TEST_CASE("NF4 and FP8 fake quantization", "[quant]") {
  const Matrix<float> w = make(4, 64, 21);
  const Quantizer<NF4, PerGroup<64>> nf;
  static_assert(decltype(nf)::bits == 4);
  const QuantizedTensor qn = nf.quantize(w.view());
  REQUIRE(qn.bits() == 4);
  REQUIRE(qn.row_bytes() == 32);
  const Matrix<float> hn = nf.dequantize(qn);
  for (std::size_t r = 0; r < 4; ++r) {
    const float s = qn.params().scales[r];
    float a = 0;
    for (std::size_t c = 0; c < 64; ++c) a = std::max(a, std::fabs(w(r, c)));
    REQUIRE(s == (a > 0 ? a : 1.0f));
    for (std::size_t c = 0; c < 64; ++c) REQUIRE(hn(r, c) == s * nf4::levels[qn.code(r, c)]);
  }
  const Quantizer<FP8E4M3, PerChannel> f8;
  const QuantizedTensor qf = f8.quantize(w.view());
  const Matrix<float> hf = f8.dequantize(qf);
  for (std::size_t r = 0; r < 4; ++r) {
    const float s = qf.params().scales[r];
    for (std::size_t c = 0; c < 64; ++c) {
      REQUIRE(hf(r, c) == s * fp8::decode_e4m3(static_cast<std::uint8_t>(qf.code(r, c))));
      // relative error of E4M3 normals ≤ 2^-4 (half an ulp of a 3-bit mantissa)
      if (std::fabs(w(r, c)) > s * 0.02f) REQUIRE(std::fabs(hf(r, c) - w(r, c)) <= std::fabs(w(r, c)) * 0.0625f);
    }
  }
}

TEST_CASE("MseClip is never worse than MinMax on its objective, and helps on outliers", "[quant][calib]") {
  const Matrix<float> w = make(6, 128, 31);
  double total_mm = 0, total_mse = 0;
  for (SchemeKind s : {SchemeKind::symmetric, SchemeKind::asymmetric, SchemeKind::nf4, SchemeKind::fp8_e4m3}) {
    for (int bits : {2, 4}) {
      const int b = s == SchemeKind::nf4 ? 4 : s == SchemeKind::fp8_e4m3 ? 8 : bits;
      const auto mm = quant::fake_quantize(w.view(), config(s, GranularityKind::per_group, 32, b));
      const auto ms = quant::fake_quantize(w.view(), config(s, GranularityKind::per_group, 32, b, CalibratorKind::mse_clip));
      for (std::size_t r = 0; r < w.rows(); ++r) {
        for (std::size_t c0 = 0; c0 < 128; c0 += 32) {
          const double e_mm = group_err(w, mm, r, c0, c0 + 32), e_ms = group_err(w, ms, r, c0, c0 + 32);
          INFO(scheme_name(s) << " bits " << b << " row " << r << " group " << c0 / 32);
          REQUIRE(e_ms <= e_mm);
          total_mm += e_mm;
          total_mse += e_ms;
        }
      }
    }
  }
  REQUIRE(total_mse < 0.9 * total_mm);
}

TEST_CASE("Percentile clips at the nearest-rank percentile of |x|", "[quant][calib]") {
  Matrix<float> w(1, 100);
  for (std::size_t c = 0; c < 100; ++c) w(0, c) = (c % 2 ? -1.0f : 1.0f) * static_cast<float>(c + 1) * 0.01f;
  QuantOptions o;
  o.percentile = 90.0f;
  const Quantizer<Symmetric, PerChannel, 8, Percentile> qz(o);
  const QuantizedTensor q = qz.quantize(w.view());
  REQUIRE(q.params().scales[0] == 0.90f / 127.0f);  // the 90th smallest |x| of 0.01..1.00
  const Matrix<float> h = qz.dequantize(q);
  REQUIRE(h(0, 99) == -127.0f * q.params().scales[0]);  // −1.00 clamps to −qmax
  REQUIRE(h(0, 98) == 127.0f * q.params().scales[0]);
  QuantOptions a;
  a.percentile = 90.0f;
  const auto qa = Quantizer<Asymmetric, PerChannel, 8, Percentile>(a).fit(w.view());
  REQUIRE(qa.scales[0] == (0.90f - -0.90f) / 255.0f);
}

TEST_CASE("tail groups are explicit and use only their own elements", "[quant]") {
  const Matrix<float> w = make(3, 172, 41);
  QuantOptions o;
  o.tail_group = true;
  const Quantizer<Symmetric, PerGroup<32>, 4> qz(o);
  const QuantParams p = qz.fit(w.view());
  REQUIRE(p.groups_per_row == 6);
  for (std::size_t r = 0; r < 3; ++r) {
    float a = 0;
    for (std::size_t c = 160; c < 172; ++c) a = std::max(a, std::fabs(w(r, c)));
    REQUIRE(p.scales[r * 6 + 5] == std::max(a, 1e-5f) / 7.0f);
  }
  REQUIRE_THROWS_AS((Quantizer<Symmetric, PerGroup<32>, 4>{}.fit(w.view())), sparq::error);
}

TEST_CASE("determinism, fit+quantize, PerToken = PerChannel, typed = run-time", "[quant]") {
  const Matrix<float> w = make(7, 256, 51);
  const Quantizer<Asymmetric, PerGroup<64>, 4, MseClip> qz;
  const QuantizedTensor a = qz.quantize(w.view()), b = qz.quantize(w.view());
  REQUIRE(a.code_storage() == b.code_storage());
  REQUIRE(a.params().scales == b.params().scales);
  REQUIRE(a.params().zeros == b.params().zeros);
  const QuantizedTensor c = qz.quantize(w.view(), qz.fit(w.view()));
  REQUIRE(a.code_storage() == c.code_storage());
  const QuantizedTensor d = quant::quantize(w.view(), qz.config());
  REQUIRE(a.code_storage() == d.code_storage());

  const auto t = Quantizer<Symmetric, PerToken, 8>{}.quantize(w.view());
  const auto ch = Quantizer<Symmetric, PerChannel, 8>{}.quantize(w.view());
  static_assert(Quantizer<Symmetric, PerToken, 8>::dynamic);
  REQUIRE(t.code_storage() == ch.code_storage());
  REQUIRE(t.params().scales == ch.params().scales);

  // Dequantize into a strided caller buffer.
  std::vector<float> buf(7 * 300, -99.0f);
  qz.dequantize(a, MatrixView<float>(buf.data(), 7, 256, 300));
  const Matrix<float> h = qz.dequantize(a);
  for (std::size_t r = 0; r < 7; ++r) {
    REQUIRE(std::memcmp(buf.data() + r * 300, h.row(r), 256 * sizeof(float)) == 0);
    REQUIRE(buf[r * 300 + 256] == -99.0f);
  }
}

TEST_CASE("bits/weight counts scales and zero points", "[quant]") {
  const Matrix<float> w = make(8, 128, 61);
  const auto q4 = Quantizer<Asymmetric, PerGroup<32>, 4>{}.quantize(w.view());
  REQUIRE(q4.byte_size() == 8 * 64 + 8 * 4 * 4 + 8 * 4);
  REQUIRE(q4.bits_per_weight() == Approx(4.0 + 32.0 / 32 + 8.0 / 32));
  const auto q3 = Quantizer<Symmetric, PerChannel, 3>{}.quantize(w.view());
  REQUIRE(q3.byte_size() == 8 * 48 + 8 * 4);
}

TEST_CASE("real weights: stories260K quantization error within stated tolerances", "[quant][real]") {
  const std::string path = sparq_test::data_path("models/stories260K.bin");
  if (path.empty()) return;
  const auto m = io::read_llama2c(path);
  QuantOptions tail;
  tail.tail_group = true;
  struct Row {
    QuantConfig cfg;
    double max_rel_rms;
  };
  // Relative RMS error ||Ŵ − W|| / ||W|| over all linears; a b-bit uniform grid gives roughly
  // 2^-b·(range/σ)/√12, so int8 ≈ 1 %, int4 ≈ 10 %.
  const Row rows[] = {
      {config(SchemeKind::symmetric, GranularityKind::per_channel, 0, 8), 0.012},
      {config(SchemeKind::symmetric, GranularityKind::per_group, 32, 4, CalibratorKind::minmax, tail), 0.12},
      {config(SchemeKind::asymmetric, GranularityKind::per_group, 32, 4, CalibratorKind::minmax, tail), 0.10},
      {config(SchemeKind::nf4, GranularityKind::per_group, 64, 4, CalibratorKind::minmax, tail), 0.12},
      {config(SchemeKind::fp8_e4m3, GranularityKind::per_channel, 0, 8), 0.04},
  };
  for (const Row& row : rows) {
    double sq = 0, ref = 0;
    for (const auto& b : m.blocks) {
      for (auto lin : model::all_linears) {
        const auto& wm = b.linear(lin);
        const Matrix<float> h = quant::fake_quantize(wm.view(), row.cfg);
        for (std::size_t i = 0; i < wm.size(); ++i) {
          const double e = double(h.data()[i]) - wm.data()[i];
          sq += e * e;
          ref += double(wm.data()[i]) * wm.data()[i];
        }
      }
    }
    const double rel = std::sqrt(sq / ref);
    INFO(describe(row.cfg) << ": relative RMS error " << rel);
    REQUIRE(rel < row.max_rel_rms);
    REQUIRE(rel > row.max_rel_rms / 20);  // it really quantized
  }
}
