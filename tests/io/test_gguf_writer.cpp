// GGUF writer and ggml block codecs: Q8_0/Q4_0 layouts against their definitions, error bounds,
// and write -> read round trips of the real stories260K weights in F32, F16, Q8_0 and Q4_0.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "sparq/io/ggml_blocks.hpp"
#include "sparq/io/gguf.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/gguf_writer.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::io;

TEST_CASE("Q4_0 block layout: scale from the signed extreme, element j low nibble, j+16 high", "[io][ggml]") {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);  // extreme is -16 at j = 0
  BlockQ4_0 b;
  quantize_block_q4_0(x, b);
  // d = max / -8 = -16 / -8 = 2; q = trunc(x / 2 + 8.5) = trunc(j / 2 + 0.5), clamped to 15.
  CHECK(b.d == float_to_fp16(2.0f));
  for (int j = 0; j < 16; ++j) {
    const int lo = std::min(15, static_cast<int>(std::floor(j / 2.0 + 0.5)));
    const int hi = std::min(15, static_cast<int>(std::floor((j + 16) / 2.0 + 0.5)));
    INFO("byte " << j);
    CHECK((b.qs[j] & 0x0f) == lo);
    CHECK((b.qs[j] >> 4) == hi);
  }
  float y[32];
  dequantize_block_q4_0(b, y);
  CHECK(y[0] == -16.0f);   // the extreme is exact (q = 0)
  CHECK(y[31] == 14.0f);   // 15 clamped: 2 * (15 - 8)
  CHECK(y[16] == 0.0f);    // x = 0 -> q = 8
  // Positive extreme: d < 0, the extreme still maps to code 0.
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) * 0.25f;  // max 7.75 at j = 31
  quantize_block_q4_0(x, b);
  CHECK(fp16_to_float(b.d) == Approx(-7.75f / 8).epsilon(1e-3));
  CHECK((b.qs[15] >> 4) == 0);
  // All-zero block: d = 0, every code 8, dequantizes to zeros.
  for (float& v : x) v = 0.0f;
  quantize_block_q4_0(x, b);
  CHECK(fp16_to_float(b.d) == 0.0f);  // -0.0 (0 / -8), as ggml stores it
  for (int j = 0; j < 16; ++j) CHECK(b.qs[j] == 0x88);
}

TEST_CASE("Q8_0 block: d = amax/127, q = round(x/d), ties away from zero", "[io][ggml]") {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) - 15.5f;  // amax 15.5
  x[5] = -127.0f;                                                     // amax 127 -> d = 1
  x[6] = 2.5f;                                                        // tie: roundf -> 3
  x[7] = -3.5f;                                                       // tie: roundf -> -4
  BlockQ8_0 b;
  quantize_block_q8_0(x, b);
  CHECK(fp16_to_float(b.d) == 1.0f);
  CHECK(b.qs[5] == -127);
  CHECK(b.qs[6] == 3);
  CHECK(b.qs[7] == -4);
  CHECK(b.qs[0] == -16);  // -15.5 -> -16
  CHECK(b.qs[31] == 16);  // 15.5 -> 16
}

TEST_CASE("Q8_0 and Q4_0 dequantization error is within half a step", "[io][ggml]") {
  const std::size_t n = 32 * 512;
  auto x = sparq_test::randn(n, 77, 0.05f);
  for (std::size_t i = 0; i < n; i += 97) x[i] *= 40.0f;  // outliers make some blocks coarse
  std::vector<char> q8(ggml_nbytes(GgmlType::Q8_0, n)), q4(ggml_nbytes(GgmlType::Q4_0, n));
  ggml_encode(GgmlType::Q8_0, x.data(), n, q8.data());
  ggml_encode(GgmlType::Q4_0, x.data(), n, q4.data());
  std::vector<float> y8(n), y4(n);
  ggml_decode(GgmlType::Q8_0, q8.data(), n, y8.data());
  ggml_decode(GgmlType::Q4_0, q4.data(), n, y4.data());
  std::size_t in_range = 0;
  for (std::size_t blk = 0; blk < n / 32; ++blk) {
    const float* xb = x.data() + blk * 32;
    float amax = 0, m = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), m = xb[j];
    BlockQ8_0 b8;
    std::memcpy(&b8, q8.data() + blk * 34, 34);
    const float d8 = amax / 127, d8h = fp16_to_float(b8.d);
    BlockQ4_0 b4;
    std::memcpy(&b4, q4.data() + blk * 18, 18);
    const float d4 = m / -8, d4h = fp16_to_float(b4.d);
    for (int j = 0; j < 32; ++j) {
      const std::size_t i = blk * 32 + j;
      const int c8 = b8.qs[j];
      REQUIRE(std::abs(c8) <= 127);
      const double bound8 = 0.5 * d8 + std::abs(c8) * std::fabs(d8 - d8h) + 1e-6 * amax;
      REQUIRE(std::fabs(x[i] - y8[i]) <= bound8);
      const int c4 = j < 16 ? (b4.qs[j] & 15) : (b4.qs[j - 16] >> 4);
      if (xb[j] / d4 + 8.0f <= 15.5f) {  // inside the representable range
        ++in_range;
        const double bound4 = 0.5 * std::fabs(d4) + std::abs(c4 - 8) * std::fabs(d4 - d4h) + 1e-6 * amax;
        REQUIRE(std::fabs(x[i] - y4[i]) <= bound4);
      } else {
        REQUIRE(c4 == 15);  // clamped end
      }
    }
  }
  CHECK(in_range > n * 9 / 10);
}

TEST_CASE("ggml codecs reject bad lengths and non-finite input", "[io][ggml][errors]") {
  std::vector<float> x(33, 1.0f);
  std::vector<char> out(100);
  CHECK_THROWS_WITH(ggml_encode(GgmlType::Q4_0, x.data(), 33, out.data()), Catch::Contains("multiple of the block size 32"));
  x[3] = NAN;
  CHECK_THROWS_WITH(ggml_encode(GgmlType::F16, x.data(), 32, out.data()), Catch::Contains("non-finite"));
}

namespace {
bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * 4) == 0; }
std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("sparq_formats_" + name)).string();
}
}  // namespace

TEST_CASE("GGUF writer: stories260K F32 round trip is exact, vocabulary included", "[io][gguf][real]") {
  const auto gpath = sparq_test::data_path("models/stories260K.gguf");
  if (gpath.empty()) return;
  const auto orig = read_gguf_llama(gpath);
  const auto path = tmp_path("f32.gguf");
  write_gguf_llama(path, orig.weights, &orig.vocab);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp-sparq"));
  const auto back = read_gguf_llama(path);
  std::filesystem::remove(path);
  const auto& a = orig.weights;
  const auto& b = back.weights;
  CHECK(b.config.seq_len == a.config.seq_len);
  CHECK(b.config.rms_eps == a.config.rms_eps);
  CHECK(b.config.rope_theta == a.config.rope_theta);
  CHECK(b.config.n_kv_heads == a.config.n_kv_heads);
  CHECK(b.config.shared_classifier);
  REQUIRE(b.token_embedding.storage() == a.token_embedding.storage());
  for (std::size_t l = 0; l < a.blocks.size(); ++l)
    for (auto lin : model::all_linears)
      REQUIRE(same_bits(a.blocks[l].linear(lin).data(), b.blocks[l].linear(lin).data(), a.blocks[l].linear(lin).size()));
  CHECK(back.vocab.tokens == orig.vocab.tokens);
  CHECK(back.vocab.scores == orig.vocab.scores);
  CHECK(back.vocab.token_types == orig.vocab.token_types);
  CHECK(back.vocab.bos_id == 1);
  CHECK(back.vocab.eos_id == 2);
  // Deterministic: serialising twice gives the same bytes.
  CHECK(gguf_llama_writer(a, &orig.vocab).serialize() == gguf_llama_writer(a, &orig.vocab).serialize());
}

TEST_CASE("GGUF writer: Q8_0 / Q4_0 / F16 tensors keep their codes through a round trip", "[io][gguf][real]") {
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  if (bpath.empty()) return;
  const auto w = read_llama2c(bpath);
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F16, GgmlType::BF16}) {
    INFO("type " << ggml_type_name(t));
    GgufLlamaWriteOptions opt;
    opt.linear_type = t;
    opt.embedding_type = t;
    const auto bytes = gguf_llama_writer(w, nullptr, opt).serialize();
    const auto f = parse_gguf(bytes.data(), bytes.size());
    // Codes in the file are exactly what the encoder produces for the original floats.
    for (std::size_t l = 0; l < w.blocks.size(); ++l) {
      for (auto lin : model::all_linears) {
        const auto& m = w.blocks[l].linear(lin);
        const std::string name = "blk." + std::to_string(l) + "." + sparq::io::detail::gguf_block_tensor(lin) + ".weight";
        const auto& ti = f.tensor(name);
        const GgmlType expect = m.cols() % ggml_block_elems(t) == 0 ? t : GgmlType::F32;  // ffn_down: 172
        REQUIRE(ti.type == expect);
        std::vector<char> codes(ggml_nbytes(expect, m.size()));
        ggml_encode(expect, m.data(), m.size(), codes.data());
        REQUIRE(std::memcmp(f.tensor_data(ti), codes.data(), codes.size()) == 0);
      }
    }
    // Reading gives the dequantized values of those codes (re-encoding them is idempotent for
    // the float types; for Q8_0/Q4_0 the dequantized weights are within the block bound).
    const auto back = gguf_to_llama(f);
    const auto& m0 = w.blocks[2].wq;
    const auto& r0 = back.weights.blocks[2].wq;
    double max_err = 0, max_abs = 0;
    for (std::size_t i = 0; i < m0.size(); ++i) {
      max_err = std::max(max_err, double(std::fabs(m0.data()[i] - r0.data()[i])));
      max_abs = std::max(max_abs, double(std::fabs(m0.data()[i])));
    }
    const double rel = t == GgmlType::Q4_0 ? 1.0 / 16 + 0.01 : t == GgmlType::Q8_0 ? 1.0 / 254 + 0.002 : 1.0 / 256;
    CHECK(max_err <= rel * max_abs);
    CHECK(max_err > 0);
    // ffn_down (row length 172) fell back to F32 for the block types: exact.
    if (ggml_block_elems(t) > 1) REQUIRE(back.weights.blocks[4].w2.storage() == w.blocks[4].w2.storage());
    // Norms are always F32: exact.
    REQUIRE(back.weights.blocks[1].rms_ffn == w.blocks[1].rms_ffn);
    // Writing the read-back weights again reproduces the same codes (dequant -> quant is stable
    // for Q8_0 and the float types; checked on the bytes).
    if (t != GgmlType::Q4_0) {
      const auto again = gguf_llama_writer(back.weights, nullptr, opt).serialize();
      CHECK(again == bytes);
    }
  }
}

TEST_CASE("GGUF writer validates its input", "[io][gguf][errors]") {
  GgufWriter w;
  std::vector<float> x(64, 0.5f);
  CHECK_THROWS_WITH(w.add_tensor("t", {33}, GgmlType::Q8_0, x.data()), Catch::Contains("row length 33"));
  CHECK_THROWS_WITH(w.add_tensor("t", {1, 1, 1, 1, 1}, GgmlType::F32, x.data()), Catch::Contains("5 dims"));
  CHECK_THROWS_WITH(w.add_tensor(std::string(64, 'n'), {32}, GgmlType::F32, x.data()), Catch::Contains("1..63 bytes"));
  CHECK_THROWS_WITH(w.add_tensor("t", {0}, GgmlType::F32, x.data()), Catch::Contains("zero dim"));
  CHECK_THROWS_WITH(w.set("general.alignment", std::uint32_t{24}), Catch::Contains("power of two"));
  CHECK_THROWS_WITH(w.add_tensor_bytes("t", {32}, GgmlType::Q4_0, std::vector<char>(17)), Catch::Contains("need 18"));
  x[9] = INFINITY;
  CHECK_THROWS_WITH(w.add_tensor("t", {64}, GgmlType::F32, x.data()), Catch::Contains("'t'") && Catch::Contains("non-finite"));
  // A failed write leaves no file under the final name.
  GgufWriter ok;
  ok.set("a", std::uint8_t{1});
  CHECK_THROWS_AS(ok.write("/nonexistent-dir/x.gguf"), sparq::error);
  CHECK_FALSE(std::filesystem::exists("/nonexistent-dir/x.gguf"));
}

TEST_CASE("Q4_0 codes at near-ties equal the unfused reference (x*id rounded, then + 8.5)", "[io][ggml]") {
  // Reference with explicit roundings: a product of two floats is exact in double, and the cast
  // to float rounds it exactly as an IEEE float multiply; same for the float add. The test binary is built with -mfma, so a fused a*b+c in the encoder would differ.
  auto ref_code = [](float x, float id) {
    // volatile: otherwise the compiler folds the casts back into float ops and fuses them.
    const volatile float p = static_cast<float>(static_cast<double>(x) * static_cast<double>(id));
    const float v = static_cast<float>(static_cast<double>(p) + 8.5);
    return std::min(15, static_cast<int>(v));
  };
  std::size_t checked = 0;
  for (float m : {-8.8f, 9.3f, -0.0137f, 123.456f, -1.1f}) {
    const float d = m / -8.0f;
    const float id = 1.0f / d;
    std::vector<float> vals;
    for (int k = 1; k <= 15; ++k) {
      const float t = static_cast<float>((k - 8.5) / static_cast<double>(id));
      float lo = t, hi = t;
      vals.push_back(t);
      for (int u = 0; u < 4; ++u) {
        lo = std::nextafter(lo, -INFINITY);
        hi = std::nextafter(hi, INFINITY);
        vals.push_back(lo);
        vals.push_back(hi);
      }
    }
    for (std::size_t start = 0; start < vals.size(); start += 31) {
      float x[32];
      x[0] = m;  // the block extreme, so d and id are the ones computed above
      for (int j = 1; j < 32; ++j) {
        const float v = vals[(start + static_cast<std::size_t>(j)) % vals.size()];
        x[j] = std::fabs(v) < std::fabs(m) ? v : 0.0f;
      }
      BlockQ4_0 b;
      quantize_block_q4_0(x, b);
      for (int j = 0; j < 32; ++j) {
        const int c = j < 16 ? (b.qs[j] & 15) : (b.qs[j - 16] >> 4);
        INFO("m " << m << " x " << x[j]);
        REQUIRE(c == ref_code(x[j], id));
        ++checked;
      }
    }
  }
  CHECK(checked > 500);
}
