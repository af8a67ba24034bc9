// safetensors reader/writer: round trip of the real stories260K weights, dtype conversions, the
// header rules, and hostile inputs (truncations, bit flips, forged JSON).
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sparq/io/llama2c.hpp"
#include "sparq/io/safetensors.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::io;

namespace {

// The stories260K weights as a safetensors file (names in GGUF style, shapes [out, in]).
SafetensorsWriter stories_writer(const model::LlamaWeights& w, SafeDtype dt = SafeDtype::F32) {
  SafetensorsWriter s;
  auto mat = [&](const std::string& n, const Matrix<float>& m) { s.add(n, dt, {m.rows(), m.cols()}, m.data()); };
  mat("token_embd.weight", w.token_embedding);
  s.add("output_norm.weight", SafeDtype::F32, {w.rms_final.size()}, w.rms_final.data());
  for (std::size_t l = 0; l < w.blocks.size(); ++l) {
    const auto& b = w.blocks[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    for (auto lin : model::all_linears) mat(p + std::string(model::linear_name(lin)), b.linear(lin));
    s.add(p + "attn_norm.weight", SafeDtype::F32, {b.rms_att.size()}, b.rms_att.data());
    s.add(p + "ffn_norm.weight", SafeDtype::F32, {b.rms_ffn.size()}, b.rms_ffn.data());
  }
  s.set_metadata("format", "pt");
  s.set_metadata("source", "stories260K");
  return s;
}

std::vector<char> with_header(const std::string& json, std::size_t data_bytes) {
  std::vector<char> b(8 + json.size() + data_bytes, 0);
  const std::uint64_t n = json.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, json.data(), json.size());
  return b;
}

}  // namespace

TEST_CASE("safetensors: stories260K round trip is bit-exact; F16/BF16 round to nearest", "[io][safetensors][real]") {
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  if (bpath.empty()) return;
  const auto w = read_llama2c(bpath);
  const auto path = (std::filesystem::temp_directory_path() / "sparq_formats_stories.safetensors").string();
  stories_writer(w).write(path);
  const auto f = read_safetensors(path);
  std::filesystem::remove(path);
  CHECK(f.data_offset % 8 == 0);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("source") == "stories260K");
  CHECK(f.tensors.size() == 2 + 5 * 9);
  // Sorted by name = laid out by name.
  for (std::size_t i = 1; i < f.tensors.size(); ++i) CHECK(f.tensors[i - 1].name < f.tensors[i].name);
  const auto& e = f.tensor("token_embd.weight");
  CHECK(e.shape == std::vector<std::uint64_t>{512, 64});
  REQUIRE(std::ranges::equal(f.floats(e), w.token_embedding.storage()));
  for (std::size_t l = 0; l < 5; ++l) {
    for (auto lin : model::all_linears) {
      const auto& t = f.tensor("blk." + std::to_string(l) + "." + std::string(model::linear_name(lin)));
      const auto v = f.floats(t);
      REQUIRE(std::memcmp(v.data(), w.blocks[l].linear(lin).data(), v.size() * 4) == 0);
    }
  }
  for (SafeDtype dt : {SafeDtype::F16, SafeDtype::BF16}) {
    const auto b = stories_writer(w, dt).serialize();
    const auto g = parse_safetensors(b.data(), b.size());
    const auto v = g.floats(g.tensor("blk.3.w2"));
    const auto& m = w.blocks[3].w2;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const float expect = dt == SafeDtype::F16 ? round_to_fp16(m.data()[i]) : round_to_bf16(m.data()[i]);
      REQUIRE(v[i] == expect);
    }
    CHECK(g.tensor("blk.3.w2").dtype == dt);
  }
}

TEST_CASE("safetensors: header rules", "[io][safetensors][errors]") {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}})";
  REQUIRE_NOTHROW(parse_safetensors(with_header(ok, 8)));
  const auto f = parse_safetensors(with_header(ok + "   ", 8));  // trailing spaces are fine
  CHECK(f.metadata.at("k") == "v");
  struct Case {
    std::string json;
    std::size_t data;
    const char* msg;
  };
  const Case cases[] = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8, "not valid JSON"},
      {R"([1,2])", 0, "must start with '{'"},
      {R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8, "dtype \"F33\""},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "need 12"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "non-negative integer"},
      {R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, "non-negative integer"},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8, "overflows"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12, "cover 8 bytes of a 12-byte"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, "expected 0 (gap)"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8, "overlap"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "do not fit"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "do not fit"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, "[begin, end]"},
      {R"({"a":{"dtype":"F32","shape":[2]}})", 8, "exactly the keys"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8, "exactly the keys"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
       8, "duplicate JSON key 'a'"},
      {R"({"a":{"dtype":"F32","shape":[[[2]]],"data_offsets":[0,8]}})", 8, "deeper than 3"},
      {R"({"__metadata__":{"k":1}})", 0, "not a string"},
      {R"({"a":5})", 0, "not an object"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    CHECK_THROWS_WITH(parse_safetensors(with_header(c.json, c.data)), Catch::Contains(c.msg));
  }
  // Header length larger than the file, and a file shorter than 8 bytes.
  auto b = with_header(ok, 8);
  const std::uint64_t big = 1ull << 40;
  std::memcpy(b.data(), &big, 8);
  CHECK_THROWS_WITH(parse_safetensors(b), Catch::Contains("exceeds"));
  CHECK_THROWS_WITH(parse_safetensors(std::vector<char>(5)), Catch::Contains("truncated"));
  // Reading an integer tensor as floats is refused with the dtype named.
  const auto ints = parse_safetensors(with_header(R"({"i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8));
  CHECK_THROWS_WITH(ints.floats(ints.tensor("i")), Catch::Contains("dtype I32"));
  // Zero-element tensors are legal.
  const auto z = parse_safetensors(with_header(R"({"z":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]}})", 0));
  CHECK(z.floats(z.tensor("z")).empty());
  // The writer refuses duplicates and wrong byte counts.
  SafetensorsWriter w;
  const float x[2] = {1, 2};
  w.add("a", SafeDtype::F32, {2}, x);
  CHECK_THROWS_WITH(w.add("a", SafeDtype::F32, {2}, x), Catch::Contains("duplicate"));
  CHECK_THROWS_WITH(w.add_bytes("b", SafeDtype::I16, {3}, std::vector<char>(5)), Catch::Contains("need 6"));
  CHECK_THROWS_WITH(w.add("c", SafeDtype::I32, {2}, x), Catch::Contains("cannot be stored as I32"));
}

TEST_CASE("safetensors: truncations and bit flips of a real file", "[io][safetensors][errors][real]") {
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  if (bpath.empty()) return;
  const auto orig = stories_writer(read_llama2c(bpath)).serialize();
  const auto f0 = parse_safetensors(orig.data(), orig.size());
  const auto header_end = static_cast<std::size_t>(f0.data_offset);
  for (std::size_t cut = 0; cut < orig.size(); cut += (cut < header_end ? 53 : 30011)) {
    INFO("cut " << cut);
    REQUIRE_THROWS_AS(parse_safetensors(orig.data(), cut), sparq::error);
  }
  std::mt19937 rng(99);
  std::uniform_int_distribution<std::size_t> pos(0, header_end - 1);
  std::uniform_int_distribution<int> bit(0, 7);
  std::size_t threw = 0;
  for (int trial = 0; trial < 400; ++trial) {
    auto copy = orig;
    for (int k = 0; k <= trial % 3; ++k) copy[pos(rng)] ^= static_cast<char>(1 << bit(rng));
    try {
      const auto f = parse_safetensors(copy.data(), copy.size());
      for (const auto& t : f.tensors) REQUIRE(f.data_offset + t.end <= f.bytes.size());
    } catch (const sparq::error&) {
      ++threw;
    }
  }
  CHECK(threw > 200);
}
