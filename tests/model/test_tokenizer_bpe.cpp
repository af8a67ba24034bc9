// Byte-level BPE tokenizer: GPT-2's real merges against ids from independent implementations
// (tests/data/tokenizers), the hand-written pre-tokenizers against their regular expressions,
// special tokens, invalid UTF-8, tokenizer.json and GGUF gpt2 loading with their errors, and the
// heap-based SentencePiece merge loop against llama2.c's quadratic one.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "model_test_util.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/hf_checkpoint.hpp"
#include "sparq/io/load.hpp"
#include "sparq/io/tokenizer_json.hpp"
#include "sparq/model/tokenizer.hpp"
#include "sparq/model/tokenizer_bpe.hpp"
#include "sparq_test.hpp"

namespace tokenizer_bpe_test {

using sparq::model::BpeTokenizer;
using sparq::model::BpeVocab;
using sparq::model::PreTokenizer;
using sparq::model::Tokenizer;

inline std::filesystem::path data_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "tokenizers";
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

/// GPT-2's vocabulary rebuilt from its merges (tests/data/tokenizers/README.md says why this is
/// encoder.json exactly): the 256 byte tokens in bytes_to_unicode order, one token per merge,
/// <|endoftext|>.
inline BpeVocab gpt2_vocab() {
  const std::string bpe = read_text(data_dir() / "gpt2-vocab.bpe");
  BpeVocab v;
  std::vector<unsigned> order;
  for (unsigned b = 0; b < 256; ++b)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) order.push_back(b);
  for (unsigned b = 0; b < 256; ++b)
    if (std::find(order.begin(), order.end(), b) == order.end()) order.push_back(b);
  for (unsigned b : order) v.tokens.push_back(sparq::model::bpe_detail::bytes_to_spelling(std::string(1, char(b))));
  std::size_t pos = bpe.find('\n') + 1;  // skip "#version: 0.2"
  while (pos < bpe.size()) {
    const std::size_t end = bpe.find('\n', pos);
    const std::string line = bpe.substr(pos, end - pos);
    pos = end == std::string::npos ? bpe.size() : end + 1;
    if (line.empty()) continue;
    const std::size_t sp = line.find(' ');
    v.merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    v.tokens.push_back(line.substr(0, sp) + line.substr(sp + 1));
  }
  v.tokens.emplace_back("<|endoftext|>");
  v.special_ids = {50256};
  v.bos_id = v.eos_id = 50256;
  v.pre = PreTokenizer::gpt2;
  return v;
}

/// The first `n` merges of GPT-2 only (ids 0..255+n, then <|endoftext|>): a small real vocabulary
/// for the tests that parse many tokenizer.json variants.
inline BpeVocab gpt2_small_vocab(std::size_t n) {
  BpeVocab v = gpt2_vocab();
  v.merges.resize(n);
  v.tokens.resize(256 + n);
  v.tokens.emplace_back("<|endoftext|>");
  v.special_ids = {static_cast<int>(256 + n)};
  v.bos_id = v.eos_id = static_cast<int>(256 + n);
  return v;
}

inline const BpeTokenizer& gpt2() {
  static const BpeTokenizer t(gpt2_vocab());
  return t;
}

struct Case {
  std::string text;
  std::vector<int> ids;
};

inline std::vector<Case> gpt2_cases() {
  std::vector<Case> out;
  std::ifstream f(data_dir() / "gpt2-cases.jsonl");
  REQUIRE(f.good());
  std::string line;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line);
    out.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int>>()});
  }
  return out;
}

inline std::vector<std::string> split(std::string_view text, PreTokenizer kind) {
  std::vector<std::string> out;
  sparq::model::bpe_detail::pretokenize(text, kind, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

/// A tokenizer.json text (GPT-2 layout) for `v`; merges as "a b" strings or [a, b] pairs.
inline nlohmann::json tokenizer_json_of(const BpeVocab& v, bool pair_merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (std::size_t i = 0; i < v.tokens.size(); ++i) vocab[v.tokens[i]] = i;
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [a, b] : v.merges) {
    if (pair_merges) merges.push_back({a, b});
    else merges.push_back(a + " " + b);
  }
  nlohmann::json added = nlohmann::json::array();
  for (int id : v.special_ids)
    added.push_back({{"id", id}, {"content", v.tokens[static_cast<std::size_t>(id)]}, {"special", true},
                     {"lstrip", false}, {"rstrip", false}, {"single_word", false}, {"normalized", false}});
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
            {"vocab", vocab}, {"merges", merges}}}};
}

inline void require_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("expected a sparq::error");
  } catch (const sparq::error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      INFO(msg);
      CHECK(msg.find(p) != std::string::npos);
    }
  }
}

/// llama2.c's encode merge loop, verbatim in spirit: rescan every adjacent pair for the best
/// score (leftmost on ties) after every merge. The reference for the heap version.
inline std::vector<int> llama2c_reference_encode(const Tokenizer& tok, std::string_view text, bool bos, bool eos) {
  std::vector<int> ids;
  if (bos) ids.push_back(tok.bos_id());
  if (!text.empty()) {
    const int sp = tok.find(" ");
    ids.push_back(sp >= 0 ? sp : tok.find("<0x20>"));
  }
  std::string cp;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) cp.clear();
    cp.push_back(static_cast<char>(c));
    if (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 && cp.size() < 4) continue;
    const int id = tok.find(cp);
    if (id >= 0) {
      ids.push_back(id);
    } else {
      char buf[8];
      for (char b : cp) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", static_cast<unsigned char>(b));
        ids.push_back(tok.find(std::string(buf)));
      }
    }
    cp.clear();
  }
  const std::size_t first = bos ? 1 : 0;
  while (true) {
    float best = -1e10f;
    int best_id = -1;
    std::size_t at = 0;
    for (std::size_t i = first; i + 1 < ids.size(); ++i) {
      const int id = tok.find(tok.piece(ids[i]) + tok.piece(ids[i + 1]));
      if (id >= 0 && tok.score(id) > best) {
        best = tok.score(id);
        best_id = id;
        at = i;
      }
    }
    if (best_id < 0) break;
    ids[at] = best_id;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  if (eos) ids.push_back(tok.eos_id());
  return ids;
}

/// Random text for the SentencePiece comparison: letters, spaces, punctuation, multi-byte code
/// points and (sometimes) invalid bytes.
inline std::string random_text(std::mt19937& g, std::size_t max_len) {
  static const std::vector<std::string> atoms = {"a", "b", "e", "t", "h", "o", " ", " ", "the", "and", "Lily", ".",
                                                 ",", "!", "\n", "é", "日", "😀", "\xff", "\xc3", "0", "1", "'s", "  "};
  std::uniform_int_distribution<std::size_t> len(0, max_len), pick(0, atoms.size() - 1);
  std::string s;
  const std::size_t n = len(g);
  for (std::size_t i = 0; i < n; ++i) s += atoms[pick(g)];
  return s;
}

/// A scratch directory removed on destruction.
struct ScratchDir : sparq_test::TempDir {
  ScratchDir() : sparq_test::TempDir("sparq-tokbpe") {}
};

}  // namespace tokenizer_bpe_test

using namespace tokenizer_bpe_test;

TEST_CASE("BPE: GPT-2 encodings equal js-tiktoken / gpt-3-encoder token for token", "[model][tokenizer][bpe]") {
  const auto cases = gpt2_cases();
  REQUIRE(cases.size() >= 400);
  const BpeTokenizer& tok = gpt2();
  REQUIRE(tok.vocab_size() == 50257);
  std::size_t equal = 0, tokens = 0, with_special = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, false, false);
    tokens += c.ids.size();
    if (ids == c.ids) {
      ++equal;
    } else {
      INFO("text: " << nlohmann::json(c.text).dump());
      CHECK(ids == c.ids);
    }
    if (c.text.find("<|endoftext|>") != std::string::npos) ++with_special;
    CHECK(tok.decode(ids) == c.text);  // byte-level BPE is lossless
  }
  CHECK(equal == cases.size());
  CHECK(tokens > 20000);
  CHECK(with_special > 10);  // special-token parsing is exercised
  // Known facts of GPT-2's vocabulary (also in OpenAI's encoder.json).
  CHECK(tok.encode("Hello world", false, false) == std::vector<int>{15496, 995});
  CHECK(tok.find(" the") == 262);
  CHECK(tok.bytes(50256) == "<|endoftext|>");
}

TEST_CASE("BPE: pre-tokenizers split like their regular expressions", "[model][tokenizer][bpe]") {
  using V = std::vector<std::string>;
  // Expected splits are what JavaScript's String.match gives for the expressions (node 20).
  const std::string a = "Hello world's 12345  \n\n  x";
  CHECK(split(a, PreTokenizer::gpt2) == V{"Hello", " world", "'s", " 12345", "  \n\n ", " x"});
  CHECK(split(a, PreTokenizer::llama3) == V{"Hello", " world", "'s", " ", "123", "45", "  \n\n", " ", " x"});
  CHECK(split(a, PreTokenizer::qwen2) == V{"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", "  \n\n", " ", " x"});
  const std::string b = "I'LL be\tthere!!\r\n  ok?";
  CHECK(split(b, PreTokenizer::gpt2) == V{"I", "'", "LL", " be", "\t", "there", "!!", "\r\n ", " ok", "?"});
  CHECK(split(b, PreTokenizer::llama3) == V{"I", "'LL", " be", "\tthere", "!!\r\n", " ", " ok", "?"});
  const std::string c = "a  b   c\t\td ";
  CHECK(split(c, PreTokenizer::gpt2) == V{"a", " ", " b", "  ", " c", "\t", "\t", "d", " "});
  CHECK(split(c, PreTokenizer::llama3) == V{"a", " ", " b", "  ", " c", "\t", "\td", " "});
  const std::string d = "x=1234567;// \xC3\xA9\n\n\n";
  CHECK(split(d, PreTokenizer::gpt2) == V{"x", "=", "1234567", ";//", " \xC3\xA9", "\n\n\n"});
  CHECK(split(d, PreTokenizer::llama3) == V{"x", "=", "123", "456", "7", ";//", " \xC3\xA9", "\n\n\n"});
  CHECK(split("  $%^ (hi) \n", PreTokenizer::llama3) == V{" ", " $%^", " (", "hi", ")", " \n"});
  // Arabic-Indic digits are \p{N}, CJK is \p{L}.
  CHECK(split("\xD9\xA3\xD9\xA4\xD9\xA5 \xE6\x97\xA5", PreTokenizer::qwen2) ==
        V{"\xD9\xA3", "\xD9\xA4", "\xD9\xA5", " \xE6\x97\xA5"});
  // (?i:'s) also matches the long s U+017F (Unicode simple case folding, as Rust's regex does).
  CHECK(split("it'\xC5\xBF", PreTokenizer::llama3) == V{"it", "'\xC5\xBF"});
  CHECK(split("it'\xC5\xBF", PreTokenizer::gpt2) == V{"it", "'", "\xC5\xBF"});  // GPT-2's are case-sensitive
  CHECK(split("", PreTokenizer::gpt2).empty());
}

TEST_CASE("BPE: invalid UTF-8 is encoded byte by byte and decodes back", "[model][tokenizer][bpe]") {
  namespace bd = sparq::model::bpe_detail;
  CHECK(bd::utf8_at("\xC0\xAF", 0).cp == bd::invalid_cp);          // overlong '/'
  CHECK(bd::utf8_at("\xED\xA0\x80", 0).cp == bd::invalid_cp);      // surrogate
  CHECK(bd::utf8_at("\xF4\x90\x80\x80", 0).cp == bd::invalid_cp);  // above U+10FFFF
  CHECK(bd::utf8_at("\xE6\x97", 0).cp == bd::invalid_cp);          // truncated
  CHECK(bd::utf8_at("\xF0\x9F\x98\x80", 0).cp == 0x1F600);
  const BpeTokenizer& tok = gpt2();
  for (const std::string s : {"\xFF\xFE abc \xC3", "a\x80\x80" "b", "\xED\xA0\x80x", "\xE6\x97 \xE6\x97\xA5", "\xC0\xAF"}) {
    const auto ids = tok.encode(s, false, false);
    CHECK(!ids.empty());
    CHECK(tok.decode(ids) == s);
  }
  // An invalid byte is neither letter nor space: it joins a punctuation run, not a word.
  CHECK(split("ab\xFF!cd", PreTokenizer::gpt2) == std::vector<std::string>{"ab", "\xFF!", "cd"});
}

TEST_CASE("BPE: special tokens, BOS / EOS and the Tokenizer wrapper", "[model][tokenizer][bpe]") {
  const BpeTokenizer& tok = gpt2();
  const auto ids = tok.encode("a<|endoftext|>b", false, false);
  CHECK(ids == std::vector<int>{64, 50256, 65});
  const auto plain = tok.encode("a<|endoftext|>b", false, false, /*parse_special=*/false);
  CHECK(std::find(plain.begin(), plain.end(), 50256) == plain.end());
  CHECK(tok.decode(plain) == "a<|endoftext|>b");
  CHECK(tok.encode("x", true, true) == std::vector<int>{50256, 87, 50256});
  CHECK(tok.encode("x") == std::vector<int>{87});  // GPT-2 adds nothing by default

  // Leftmost match first, the longest at that position.
  BpeVocab v = gpt2_vocab();
  v.tokens.emplace_back("<a>");   // 50257
  v.tokens.emplace_back("<ab>");  // 50258
  v.tokens.emplace_back("b>");    // 50259
  v.special_ids = {50256, 50257, 50258, 50259};
  v.bos_id = 50257;
  v.add_bos = true;
  const BpeTokenizer t2(v);
  CHECK(t2.encode("<ab>", false, false) == std::vector<int>{50258});
  CHECK(t2.encode("<ab>x") == std::vector<int>{50257, 50258, 87});
  CHECK(t2.encode("<<a>b>") == std::vector<int>{50257, 27, 50257, 50259});

  // The Tokenizer wrapper forwards (what generate / perplexity call).
  const Tokenizer w{BpeTokenizer(gpt2_vocab())};
  REQUIRE(w.bpe() != nullptr);
  CHECK(w.vocab_size() == 50257);
  CHECK(w.bos_id() == 50256);
  CHECK(w.encode("Hello world", false, false) == std::vector<int>{15496, 995});
  CHECK(w.decode(50256, 995) == " world");  // no SentencePiece space rule after BOS
  CHECK(w.piece(995) == " world");
  CHECK(w.find(" world") == 995);
  CHECK_THROWS_AS(w.llama2c_bytes(), sparq::error);
  CHECK_THROWS_AS(w.score(0), sparq::error);
  // No BOS token: asking for one is an error, not a silent -1.
  BpeVocab nobos = gpt2_vocab();
  nobos.bos_id = -1;
  CHECK_THROWS_AS(BpeTokenizer(nobos).encode("x", true, false), sparq::error);
}

TEST_CASE("BPE: tokenizer.json loading (merges as strings or pairs) and its errors", "[model][tokenizer][bpe][io]") {
  const auto cases = gpt2_cases();
  const BpeVocab v = gpt2_vocab();
  for (bool pairs : {false, true}) {
    const std::string text = tokenizer_json_of(v, pairs).dump();
    const BpeTokenizer t(sparq::io::parse_tokenizer_json(text, "test", 0, 50256, 50256));
    CHECK(t.vocab_size() == 50257);
    CHECK(t.bos_id() == 50256);
    CHECK(!t.add_bos());
    for (std::size_t i = 0; i < cases.size(); i += 7) CHECK(t.encode(cases[i].text, false, false) == cases[i].ids);
  }
  // The variants below use the first 3000 merges only (parsing 50k-entry JSON is slow).
  const BpeVocab sv = gpt2_small_vocab(3000);
  const int eot = 3256;
  const BpeTokenizer small(sv);
  // Padding to the model's embedding rows; ids beyond it are an error.
  const auto padded = sparq::io::parse_tokenizer_json(tokenizer_json_of(sv, false).dump(), "test", 3300);
  CHECK(padded.tokens.size() == 3300);
  CHECK(padded.tokens[3299].empty());
  CHECK(BpeTokenizer(padded).encode("Hello world", false, false) == small.encode("Hello world", false, false));
  require_error([&] { (void)sparq::io::parse_tokenizer_json(tokenizer_json_of(sv, false).dump(), "t", 3000); },
                {"beyond the model's vocabulary"});

  // A Llama 3 style pre-tokenizer and post-processor.
  auto j = tokenizer_json_of(sv, false);
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"},
                           {"pattern", {{"Regex", std::string(sparq::io::detail::tokjson_llama3_regex)}}},
                           {"behavior", "Isolated"},
                           {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}}}}}},
      {"special_tokens", {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {eot}}}}}}};
  j["model"]["ignore_merges"] = true;
  const BpeTokenizer l3(sparq::io::parse_tokenizer_json(j.dump(), "test"));
  CHECK(l3.pre_tokenizer() == PreTokenizer::llama3);
  CHECK(l3.add_bos());
  CHECK(l3.bos_id() == eot);
  std::vector<int> want = {eot};
  for (const char* piece : {"x", " ", "123", "45"}) {  // Llama 3 splits digits in threes
    const auto p = small.encode(piece, false, false);
    want.insert(want.end(), p.begin(), p.end());
  }
  CHECK(l3.encode("x 12345") == want);
  CHECK(small.encode("x 12345", false, false) != std::vector<int>(want.begin() + 1, want.end()));

  auto bad = [&](auto edit, std::vector<std::string> parts) {
    auto b = tokenizer_json_of(sv, false);
    edit(b);
    require_error([&] { (void)BpeTokenizer(sparq::io::parse_tokenizer_json(b.dump(), "tj")); }, parts);
  };
  bad([](nlohmann::json& b) { b["model"]["type"] = "Unigram"; }, {"tj", "model.type", "Unigram"});
  bad([](nlohmann::json& b) { b["model"]["byte_fallback"] = true; }, {"model.byte_fallback"});
  bad([](nlohmann::json& b) { b["pre_tokenizer"] = {{"type", "Whitespace"}}; }, {"pre_tokenizer.type", "Whitespace"});
  bad([](nlohmann::json& b) {
        b["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}, {"behavior", "Isolated"}};
      },
      {"pre_tokenizer.pattern.Regex", "\\w+"});
  bad([](nlohmann::json& b) { b["model"]["merges"][5] = "Ġt Ġzzzz"; }, {"merge 5", "Ġzzzz"});
  bad([](nlohmann::json& b) { b["model"]["merges"][3] = "abc"; }, {"model.merges[3]", "abc"});
  bad([](nlohmann::json& b) { b["added_tokens"][0]["lstrip"] = true; }, {"added_tokens[0].lstrip"});
  bad([](nlohmann::json& b) { b["normalizer"] = {{"type", "Lowercase"}}; }, {"normalizer.type", "Lowercase"});
  bad([](nlohmann::json& b) { b["decoder"] = {{"type", "Metaspace"}}; }, {"decoder.type", "Metaspace"});
  bad([](nlohmann::json& b) { b["model"]["vocab"]["Ġthe"] = 5; }, {"id 5"});
  require_error([] { (void)sparq::io::parse_tokenizer_json("{\"model\": [", "tj"); }, {"tj", "not valid JSON"});
}

TEST_CASE("BPE: a tokenizer.json nested too deeply is an error, not a stack overflow", "[model][tokenizer][bpe][io]") {
  // Found with tests/fuzz/fuzz_tokenizer_json (a crafted input run through it): valid JSON nested
  // 50000 deep in added_tokens[0] reached nlohmann::json::dump (recursive) in the error message and
  // overflowed the stack.
  const std::string head = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [)";
  const std::size_t n = 50000;
  const std::string deep = head + std::string(n, '[') + std::string(n, ']') + "]}";
  require_error([&] { (void)sparq::io::parse_tokenizer_json(deep, "tj"); }, {"tj", "nests deeper than 64"});
  // 64 levels are accepted by the depth check (the file then fails on its contents); brackets in
  // strings do not count.
  const std::string ok = head + std::string(61, '[') + std::string(61, ']') + R"(, "[[[[{{{{"]})";
  require_error([&] { (void)sparq::io::parse_tokenizer_json(ok, "tj"); }, {"tj", "added_tokens[0]"});
}

TEST_CASE("BPE: a tokenizer.json naming one huge token id is an error, not a huge allocation", "[model][tokenizer][bpe][io]") {
  // Found by tests/fuzz/fuzz_tokenizer_json: the id 999999990 (below the 2^30 id limit) in a small
  // file made the reader allocate a billion token strings (32 GB).
  const std::string text = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 999999990}, "merges": []},
                               "pre_tokenizer": {"type": "ByteLevel"}})";
  require_error([&] { (void)sparq::io::parse_tokenizer_json(text, "tj"); }, {"tj", "token id 999999990", "unused ids"});
  // Gaps up to twice the token count + 1024, or up to the model's vocab_size, are accepted.
  const std::string gap = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1027}, "merges": []},
                              "pre_tokenizer": {"type": "ByteLevel"}})";
  CHECK(sparq::io::parse_tokenizer_json(gap, "tj").tokens.size() == 1028);
  const std::string padded = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 4999}, "merges": []},
                                 "pre_tokenizer": {"type": "ByteLevel"}})";
  CHECK(sparq::io::parse_tokenizer_json(padded, "tj", 5000).tokens.size() == 5000);
  require_error([&] { (void)sparq::io::parse_tokenizer_json(padded, "tj"); }, {"unused ids"});
}

TEST_CASE("BPE: GGUF gpt2 vocabularies read, write and load", "[model][tokenizer][bpe][io]") {
  const Tokenizer tok{BpeTokenizer(gpt2_vocab())};
  const sparq::io::GgufVocab gv = sparq::io::gguf_vocab_from_tokenizer(tok);
  CHECK(gv.model == "gpt2");
  CHECK(gv.pre == "gpt2");
  CHECK(gv.merges.size() == 50000);
  CHECK(gv.merges[0] == "Ġ t");
  CHECK(gv.token_types[50256] == 3);
  // Through a GGUF file's metadata and back.
  sparq::io::GgufWriter w;
  sparq::model::LlamaConfig c;
  c.dim = 8;
  c.hidden_dim = 16;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 2;
  c.vocab_size = 50257;
  c.seq_len = 16;
  sparq::io::gguf_llama_metadata(w, c, &gv, "t");
  const auto bytes = w.serialize();
  const auto f = sparq::io::parse_gguf(bytes.data(), bytes.size(), "mem");
  const auto back = sparq::io::gguf_vocab(f);
  CHECK(back.merges == gv.merges);
  CHECK(back.pre == "gpt2");
  CHECK(back.add_bos == 0);
  const Tokenizer t2 = sparq::io::tokenizer_from_gguf(back, 50257);
  REQUIRE(t2.bpe() != nullptr);
  const auto cases = gpt2_cases();
  for (std::size_t i = 0; i < cases.size(); i += 5) CHECK(t2.encode(cases[i].text, false, false) == cases[i].ids);
  // llama-bpe: Llama 3 rules (ignore_merges, BOS added by default).
  auto l3 = back;
  l3.pre = "llama-bpe";
  l3.add_bos = -1;
  const auto b3 = sparq::io::gguf_bpe_vocab(l3, "g");
  CHECK(b3.pre == PreTokenizer::llama3);
  CHECK(b3.ignore_merges);
  CHECK(b3.add_bos);
  auto unknown = back;
  unknown.pre = "deepseek-coder";
  require_error([&] { (void)sparq::io::gguf_bpe_vocab(unknown, "g"); }, {"g", "tokenizer.ggml.pre", "deepseek-coder"});
  unknown.pre.clear();
  require_error([&] { (void)sparq::io::gguf_bpe_vocab(unknown, "g"); }, {"tokenizer.ggml.pre", "(missing)"});
  auto other = back;
  other.model = "t5";
  require_error([&] { (void)sparq::io::tokenizer_from_gguf(other, 50257); }, {"tokenizer.ggml.model", "t5"});
}

TEST_CASE("BPE: encoding time grows linearly with the text", "[model][tokenizer][bpe]") {
  // One 200 KB word is a single pre-token (the worst case for the merge loop), then mixed text. A
  // quadratic merge loop needs ~10^10 steps here; the heap needs ~10^6.
  const BpeTokenizer& tok = gpt2();
  const std::string word(200000, 'a');
  const auto ids = tok.encode(word, false, false);
  CHECK(tok.decode(ids) == word);
  CHECK(ids.size() < word.size() / 2);
  std::string text;
  const auto cases = gpt2_cases();
  for (std::size_t i = 0; text.size() < 400000; ++i) text += cases[i % cases.size()].text;
  const auto t0 = std::chrono::steady_clock::now();
  const auto small = tok.encode(std::string_view(text).substr(0, 40000), false, false);
  const auto t1 = std::chrono::steady_clock::now();
  const auto big = tok.encode(text, false, false);
  const auto t2 = std::chrono::steady_clock::now();
  CHECK(tok.decode(big) == text);
  const double ts = std::chrono::duration<double>(t1 - t0).count(), tb = std::chrono::duration<double>(t2 - t1).count();
  INFO("40 KB: " << ts << " s, " << small.size() << " tokens; 400 KB: " << tb << " s, " << big.size() << " tokens");
  CHECK(tb < 60 * ts + 0.5);  // 10x the text: well under the 100x of a quadratic encoder
}

TEST_CASE("SentencePiece: the heap merge loop equals llama2.c's rescanning loop", "[model][tokenizer]") {
  std::mt19937 g(1234);
  auto compare = [&](const Tokenizer& tok, std::size_t n, std::size_t max_len) {
    std::size_t equal = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string s = random_text(g, max_len);
      const bool bos = (i & 1) != 0, eos = (i & 2) != 0;
      const auto got = tok.encode(s, bos, eos);
      const auto want = llama2c_reference_encode(tok, s, bos, eos);
      if (got == want) ++equal;
      else CHECK(got == want);
    }
    CHECK(equal == n);
  };
  // A synthetic vocabulary with many equal scores (ties decide by position).
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    pieces.emplace_back(buf);
  }
  for (const char* p : {" ", "a", "b", "e", "t", "h", "o", "aa", "ab", "ba", "bb", "aab", "abb", "th", "he", "the",
                        " t", " th", " the", "an", "and", " a", "Li", "ly", "Lily", " L", "é", "日", "😀", "0", "1",
                        "01", "10", "  ", "   ", ".", "'s", "ee", "eee", "tt", "oo", "ho", "ot"})
    pieces.emplace_back(p);
  std::vector<float> scores(pieces.size());
  for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<float>(static_cast<int>(i * 7 % 5));
  compare(Tokenizer(pieces, scores), 3000, 40);
  // The real stories260K vocabulary (512 pieces), when the shared data is present.
  const std::string tpath = std::string(SPARQ_DATA_DIR) + "/models/tok512.bin";
  if (std::filesystem::exists(tpath)) compare(Tokenizer::read_llama2c(tpath, 512), 2000, 60);
  // Long input: a quadratic loop would take minutes; this is linearithmic.
  const Tokenizer tok(pieces, scores);
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "the Lily aab ";
  const auto ids = tok.encode(big, true, false);
  CHECK(ids.size() < big.size() * 2 / 3);
  CHECK(tok.decode(std::vector<int>(ids.begin() + 1, ids.end()), tok.bos_id()) == big);
}

TEST_CASE("BPE: io::load reads a HF directory's tokenizer.json and a GGUF gpt2 vocabulary", "[model][tokenizer][bpe][io]") {
  // A small model whose embedding has more rows (300) than the tokenizer has tokens (257 + 1).
  auto cfg = model_test::small_config();
  cfg.vocab_size = 300;
  const auto w = model_test::random_weights(cfg, 11u);
  const BpeVocab sv = gpt2_small_vocab(1);  // 256 bytes, the merge "Ġ t", <|endoftext|> = 257
  const BpeTokenizer ref(sv);
  {
    ScratchDir d;
    sparq::io::write_hf_llama(d.path.string(), w);
    // config.json of write_hf_llama has no bos/eos; the post-processor names BOS.
    auto j = tokenizer_json_of(sv, false);
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<|endoftext|>"}}}}, {{"Sequence", {{"id", "A"}}}}}},
        {"special_tokens", {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {257}}}}}}};
    std::ofstream(d.path / "tokenizer.json") << j.dump();
    const auto loaded = sparq::io::load(d.path.string());
    REQUIRE(loaded.tokenizer.bpe() != nullptr);
    CHECK(loaded.tokenizer_source == (d.path / "tokenizer.json").string());
    CHECK(loaded.tokenizer.vocab_size() == 300);
    CHECK(loaded.tokenizer.bos_id() == 257);
    CHECK(loaded.tokenizer.encode(" t t", true, false) == std::vector<int>{257, 256, 256});
    CHECK(loaded.vocab.model == "gpt2");
    CHECK(loaded.vocab.tokens[299] == "[PAD299]");
    // The same model and vocabulary as a GGUF file: io::load gives the same tokenizer back.
    const std::string g = (d.path / "m.gguf").string();
    sparq::io::write_gguf_llama(g, w, &loaded.vocab);
    const auto lg = sparq::io::load(g);
    REQUIRE(lg.tokenizer.bpe() != nullptr);
    CHECK(lg.tokenizer.bos_id() == 257);
    CHECK(lg.tokenizer.bpe()->add_bos());
    CHECK(lg.tokenizer.piece(299).empty());
    for (const std::string t : {"a t tt", "x<|endoftext|> t", "\xC3\xA9 t"})
      CHECK(lg.tokenizer.encode(t, true, false) == ref.encode(t, true, false));
  }
  {
    // A tokenizer.json that is SentencePiece-style: the load names the field.
    ScratchDir d;
    sparq::io::write_hf_llama(d.path.string(), w);
    auto j = tokenizer_json_of(sv, false);
    j["model"]["byte_fallback"] = true;
    std::ofstream(d.path / "tokenizer.json") << j.dump();
    require_error([&] { (void)sparq::io::load(d.path.string()); }, {"tokenizer.json", "model.byte_fallback"});
  }
}
