// The "SPRQ" container: CRC-32 check value, documented byte layout, round trips of packed tensors
// (including the real stories260K weights), and rejection of corrupted or forged files.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sparq/core/half.hpp"
#include "sparq/io/container.hpp"
#include "sparq/io/llama2c.hpp"
#include "container_forge.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::io;

namespace {

using container_forge::peek;
using container_forge::poke;
using container_forge::refresh_checksums;

Container sample() {
  Container c;
  c.metadata["recipe"] = std::string("Quantizer<Symmetric, PerGroup<32>, 4>");
  c.metadata["bits"] = std::int64_t{4};
  c.metadata["ppl"] = 4.0494;
  ContainerTensor t{"blk.0.wq", "int4_g32_sym", {64, 64}, {}};
  std::vector<std::uint8_t> codes(64 * 32);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint8_t>(i * 37);
  std::vector<std::uint16_t> scales(64 * 2);
  for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = float_to_fp16(0.01f * static_cast<float>(i + 1));
  t.add_section("codes", codes);
  t.add_section("scales", scales);
  c.add(std::move(t));
  ContainerTensor s{"blk.0.w2", "nm24_f32", {64, 172}, {}};
  const auto vals = sparq_test::randn(64 * 86, 3);
  std::vector<std::uint8_t> idx(64 * 86 / 2, 0x31);
  s.add_section("values", vals);
  s.add_section("indices", idx);
  s.add_section("empty", std::vector<std::int32_t>{});
  c.add(std::move(s));
  c.add(ContainerTensor{"scalar", "", {}, {}});
  return c;
}

}  // namespace

TEST_CASE("CRC-32 matches the IEEE check value", "[io][container]") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
  CHECK(crc32("", 0) == 0u);
  // Incremental use gives the same result.
  CHECK(crc32("6789", 4, crc32("12345", 5)) == 0xCBF43926u);
}

TEST_CASE("container round trip and documented byte layout", "[io][container]") {
  const auto c = sample();
  const auto b = serialize_container(c);
  // Header as documented in container.hpp / docs/formats.md.
  CHECK(std::memcmp(b.data(), "SPRQ", 4) == 0);
  CHECK(peek<std::uint32_t>(b, 4) == 1);
  CHECK(peek<std::uint64_t>(b, 8) == b.size());
  CHECK(peek<std::uint32_t>(b, 16) == 3);
  CHECK(peek<std::uint32_t>(b, 20) == 0);
  CHECK(peek<std::uint32_t>(b, 24) == 0);
  CHECK(peek<std::uint32_t>(b, 28) == crc32(b.data(), 28));
  CHECK(std::memcmp(b.data() + b.size() - 4, "QRPS", 4) == 0);
  CHECK(peek<std::uint32_t>(b, b.size() - 8) == crc32(b.data(), b.size() - 8));
  // Metadata record: u64 length, payload starting with u32 n_entries = 3, then sorted keys.
  const auto mlen = peek<std::uint64_t>(b, 32);
  CHECK(peek<std::uint32_t>(b, 40) == 3);
  CHECK(peek<std::uint32_t>(b, 44) == 4);  // "bits"
  CHECK(std::memcmp(b.data() + 48, "bits", 4) == 0);
  CHECK(b[52] == 1);                       // kind int64
  CHECK(peek<std::int64_t>(b, 53) == 4);
  CHECK(peek<std::uint32_t>(b, 40 + mlen) == crc32(b.data() + 40, mlen));

  const auto r = parse_container(b.data(), b.size());
  CHECK(r.metadata == c.metadata);
  REQUIRE(r.tensors.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(r.tensors[i].name == c.tensors[i].name);
    CHECK(r.tensors[i].format == c.tensors[i].format);
    CHECK(r.tensors[i].dims == c.tensors[i].dims);
    REQUIRE(r.tensors[i].sections.size() == c.tensors[i].sections.size());
    for (std::size_t k = 0; k < c.tensors[i].sections.size(); ++k) {
      CHECK(r.tensors[i].sections[k].name == c.tensors[i].sections[k].name);
      CHECK(r.tensors[i].sections[k].bytes == c.tensors[i].sections[k].bytes);
    }
  }
  CHECK(r.tensor("blk.0.w2").section_as<float>("values") == sparq_test::randn(64 * 86, 3));
  CHECK(r.tensor("blk.0.wq").section_as<std::uint16_t>("scales")[5] == float_to_fp16(0.06f));
  struct Three {
    char c[3];
  };
  CHECK_THROWS_WITH(r.tensor("blk.0.wq").section_as<Three>("scales"), Catch::Contains("256 bytes, not a multiple of 3"));
  CHECK_THROWS_WITH(r.tensor("blk.0.wq").section_as<float>("zeros"), Catch::Contains("no section 'zeros'"));
  CHECK_THROWS_WITH(r.tensor("nope"), Catch::Contains("no tensor 'nope'"));
  // Deterministic.
  CHECK(serialize_container(r) == b);
  // Empty container.
  const auto e = serialize_container(Container{});
  CHECK(e.size() == 32 + 8 + 4 + 4 + 8);
  CHECK(parse_container(e.data(), e.size()).tensors.empty());
}

TEST_CASE("container holds the real stories260K weights bit for bit (file round trip)", "[io][container][real]") {
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  if (bpath.empty()) return;
  const auto w = read_llama2c(bpath);
  Container c;
  c.metadata["model"] = std::string("stories260K");
  c.add_f32("token_embedding", {w.token_embedding.rows(), w.token_embedding.cols()}, w.token_embedding.data());
  for (std::size_t l = 0; l < w.blocks.size(); ++l)
    for (auto lin : model::all_linears) {
      const auto& m = w.blocks[l].linear(lin);
      c.add_f32("blk." + std::to_string(l) + "." + std::string(model::linear_name(lin)), {m.rows(), m.cols()}, m.data());
    }
  const auto path = (std::filesystem::temp_directory_path() / "sparq_formats_stories.sprq").string();
  write_container(path, c);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp-sparq"));
  const auto r = read_container(path);
  std::filesystem::remove(path);
  CHECK(std::get<std::string>(r.metadata.at("model")) == "stories260K");
  CHECK(std::ranges::equal(r.tensor("token_embedding").section_as<float>("data"), w.token_embedding.storage()));
  for (std::size_t l = 0; l < w.blocks.size(); ++l)
    for (auto lin : model::all_linears) {
      const auto& t = r.tensor("blk." + std::to_string(l) + "." + std::string(model::linear_name(lin)));
      CHECK(t.format == "f32");
      REQUIRE(std::ranges::equal(t.section_as<float>("data"), w.blocks[l].linear(lin).storage()));
    }
}

TEST_CASE("container reader rejects truncation, any single bit flip, and forged fields", "[io][container][errors]") {
  const auto good = serialize_container(sample());
  REQUIRE_NOTHROW(parse_container(good.data(), good.size()));
  // Every truncation.
  for (std::size_t cut = 0; cut < good.size(); cut += 7) {
    INFO("cut " << cut);
    REQUIRE_THROWS_AS(parse_container(good.data(), cut), sparq::error);
  }
  // CRC-32 detects every single-bit error: every flip in the file must be rejected.
  for (std::size_t at = 0; at < good.size(); at += 3) {
    auto bad = good;
    bad[at] ^= static_cast<char>(1 << (at % 8));
    INFO("flip at " << at);
    REQUIRE_THROWS_AS(parse_container(bad.data(), bad.size()), sparq::error);
  }
  auto bad = good;
  bad.push_back(0);
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("trailing bytes"));
  bad = good;
  bad[0] = 'X';
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("bad magic"));
  bad = good;
  poke<std::uint32_t>(bad, 4, 3);  // versions 1 and 2 exist; 3 must be refused before anything else
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("version 3 is not supported"));
  bad = good;
  poke<std::uint32_t>(bad, 4, 2);  // a valid version that is not the one written: the header CRC catches it
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("header checksum mismatch"));
  bad = good;
  bad[good.size() - 20] ^= 1;
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("checksum mismatch"));

  // Forged payloads with consistent checksums reach the structural checks.
  const std::size_t t0 = 32 + 12 + static_cast<std::size_t>(peek<std::uint64_t>(good, 32));  // first tensor record
  const std::size_t name_len = peek<std::uint32_t>(good, t0 + 8);
  const std::size_t fmt_at = t0 + 8 + 4 + name_len;
  const std::size_t nd_at = fmt_at + 4 + peek<std::uint32_t>(good, fmt_at);
  bad = good;
  poke<std::uint32_t>(bad, nd_at, 9);
  refresh_checksums(bad);
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("n_dims = 9"));
  bad = good;
  poke<std::uint32_t>(bad, nd_at, 3);  // one more dim than written: the record runs out of bytes
  refresh_checksums(bad);
  CHECK_THROWS_AS(parse_container(bad.data(), bad.size()), sparq::error);
  bad = good;
  poke<std::uint64_t>(bad, nd_at + 4, std::uint64_t{1} << 40);
  poke<std::uint64_t>(bad, nd_at + 12, std::uint64_t{1} << 40);
  refresh_checksums(bad);
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("overflows"));
  bad = good;
  poke<std::uint32_t>(bad, nd_at + 20, 65);
  refresh_checksums(bad);
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("65 sections"));
  bad = good;
  poke<std::uint64_t>(bad, nd_at + 24 + 4 + 5, ~std::uint64_t{0});  // "codes" section length
  refresh_checksums(bad);
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("truncated while reading section bytes"));
  bad = good;
  std::memcpy(bad.data() + nd_at + 24 + 4 + 5 + 8 + 64 * 32 + 4, "codes", 5);  // "scales" -> "codes"+'s'
  bad[nd_at + 24 + 4 + 5 + 8 + 64 * 32 + 4 + 5] = 's';
  refresh_checksums(bad);
  REQUIRE_NOTHROW(parse_container(bad.data(), bad.size()));  // "codess" is a new name: fine
  bad = good;
  poke<std::uint32_t>(bad, nd_at + 24 + 4 + 5 + 8 + 64 * 32, 5);  // "scales" length 6 -> 5: payload misparsed
  refresh_checksums(bad);
  CHECK_THROWS_AS(parse_container(bad.data(), bad.size()), sparq::error);
  bad = good;
  poke<std::uint32_t>(bad, 16, 4);  // one more tensor than written
  refresh_checksums(bad);
  CHECK_THROWS_AS(parse_container(bad.data(), bad.size()), sparq::error);
  bad = good;
  bad[52] = 7;  // metadata kind
  refresh_checksums(bad);
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("kind 7"));
  bad = good;
  bad[20] = 1;  // flags
  refresh_checksums(bad);
  CHECK_THROWS_WITH(parse_container(bad.data(), bad.size()), Catch::Contains("flags 1"));

  // Writer-side validation.
  Container c;
  c.add(ContainerTensor{"a", "f32", {1}, {}});
  CHECK_THROWS_WITH(c.add(ContainerTensor{"a", "f32", {1}, {}}), Catch::Contains("duplicate tensor 'a'"));
  ContainerTensor t{"b", "x", {1, 2, 3, 4, 5, 6, 7, 8, 9}, {}};
  Container c2;
  c2.tensors.push_back(t);
  CHECK_THROWS_WITH(serialize_container(c2), Catch::Contains("9 dims"));
  ContainerTensor u{"u", "x", {2}, {}};
  u.add_section("codes", std::vector<int>{1});
  CHECK_THROWS_WITH(u.add_section("codes", std::vector<int>{2}), Catch::Contains("duplicate section 'codes'"));
  CHECK_THROWS_AS(write_container("/nonexistent-dir/x.sprq", c), sparq::error);
}
