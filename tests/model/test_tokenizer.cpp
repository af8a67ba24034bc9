// Tokenizer: llama2.c file parsing (including hostile files), encode/decode rules, GGUF-style vocab.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "sparq/model/tokenizer.hpp"
#include "sparq_test.hpp"

using sparq::model::Tokenizer;

namespace {

void put_u32(std::vector<char>& b, std::uint32_t v) {
  const char* c = reinterpret_cast<const char*>(&v);
  b.insert(b.end(), c, c + 4);
}
void put_record(std::vector<char>& b, float score, const std::string& s) {
  const char* c = reinterpret_cast<const char*>(&score);
  b.insert(b.end(), c, c + 4);
  put_u32(b, static_cast<std::uint32_t>(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}

/// A tiny llama2.c-layout vocabulary: <unk>, BOS, EOS, 256 bytes, then a few pieces.
std::vector<std::string> tiny_pieces() {
  std::vector<std::string> t = {"<unk>", "\n<s>\n", "\n</s>\n"};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    t.emplace_back(buf);
  }
  for (const char* s : {" ", "a", "b", "c", "ab", "bc", " a", " ab", "abc", "é"}) t.emplace_back(s);
  return t;
}

}  // namespace

TEST_CASE("tokenizer: greedy merges pick the highest-scoring pair, leftmost on ties", "[model][tokenizer]") {
  auto pieces = tiny_pieces();
  std::vector<float> scores(pieces.size(), 0.0f);
  auto id = [&](const std::string& s) {
    for (std::size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i] == s) return static_cast<int>(i);
    return -1;
  };
  scores[static_cast<std::size_t>(id("ab"))] = 1.0f;
  scores[static_cast<std::size_t>(id("bc"))] = 2.0f;
  scores[static_cast<std::size_t>(id(" a"))] = 0.5f;
  scores[static_cast<std::size_t>(id(" ab"))] = 3.0f;
  scores[static_cast<std::size_t>(id("abc"))] = 5.0f;
  Tokenizer tok(pieces, scores);
  // " abc": code points ' ','a','b','c'; best pair "bc" (2) beats "ab" (1) and " a" (0.5) → ' ', 'a',
  // "bc"; then "abc" (5) beats " a" (0.5) → ' ', "abc"; " abc" is not a piece → stop.
  CHECK(tok.encode("abc", false, false) == std::vector<int>{id(" "), id("abc")});
  CHECK(tok.encode("abc", true, true) == std::vector<int>{1, id(" "), id("abc"), 2});
  // "ab c": ' ','a','b',' ','c' → "ab"(1) … " ab"(3) wins over " a" → " ab", ' ', 'c'.
  CHECK(tok.encode("ab c", false, false) == std::vector<int>{id(" ab"), id(" "), id("c")});
  // Empty text: no dummy prefix.
  CHECK(tok.encode("", true, false) == std::vector<int>{1});
  CHECK(tok.encode("", false, false).empty());
  // Unknown code points fall back to bytes (+3 in this layout); known multi-byte ones are kept.
  CHECK(tok.encode("é", false, false) == std::vector<int>{id(" "), id("é")});
  CHECK(tok.encode("ü", false, false) == std::vector<int>{id(" "), 0xC3 + 3, 0xBC + 3});
  CHECK(tok.encode("z", false, false) == std::vector<int>{id(" "), 'z' + 3});
  // Equal scores: the leftmost pair merges first.
  std::vector<float> flat(pieces.size(), 0.0f);
  Tokenizer t2(pieces, flat);
  // " ab": pairs " a"(0) and "ab"(0) tie → leftmost " a" merges; then " ab" (0) merges.
  CHECK(t2.encode("ab", false, false) == std::vector<int>{id(" ab")});
  // Decode: leading space dropped after BOS, byte pieces become raw bytes.
  CHECK(tok.decode(1, id(" a")) == "a");
  CHECK(tok.decode(5, id(" a")) == " a");
  CHECK(tok.decode(5, 0x0A + 3) == "\n");
  CHECK(tok.decode(std::vector<int>{id(" ab"), 0xC3 + 3, 0xBC + 3}, 1) == "ab\xC3\xBC");
  CHECK_THROWS_AS(tok.decode(0, 100000), sparq::error);
}

TEST_CASE("tokenizer: sentencepiece '▁' is mapped to a space", "[model][tokenizer]") {
  auto pieces = tiny_pieces();
  for (auto& p : pieces) {
    if (!p.empty() && p[0] == ' ') p = "\xE2\x96\x81" + p.substr(1);
  }
  std::vector<float> scores(pieces.size(), 0.0f);
  Tokenizer plain(tiny_pieces(), scores);
  Tokenizer sp(pieces, scores, 1, 2, Tokenizer::SpaceMarker::sentencepiece);
  CHECK(sp.piece(259) == " ");
  CHECK(sp.encode("ab abc", true, false) == plain.encode("ab abc", true, false));
  CHECK(Tokenizer::replace_sentencepiece_space("\xE2\x96\x81x\xE2\x96") == " x\xE2\x96");
}

TEST_CASE("tokenizer: hostile llama2.c files are rejected", "[model][tokenizer]") {
  std::vector<char> good;
  put_u32(good, 4);
  put_record(good, 0.0f, "unk");
  put_record(good, 0.0f, "s");
  put_record(good, 0.0f, "/s");
  put_record(good, -1.5f, "ab");
  const auto t = Tokenizer::parse_llama2c(good.data(), good.size());
  CHECK(t.vocab_size() == 4);
  CHECK(t.score(3) == -1.5f);
  CHECK(Tokenizer::parse_llama2c(good.data(), good.size(), 4).vocab_size() == 4);
  // Every truncation fails cleanly (never reads past the buffer: ASan checks this).
  for (std::size_t n = 0; n < good.size(); ++n) {
    std::vector<char> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_THROWS_AS(Tokenizer::parse_llama2c(cut.data(), cut.size(), 4), sparq::error);
  }
  CHECK_THROWS_AS(Tokenizer::parse_llama2c(good.data(), good.size(), 5), sparq::error);
  CHECK_THROWS_AS(Tokenizer::parse_llama2c(good.data(), good.size(), 3), sparq::error);  // trailing
  auto bad_len = good;
  const std::int32_t huge = 1 << 30;
  std::memcpy(bad_len.data() + 4 + 4, &huge, 4);
  CHECK_THROWS_AS(Tokenizer::parse_llama2c(bad_len.data(), bad_len.size()), sparq::error);
  const std::int32_t neg = -3;
  std::memcpy(bad_len.data() + 4 + 4, &neg, 4);
  CHECK_THROWS_AS(Tokenizer::parse_llama2c(bad_len.data(), bad_len.size()), sparq::error);
  auto bad_score = good;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(bad_score.data() + 4, &nan, 4);
  CHECK_THROWS_AS(Tokenizer::parse_llama2c(bad_score.data(), bad_score.size()), sparq::error);
  auto bad_max = good;
  std::memset(bad_max.data(), 0, 4);
  CHECK_THROWS_AS(Tokenizer::parse_llama2c(bad_max.data(), bad_max.size()), sparq::error);
  // Lengths beyond max_token_length are rejected too.
  std::vector<char> too_long;
  put_u32(too_long, 2);
  put_record(too_long, 0.0f, "a");
  put_record(too_long, 0.0f, "b");
  put_record(too_long, 0.0f, "abc");
  CHECK_THROWS_AS(Tokenizer::parse_llama2c(too_long.data(), too_long.size()), sparq::error);
  CHECK_THROWS_AS(Tokenizer(std::vector<std::string>{"a", "b"}, std::vector<float>{0.0f}), sparq::error);
  CHECK_THROWS_AS(Tokenizer(std::vector<std::string>{"a", "b"}, std::vector<float>{0, 0}, 1, 7), sparq::error);
  CHECK_THROWS_AS(Tokenizer::read_llama2c("/nonexistent/tok.bin"), sparq::error);
}

TEST_CASE("tokenizer: real tok512.bin", "[model][tokenizer][real]") {
  const auto path = sparq_test::data_path("models/tok512.bin");
  if (path.empty()) return;
  const auto tok = Tokenizer::read_llama2c(path, 512);
  REQUIRE(tok.vocab_size() == 512);
  CHECK(tok.max_token_length() == 7);
  CHECK(tok.piece(3) == "<0x00>");
  CHECK(tok.piece(258) == "<0xFF>");
  // Round trip of ASCII, newlines and non-ASCII (byte fallback) text.
  const std::string text = "Once upon a time, Lily saw a big dog.\nShe said \"Zoo!\" — café";
  const auto ids = tok.encode(text, true, false);
  REQUIRE(ids.size() > 3);
  CHECK(ids[0] == 1);
  CHECK(ids.size() < text.size());  // merges happened
  CHECK(tok.decode(std::vector<int>(ids.begin() + 1, ids.end()), 1) == text);
  // Every id of the encoding is a valid piece, and no adjacent pair is still mergeable.
  for (std::size_t i = 1; i + 1 < ids.size(); ++i) {
    CHECK(tok.find(tok.piece(ids[i]) + tok.piece(ids[i + 1])) < 0);
  }
  // "Zoo" (the golden prompt) starts with the dummy-prefix space merged in.
  const auto zoo = tok.encode("Zoo", true, false);
  CHECK(tok.decode(std::vector<int>(zoo.begin() + 1, zoo.end()), 1) == "Zoo");
  CHECK(tok.piece(zoo[1]).front() == ' ');
}
