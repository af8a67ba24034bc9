// GGUF reader on the real stories260K.gguf: bit-identity with the llama2.c checkpoint, metadata of
// every type, vocabulary, and hostile inputs (truncations, bit flips, forged fields).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sparq/io/gguf.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/gguf_writer.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::io;

namespace {

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}
bool same_bits(const Matrix<float>& a, const Matrix<float>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && same_bits(a.storage(), b.storage());
}

}  // namespace

TEST_CASE("GGUF stories260K is bit-identical to the llama2.c checkpoint", "[io][gguf][real]") {
  const auto gpath = sparq_test::data_path("models/stories260K.gguf");
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  if (gpath.empty() || bpath.empty()) return;
  const auto g = read_gguf_llama(gpath);
  const auto b = read_llama2c(bpath);
  const auto& gc = g.weights.config;
  const auto& bc = b.config;
  CHECK(gc.dim == bc.dim);
  CHECK(gc.hidden_dim == bc.hidden_dim);
  CHECK(gc.n_layers == bc.n_layers);
  CHECK(gc.n_heads == bc.n_heads);
  CHECK(gc.n_kv_heads == bc.n_kv_heads);
  CHECK(gc.vocab_size == bc.vocab_size);
  // output.weight is stored but bit-identical to token_embd.weight: read as a shared classifier.
  CHECK(gc.shared_classifier == bc.shared_classifier);
  CHECK(gc.rms_eps == bc.rms_eps);
  CHECK(gc.rope_theta == bc.rope_theta);
  // The one difference: llama.cpp's llama2.c converter stores context_length 2048, while the
  // llama2.c header says seq_len 512. sparq reports what each file says.
  CHECK(bc.seq_len == 512);
  CHECK(gc.seq_len == 2048);

  const auto& gw = g.weights;
  REQUIRE(same_bits(gw.token_embedding, b.token_embedding));
  REQUIRE(same_bits(gw.rms_final, b.rms_final));
  REQUIRE(gw.blocks.size() == b.blocks.size());
  for (std::size_t l = 0; l < b.blocks.size(); ++l) {
    INFO("block " << l);
    REQUIRE(same_bits(gw.blocks[l].rms_att, b.blocks[l].rms_att));
    REQUIRE(same_bits(gw.blocks[l].rms_ffn, b.blocks[l].rms_ffn));
    for (auto lin : model::all_linears) {
      INFO(model::linear_name(lin));
      // wq/wk included: the GGUF rows are NOT permuted relative to llama2.c (see gguf_llama.hpp).
      REQUIRE(same_bits(gw.blocks[l].linear(lin), b.blocks[l].linear(lin)));
    }
  }

  // Vocabulary: 512 tokens, ids as documented, scores equal to tok512.bin's.
  const auto& v = g.vocab;
  REQUIRE(v.tokens.size() == 512);
  CHECK(v.model == "llama");
  CHECK(v.tokens[0] == "<unk>");
  CHECK(v.tokens[1] == "<s>");
  CHECK(v.tokens[2] == "</s>");
  CHECK(v.tokens[3] == "<0x00>");
  CHECK(v.bos_id == 1);
  CHECK(v.eos_id == 2);
  CHECK(v.unk_id == 0);
  REQUIRE(v.token_types.size() == 512);
  CHECK(v.token_types[0] == 2);
  CHECK(v.token_types[1] == 3);
  CHECK(v.token_types[3] == 6);
  const auto tpath = sparq_test::data_path("models/tok512.bin");
  if (!tpath.empty()) {
    const auto tok = sparq::io::detail::read_file(tpath);
    ByteCursor c(tok.data(), tok.size(), "tok512");
    (void)c.read<std::uint32_t>("max_len");
    const auto pieces = v.llama2c_pieces();
    std::size_t same_piece = 0, same_score = 0;
    for (std::size_t i = 0; i < 512; ++i) {
      const float score = c.read<float>("score");
      const auto len = c.read<std::int32_t>("len");
      const std::string piece = c.read_bytes_as_string(static_cast<std::uint64_t>(len), 64, "piece");
      same_score += (score == v.scores[i]);
      same_piece += (piece == pieces[i]);
    }
    CHECK(same_score == 512);
    // After mapping "▁" to " ", every piece equals tok512.bin's except the two specials, which
    // llama2.c spells "\n<s>\n" and "\n</s>\n".
    CHECK(same_piece == 510);
    CHECK(pieces[1] == "<s>");
    for (const auto& piece : pieces) CHECK(piece.find("\xE2\x96\x81") == std::string::npos);
  }
  const auto sp = GgufVocab::sentencepiece_to_text("\xE2\x96\x81the\xE2\x96\x81" "cat");
  CHECK(sp == " the cat");
  CHECK(GgufVocab::text_to_sentencepiece(sp) == "\xE2\x96\x81the\xE2\x96\x81" "cat");
}

TEST_CASE("GGUF raw file: header, metadata types, tensor table", "[io][gguf][real]") {
  const auto gpath = sparq_test::data_path("models/stories260K.gguf");
  if (gpath.empty()) return;
  const auto f = read_gguf(gpath);
  CHECK(f.bytes.mapped());  // the tensors are read from a mapping of the file, not a heap copy
  CHECK(f.bytes.size() == std::filesystem::file_size(gpath));
  CHECK(f.version == 3);
  CHECK(f.alignment == 32);
  CHECK(f.metadata.size() == 19);
  CHECK(f.tensors.size() == 48);
  CHECK(f.data_offset % 32 == 0);
  CHECK(f.get_uint("llama.rope.dimension_count") == 8);
  CHECK(f.find_float("llama.attention.layer_norm_rms_epsilon").value() == Approx(1e-5));
  // Wrong-type accessors name the key and the type.
  CHECK_THROWS_WITH(f.get_uint("general.name"), Catch::Contains("general.name") && Catch::Contains("string"));
  CHECK_THROWS_WITH(f.get_uint("no.such.key"), Catch::Contains("missing metadata key 'no.such.key'"));
  const auto& q = f.tensor("blk.3.attn_k.weight");
  CHECK(q.dims == std::vector<std::uint64_t>{64, 32});
  CHECK(q.type == GgmlType::F32);
  CHECK(q.n_bytes == 64 * 32 * 4);
  const auto* seps = f.find("tokenizer.ggml.seperator_token_id");
  REQUIRE(seps != nullptr);
  CHECK(std::get<std::uint32_t>(*seps) == 0xffffffffu);
}

TEST_CASE("GGUF metadata of every value type round-trips through the writer", "[io][gguf]") {
  GgufWriter w;
  w.set("t.u8", std::uint8_t{200});
  w.set("t.i8", std::int8_t{-100});
  w.set("t.u16", std::uint16_t{60000});
  w.set("t.i16", std::int16_t{-30000});
  w.set("t.u32", std::uint32_t{4000000000u});
  w.set("t.i32", std::int32_t{-2000000000});
  w.set("t.f32", 1.5f);
  w.set("t.bool", true);
  w.set("t.string", std::string("h\xC3\xA9llo"));
  w.set("t.u64", std::uint64_t{1} << 60);
  w.set("t.i64", -(std::int64_t{1} << 60));
  w.set("t.f64", 0.1);
  w.set("t.arr_u8", GgufArray::of(GgufType::u8, std::vector<std::uint8_t>{1, 2, 255}));
  w.set("t.arr_i64", GgufArray::of(GgufType::i64, std::vector<std::int64_t>{-5, 7}));
  w.set("t.arr_f64", GgufArray::of(GgufType::f64, std::vector<double>{0.25, -1e300}));
  w.set("t.arr_bool", GgufArray::of(GgufType::boolean, std::vector<std::uint8_t>{1, 0, 1}));
  w.set("t.arr_str", GgufArray::of_strings({"a", "", "ccc"}));
  GgufArray nested;
  nested.elem_type = GgufType::array;
  nested.arrays.push_back(GgufArray::of_strings({"x", "yy"}));
  nested.arrays.push_back(GgufArray::of_strings({}));
  nested.arrays.push_back(GgufArray::of(GgufType::i16, std::vector<std::int16_t>{-3}));
  w.set("t.nested", nested);
  w.set("t.empty", GgufArray::of(GgufType::f32, std::vector<float>{}));
  const auto bytes = w.serialize();
  const auto f = parse_gguf(bytes.data(), bytes.size());
  REQUIRE(f.metadata.size() == 19);
  CHECK(std::get<std::uint8_t>(*f.find("t.u8")) == 200);
  CHECK(std::get<std::int8_t>(*f.find("t.i8")) == -100);
  CHECK(std::get<std::uint16_t>(*f.find("t.u16")) == 60000);
  CHECK(std::get<std::int16_t>(*f.find("t.i16")) == -30000);
  CHECK(std::get<std::uint32_t>(*f.find("t.u32")) == 4000000000u);
  CHECK(std::get<std::int32_t>(*f.find("t.i32")) == -2000000000);
  CHECK(std::get<float>(*f.find("t.f32")) == 1.5f);
  CHECK(std::get<bool>(*f.find("t.bool")) == true);
  CHECK(*f.find_string("t.string") == "h\xC3\xA9llo");
  CHECK(std::get<std::uint64_t>(*f.find("t.u64")) == (std::uint64_t{1} << 60));
  CHECK(std::get<std::int64_t>(*f.find("t.i64")) == -(std::int64_t{1} << 60));
  CHECK(std::get<double>(*f.find("t.f64")) == 0.1);
  CHECK(f.find_array("t.arr_u8")->number(2) == 255);
  CHECK(f.find_array("t.arr_i64")->number(0) == -5);
  CHECK(f.find_array("t.arr_f64")->number(1) == -1e300);
  CHECK(f.find_array("t.arr_bool")->size() == 3);
  CHECK(f.find_array("t.arr_str")->strings == std::vector<std::string>{"a", "", "ccc"});
  const auto* n = f.find_array("t.nested");
  REQUIRE(n->arrays.size() == 3);
  CHECK(n->arrays[0].strings == std::vector<std::string>{"x", "yy"});
  CHECK(n->arrays[1].size() == 0);
  CHECK(n->arrays[2].number(0) == -3);
  CHECK(f.find_array("t.empty")->size() == 0);
  CHECK(f.get_uint("t.u16") == 60000);
  CHECK_THROWS_WITH(f.get_uint("t.i8"), Catch::Contains("'t.i8' = -100"));
}

TEST_CASE("GGUF integer accessor rejects negative values", "[io][gguf][errors]") {
  GgufWriter w;
  w.set("neg", std::int32_t{-1});
  const auto b = w.serialize();
  const auto f = parse_gguf(b.data(), b.size());
  CHECK_THROWS_WITH(f.get_uint("neg"), Catch::Contains("'neg' = -1"));
}

namespace {
// A small synthetic GGUF used to forge bad fields at known offsets.
std::vector<char> small_gguf(GgmlType type = GgmlType::F32) {
  GgufWriter w;
  w.set("general.architecture", std::string("test"));
  const auto x = sparq_test::randn(64, 5);
  w.add_tensor("a", {32, 2}, type, x.data());
  w.add_tensor("b", {32}, GgmlType::F32, x.data());
  return w.serialize();
}
// Offset of tensor info i's fields in small_gguf(): header 24, one kv.
std::size_t info_offset(const std::vector<char>& bytes, std::size_t which) {
  std::size_t p = 24;
  std::uint64_t n;
  std::memcpy(&n, bytes.data() + p, 8);
  p += 8 + n + 4;
  std::memcpy(&n, bytes.data() + p, 8);
  p += 8 + n;  // string value
  for (std::size_t i = 0; i < which; ++i) {
    std::memcpy(&n, bytes.data() + p, 8);
    p += 8 + n;
    std::uint32_t nd;
    std::memcpy(&nd, bytes.data() + p, 4);
    p += 4 + 8 * nd + 4 + 8;
  }
  return p;
}
template <class T>
void poke(std::vector<char>& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
}  // namespace

TEST_CASE("GGUF reader rejects forged fields with a message naming them", "[io][gguf][errors]") {
  const auto good = small_gguf();
  REQUIRE_NOTHROW(parse_gguf(good.data(), good.size()));
  const std::size_t a = info_offset(good, 0);   // tensor "a": name(8+1) n_dims(4) dims(16) type(4) offset(8)
  const std::size_t bi = info_offset(good, 1);  // tensor "b"
  auto bad = good;
  poke(bad, 0, std::uint32_t{0x46554748});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("bad magic"));
  bad = good;
  poke(bad, 4, std::uint32_t{1});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("version 1"));
  bad = good;
  poke(bad, 8, std::uint64_t{1} << 40);
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("tensor_count"));
  bad = good;
  poke(bad, 16, ~std::uint64_t{0});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("kv_count"));
  bad = good;
  poke(bad, 24, ~std::uint64_t{0});  // key length
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("metadata key"));
  bad = good;
  poke(bad, a + 9, std::uint32_t{5});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("n_dims = 5"));
  bad = good;
  poke(bad, a + 9, std::uint32_t{0});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("n_dims = 0"));
  bad = good;
  poke(bad, a + 13, std::uint64_t{0});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("dim 0 = 0"));
  bad = good;
  poke(bad, a + 13, std::uint64_t{1} << 61);
  poke(bad, a + 21, std::uint64_t{1} << 61);
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("overflows"));
  bad = good;
  poke(bad, a + 29, std::uint32_t{16});  // IQ2_XXS: not supported
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("ggml type 16"));
  bad = good;
  poke(bad, a + 29, std::uint32_t{8});  // Q8_0 with row length 32 is fine in size terms
  CHECK_NOTHROW(parse_gguf(bad.data(), bad.size()));
  bad = good;
  poke(bad, a + 13, std::uint64_t{31});  // row length 31 as Q8_0: not a multiple of the block
  poke(bad, a + 29, std::uint32_t{8});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("multiple of 32"));
  bad = good;
  poke(bad, a + 33, std::uint64_t{8});
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("not a multiple of the alignment"));
  bad = good;
  poke(bad, bi + 9 + 4 + 8 + 4, std::uint64_t{0});  // b placed on top of a
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("overlaps"));
  bad = good;
  poke(bad, bi + 9 + 4 + 8 + 4, std::uint64_t{1} << 40);
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("outside the data section"));
  bad = good;
  poke(bad, bi + 9 + 4 + 8 + 4, ~std::uint64_t{31});
  CHECK_THROWS_AS(parse_gguf(bad.data(), bad.size()), sparq::error);
  bad = good;
  bad[bi + 8] = 'a';  // duplicate tensor name
  CHECK_THROWS_WITH(parse_gguf(bad.data(), bad.size()), Catch::Contains("duplicate tensor name 'a'"));
}

TEST_CASE("GGUF reader rejects bad general.alignment and bool values", "[io][gguf][errors]") {
  {
    GgufWriter w;
    w.set("general.alignment", std::uint32_t{64});
    const auto x = sparq_test::randn(32, 1);
    w.add_tensor("t", {32}, GgmlType::F32, x.data());
    auto b = w.serialize();
    const auto f = parse_gguf(b.data(), b.size());
    CHECK(f.alignment == 64);
    CHECK(f.data_offset % 64 == 0);
    // alignment value 48 (not a power of two)
    const std::size_t at = 24 + 8 + std::string("general.alignment").size() + 4;
    poke(b, at, std::uint32_t{48});
    CHECK_THROWS_WITH(parse_gguf(b.data(), b.size()), Catch::Contains("general.alignment = 48"));
    poke(b, at - 4, std::uint32_t{5});  // type i32
    CHECK_THROWS_WITH(parse_gguf(b.data(), b.size()), Catch::Contains("expected u32"));
  }
  {
    GgufWriter w;
    w.set("flag", false);
    auto b = w.serialize();
    b[24 + 8 + 4 + 4] = 2;
    CHECK_THROWS_WITH(parse_gguf(b.data(), b.size()), Catch::Contains("bool value 2"));
  }
  {
    // Arrays nested deeper than the limit.
    GgufArray a = GgufArray::of_strings({"x"});
    for (int i = 0; i < 7; ++i) {
      GgufArray outer;
      outer.elem_type = GgufType::array;
      outer.arrays.push_back(a);
      a = outer;
    }
    GgufWriter w;
    w.set("deep", a);  // 8 levels: writer refuses
    CHECK_THROWS_WITH(w.serialize(), Catch::Contains("nest"));
  }
}

TEST_CASE("GGUF reader survives truncation and bit flips of the real file", "[io][gguf][errors][real]") {
  const auto gpath = sparq_test::data_path("models/stories260K.gguf");
  if (gpath.empty()) return;
  const auto orig = sparq::io::detail::read_file(gpath);
  const auto f0 = parse_gguf(orig.data(), orig.size());
  const std::size_t header_end = static_cast<std::size_t>(f0.data_offset);
  // Truncations: every cut before the data section and a spread of cuts inside it must throw.
  std::size_t cuts = 0;
  for (std::size_t cut = 0; cut < orig.size(); cut += (cut < header_end ? 97 : 40961)) {
    INFO("cut at " << cut);
    REQUIRE_THROWS_AS(parse_gguf(orig.data(), cut), sparq::error);
    ++cuts;
  }
  REQUIRE_THROWS_AS(parse_gguf(orig.data(), orig.size() - 1), sparq::error);
  CHECK(cuts > 150);
  // Bit flips in the header/metadata/tensor-info region: either a clean sparq::error or a file
  // that is structurally valid (every tensor in range). Under ASan this also proves no overread.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<std::size_t> pos(0, header_end - 1);
  std::uniform_int_distribution<int> bit(0, 7);
  std::size_t threw = 0, parsed = 0;
  for (int trial = 0; trial < 600; ++trial) {
    auto copy = orig;
    const int flips = 1 + trial % 3;
    for (int k = 0; k < flips; ++k) copy[pos(rng)] ^= static_cast<char>(1 << bit(rng));
    try {
      const auto f = parse_gguf(copy.data(), copy.size());
      for (const auto& t : f.tensors) {
        REQUIRE(f.data_offset + t.offset + t.n_bytes <= f.bytes.size());
      }
      try {
        (void)gguf_to_llama(f);
      } catch (const sparq::error&) {
      }
      ++parsed;
    } catch (const sparq::error&) {
      ++threw;
    }
  }
  CHECK(threw + parsed == 600);
  CHECK(threw > 0);
}

TEST_CASE("GGUF Llama mapping rejects missing tensors and wrong shapes", "[io][gguf][errors][real]") {
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  if (bpath.empty()) return;
  const auto w = read_llama2c(bpath);
  {
    auto g = gguf_llama_writer(w, nullptr);
    const auto bytes = g.serialize();
    const auto f = parse_gguf(bytes.data(), bytes.size());
    REQUIRE_NOTHROW(gguf_to_llama(f));
  }
  {
    GgufWriter g = gguf_llama_writer(w, nullptr);
    g.set("llama.attention.head_count", std::uint32_t{7});
    const auto b = g.serialize();
    CHECK_THROWS_WITH(gguf_to_llama(parse_gguf(b.data(), b.size())), Catch::Contains("n_heads = 7"));
  }
  {
    GgufWriter g = gguf_llama_writer(w, nullptr);
    g.set("llama.rope.dimension_count", std::uint32_t{4});
    const auto b = g.serialize();
    CHECK_THROWS_WITH(gguf_to_llama(parse_gguf(b.data(), b.size())), Catch::Contains("dimension_count = 4"));
  }
  {
    GgufWriter g = gguf_llama_writer(w, nullptr);
    g.set("llama.feed_forward_length", std::uint32_t{171});
    const auto b = g.serialize();
    CHECK_THROWS_WITH(gguf_to_llama(parse_gguf(b.data(), b.size())),
                      Catch::Contains("blk.0.ffn_gate.weight") && Catch::Contains("expected [64, 171]"));
  }
  {
    GgufWriter g = gguf_llama_writer(w, nullptr);
    g.set("llama.block_count", std::uint32_t{6});
    const auto b = g.serialize();
    CHECK_THROWS_WITH(gguf_to_llama(parse_gguf(b.data(), b.size())),
                      Catch::Contains("tensor 'blk.5.attn_norm.weight' not found"));
  }
  {
    GgufWriter g = gguf_llama_writer(w, nullptr);
    g.set("general.architecture", std::string("gpt2"));
    const auto b = g.serialize();
    CHECK_THROWS_WITH(gguf_to_llama(parse_gguf(b.data(), b.size())), Catch::Contains("'gpt2'"));
  }
}

TEST_CASE("q/k permutation: HF rotate-half RoPE equals GGUF adjacent-pair RoPE on permuted rows", "[io][gguf]") {
  const std::size_t heads = 3, hd = 8, in = 5, rows = heads * hd;
  const auto wv = sparq_test::randn(rows * in, 21);
  Matrix<float> hf(rows, in);
  std::copy(wv.begin(), wv.end(), hf.data());
  const auto gg = permute_qk_hf_to_gguf(hf, heads);
  REQUIRE(permute_qk_gguf_to_hf(gg, heads).storage() == hf.storage());
  const auto x = sparq_test::randn(in, 22);
  auto matvec = [&](const Matrix<float>& m) {
    std::vector<double> y(rows, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < in; ++c) y[r] += double(m.row(r)[c]) * x[c];
    return y;
  };
  const std::size_t pos = 7;
  auto yh = matvec(hf), yg = matvec(gg);
  for (std::size_t h = 0; h < heads; ++h) {
    for (std::size_t i = 0; i < hd / 2; ++i) {
      const double th = pos * std::pow(10000.0, -2.0 * double(i) / double(hd));
      const double c = std::cos(th), s = std::sin(th);
      // HF: rotate (i, i + hd/2); GGUF/llama2.c: rotate (2i, 2i + 1).
      double& a = yh[h * hd + i];
      double& b = yh[h * hd + i + hd / 2];
      const double a2 = a * c - b * s, b2 = a * s + b * c;
      a = a2;
      b = b2;
      double& p = yg[h * hd + 2 * i];
      double& q = yg[h * hd + 2 * i + 1];
      const double p2 = p * c - q * s, q2 = p * s + q * c;
      p = p2;
      q = q2;
    }
  }
  // Attention scores depend on q·k per head, and a permutation within a head leaves the dot
  // product unchanged: compare the rotated vectors through the permutation itself.
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t i = 0; i < hd / 2; ++i)
      for (std::size_t j = 0; j < 2; ++j)
        REQUIRE(yg[h * hd + 2 * i + j] == Approx(yh[h * hd + j * (hd / 2) + i]).margin(1e-12));
  CHECK_THROWS_WITH(permute_qk_hf_to_gguf(hf, 5), Catch::Contains("do not split"));
}

TEST_CASE("GGUF Llama mapping checks shapes before allocating and rejects non-finite weights", "[io][gguf][errors]") {
  model::LlamaConfig cfg;
  cfg.dim = 32;
  cfg.hidden_dim = 32;
  cfg.n_layers = 1;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 1;
  cfg.vocab_size = 4;
  cfg.seq_len = 8;
  auto w = model::LlamaWeights::zeros(cfg);
  {
    // Metadata claiming a model of ~2^24 x 2^24 x 4000 floats: refused by the shape check, not
    // by an allocation failure.
    auto g = gguf_llama_writer(w, nullptr);
    g.set("llama.embedding_length", std::uint32_t{(1u << 24) - 4});
    g.set("llama.feed_forward_length", std::uint32_t{(1u << 24) - 1});
    g.set("llama.block_count", std::uint32_t{4000});
    g.set("llama.attention.head_count", std::uint32_t{2});
    g.set("llama.rope.dimension_count", std::uint32_t{(1u << 23) - 2});
    const auto b = g.serialize();
    CHECK_THROWS_WITH(gguf_to_llama(parse_gguf(b.data(), b.size())),
                      Catch::Contains("token_embd.weight' has dims [32, 4]"));
  }
  {
    GgufWriter g = gguf_llama_writer(model::LlamaWeights::zeros(cfg), nullptr);
    // Re-add ffn_up with a non-finite value through raw bytes (the float writer refuses it).
    GgufWriter h;
    const auto b0 = g.serialize();
    const auto f0 = parse_gguf(b0.data(), b0.size());
    for (const auto& kv : f0.metadata) h.set(kv.first, kv.second);
    for (const auto& t : f0.tensors) {
      std::vector<char> bytes(f0.tensor_data(t), f0.tensor_data(t) + t.n_bytes);
      if (t.name == "blk.0.ffn_up.weight") {
        const float inf = INFINITY;
        std::memcpy(bytes.data() + 4 * (3 * 32 + 5), &inf, 4);
      }
      h.add_tensor_bytes(t.name, t.dims, t.type, bytes);
    }
    const auto b = h.serialize();
    CHECK_THROWS_WITH(gguf_to_llama(parse_gguf(b.data(), b.size())),
                      Catch::Contains("blk.0.ffn_up.weight") && Catch::Contains("non-finite") &&
                          Catch::Contains("flat index 101"));
  }
}
