// Tokenizer: the tokenizer of a model, either SentencePiece-style BPE (llama2.c tokenizer files, GGUF
// `llama` vocabularies: pieces with scores, byte fallback) or byte-level BPE with ranked merges
// (tokenizer.json, GGUF `gpt2` vocabularies: see BpeTokenizer in tokenizer_bpe.hpp, which a
// Tokenizer built from one forwards every call to).
//
// The rest of this comment is about the SentencePiece kind.
//
// Vocabulary: `tokens[i]` is the byte string of id i, `scores[i]` its merge priority.
// Byte-fallback tokens are spelled "<0xHH>" (two upper- or lower-case hex digits); in the
// llama2.c vocabularies id 0 is <unk>, 1 BOS, 2 EOS and ids 3..258 are the bytes 0x00..0xFF.
//
// Encoding (exactly llama2.c's `encode`):
//   1. optional BOS;
//   2. when the text is non-empty, a "dummy prefix" token for " ";
//   3. the text is cut into UTF-8 code points (a lead byte plus at most 3 continuation bytes);
//      each code point that is a vocabulary entry becomes that id, otherwise each of its bytes
//      becomes its byte-fallback token;
//   4. repeatedly, over all adjacent pairs, the pair whose concatenation is a vocabulary entry with
//      the highest score (the leftmost on ties) is merged, until no pair merges (llama2.c rescans
//      all pairs per merge; here a heap of candidate pairs gives the same merges in O(n log n));
//   5. optional EOS.
// Decoding a piece (llama2.c's `decode`): after BOS a leading space is dropped; "<0xHH>" pieces
// become the raw byte 0xHH; everything else is the piece's bytes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/model/tokenizer_bpe.hpp"

namespace sparq::model {

class Tokenizer {
 public:
  /// How the vocabulary spells a space.
  enum class SpaceMarker : std::uint8_t {
    plain,          ///< spaces are " " (llama2.c tokenizer files)
    sentencepiece,  ///< spaces are "▁" (U+2581, GGUF/HF vocabularies): mapped to " " on construction
  };

  Tokenizer() = default;

  /// A byte-level BPE tokenizer (every call below forwards to it; BOS / EOS are its own).
  explicit Tokenizer(BpeTokenizer bpe)
      : bpe_(std::make_shared<const BpeTokenizer>(std::move(bpe))), bos_(bpe_->bos_id()), eos_(bpe_->eos_id()) {}

  /// The byte-level BPE tokenizer, or nullptr for the SentencePiece kind.
  [[nodiscard]] const BpeTokenizer* bpe() const noexcept { return bpe_.get(); }

  /// Builds a tokenizer from an in-memory vocabulary (e.g. GGUF `tokenizer.ggml.tokens/scores`).
  /// Throws sparq::error if the sizes differ, the vocabulary is empty, an id is out of range or a
  /// score is not finite.
  Tokenizer(std::vector<std::string> tokens, std::vector<float> scores, int bos_id = 1,
            int eos_id = 2, SpaceMarker spaces = SpaceMarker::plain)
      : tokens_(std::move(tokens)), scores_(std::move(scores)), bos_(bos_id), eos_(eos_id) {
    SPARQ_CHECK(!tokens_.empty(), "Tokenizer: empty vocabulary");
    SPARQ_CHECK(tokens_.size() == scores_.size(), "Tokenizer: ", tokens_.size(), " tokens but ",
                scores_.size(), " scores (expected equal counts)");
    SPARQ_CHECK(tokens_.size() < (std::size_t{1} << 30), "Tokenizer: vocabulary of ",
                tokens_.size(), " entries is too large");
    const int n = static_cast<int>(tokens_.size());
    SPARQ_CHECK(bos_ >= 0 && bos_ < n, "Tokenizer: bos_id = ", bos_, ", expected 0..", n - 1);
    SPARQ_CHECK(eos_ >= 0 && eos_ < n, "Tokenizer: eos_id = ", eos_, ", expected 0..", n - 1);
    if (spaces == SpaceMarker::sentencepiece) {
      for (auto& t : tokens_) t = replace_sentencepiece_space(t);
    }
    build_index();
  }

  /// Parses a llama2.c tokenizer file held in memory: uint32 max_token_length, then per token
  /// {float32 score, int32 length, length bytes}. With `vocab_size` > 0 exactly that many records
  /// are read and the data must end there; with 0 records are read until the end of the data.
  /// Never reads out of bounds: truncated records, negative or over-long lengths, non-finite scores
  /// and trailing bytes throw sparq::error.
  static Tokenizer parse_llama2c(const char* data, std::size_t size, std::size_t vocab_size = 0,
                                 const std::string& what = "llama2.c tokenizer") {
    SPARQ_CHECK(size >= 4, what, ": ", size, " bytes is too short for the 4-byte header");
    std::uint32_t max_len = 0;
    std::memcpy(&max_len, data, 4);
    SPARQ_CHECK(max_len > 0 && max_len <= 4096, what, ": max_token_length = ", max_len,
                ", expected 1..4096");
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::size_t p = 4;
    while (vocab_size ? tokens.size() < vocab_size : p < size) {
      const std::size_t id = tokens.size();
      SPARQ_CHECK(size - p >= 8, what, ": record ", id, " is truncated at byte offset ", p,
                  " (needs 8 header bytes, ", size - p, " left)");
      float score = 0;
      std::int32_t len = 0;
      std::memcpy(&score, data + p, 4);
      std::memcpy(&len, data + p + 4, 4);
      p += 8;
      SPARQ_CHECK(std::isfinite(score), what, ": record ", id, " has non-finite score ", score);
      SPARQ_CHECK(len >= 0 && static_cast<std::uint32_t>(len) <= max_len, what, ": record ", id,
                  " has length ", len, ", expected 0..max_token_length = ", max_len);
      SPARQ_CHECK(static_cast<std::size_t>(len) <= size - p, what, ": record ", id, " needs ", len,
                  " bytes at offset ", p, " but only ", size - p, " are left");
      tokens.emplace_back(data + p, static_cast<std::size_t>(len));
      scores.push_back(score);
      p += static_cast<std::size_t>(len);
      SPARQ_CHECK(tokens.size() < (std::size_t{1} << 24), what, ": more than 2^24 records");
    }
    SPARQ_CHECK(p == size, what, ": ", size - p, " trailing bytes after ", tokens.size(),
                " records (expected the file to end there)");
    SPARQ_CHECK(tokens.size() >= 3, what, ": ", tokens.size(),
                " records, expected at least 3 (<unk>, BOS, EOS)");
    Tokenizer t(std::move(tokens), std::move(scores), 1, 2);
    t.max_token_length_ = max_len;
    return t;
  }

  /// The tokenizer as llama2.c tokenizer-file bytes (parse_llama2c reads them back to an equal
  /// vocabulary; BOS / EOS ids are not part of that format).
  [[nodiscard]] std::vector<char> llama2c_bytes() const {
    SPARQ_CHECK(!bpe_, "Tokenizer::llama2c_bytes: a byte-level BPE tokenizer (merges) has no llama2.c form");
    std::vector<char> out(4);
    std::memcpy(out.data(), &max_token_length_, 4);
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const float score = scores_[i];
      const auto len = static_cast<std::int32_t>(tokens_[i].size());
      const std::size_t p = out.size();
      out.resize(p + 8 + tokens_[i].size());
      std::memcpy(out.data() + p, &score, 4);
      std::memcpy(out.data() + p + 4, &len, 4);
      if (len) std::memcpy(out.data() + p + 8, tokens_[i].data(), tokens_[i].size());
    }
    return out;
  }

  /// Reads a llama2.c tokenizer file (see parse_llama2c).
  static Tokenizer read_llama2c(const std::string& path, std::size_t vocab_size = 0) {
    const auto buf = sparq::detail::read_file(path);
    return parse_llama2c(buf.data(), buf.size(), vocab_size, "tokenizer '" + path + "'");
  }

  /// Replaces every "▁" (U+2581, bytes E2 96 81) by a space.
  [[nodiscard]] static std::string replace_sentencepiece_space(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
      if (i + 2 < s.size() && static_cast<unsigned char>(s[i]) == 0xE2 &&
          static_cast<unsigned char>(s[i + 1]) == 0x96 && static_cast<unsigned char>(s[i + 2]) == 0x81) {
        out.push_back(' ');
        i += 3;
      } else {
        out.push_back(s[i++]);
      }
    }
    return out;
  }

  [[nodiscard]] std::size_t vocab_size() const noexcept { return bpe_ ? bpe_->vocab_size() : tokens_.size(); }
  /// BOS / EOS ids (-1: a byte-level BPE vocabulary without one).
  [[nodiscard]] int bos_id() const noexcept { return bos_; }
  [[nodiscard]] int eos_id() const noexcept { return eos_; }
  [[nodiscard]] std::uint32_t max_token_length() const noexcept { return max_token_length_; }
  /// The piece of `id` as stored (byte-level BPE: the bytes it decodes to; throws sparq::error when
  /// out of range).
  [[nodiscard]] const std::string& piece(int id) const {
    if (bpe_) return bpe_->bytes(id);
    check_id(id);
    return tokens_[static_cast<std::size_t>(id)];
  }
  [[nodiscard]] float score(int id) const {
    SPARQ_CHECK(!bpe_, "Tokenizer::score: a byte-level BPE tokenizer has merge ranks, not scores");
    check_id(id);
    return scores_[static_cast<std::size_t>(id)];
  }
  /// Id of an exact piece, or -1.
  [[nodiscard]] int find(const std::string& s) const {
    if (bpe_) return bpe_->find(s);
    const auto it = index_.find(s);
    return it == index_.end() ? -1 : it->second;
  }
  [[nodiscard]] int find(std::string_view s) const { return find(std::string(s)); }
  [[nodiscard]] int find(const char* s) const { return find(std::string(s)); }

  /// Encodes `text` as llama2.c does (see the file comment). Throws sparq::error when a byte has
  /// no byte-fallback token in this vocabulary.
  /// Byte-level BPE: BpeTokenizer::encode with special-token parsing.
  [[nodiscard]] std::vector<int> encode(std::string_view text, bool bos, bool eos) const {
    if (bpe_) return bpe_->encode(text, bos, eos, true);
    SPARQ_CHECK(!tokens_.empty(), "Tokenizer::encode: empty tokenizer");
    std::vector<int> ids;
    ids.reserve(text.size() + 3);
    if (bos) ids.push_back(bos_);
    if (!text.empty()) {
      const int space = find(" ");
      if (space >= 0) {
        ids.push_back(space);
      } else {
        ids.push_back(byte_token(static_cast<unsigned char>(' ')));
      }
    }
    std::string cp;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      if ((c & 0xC0) != 0x80) cp.clear();  // a lead byte (or ASCII) starts a new code point
      cp.push_back(static_cast<char>(c));
      const bool next_is_continuation =
          i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
      if (next_is_continuation && cp.size() < 4) continue;
      const int id = find(cp);
      if (id >= 0) {
        ids.push_back(id);
      } else {
        for (char b : cp) ids.push_back(byte_token(static_cast<unsigned char>(b)));
      }
      cp.clear();
    }
    merge_greedy(ids, bos ? 1 : 0);
    if (eos) ids.push_back(eos_);
    return ids;
  }

  /// The bytes that token `id` prints as when it follows `prev` (llama2.c rules: the leading space
  /// of the piece after BOS is dropped; "<0xHH>" is the raw byte).
  [[nodiscard]] std::string decode(int prev, int id) const {
    if (bpe_) return bpe_->bytes(id);
    const std::string& p = piece(id);
    std::string_view s = p;
    if (prev == bos_ && !s.empty() && s.front() == ' ') s.remove_prefix(1);
    int byte = -1;
    if (parse_byte_piece(s, byte)) return std::string(1, static_cast<char>(byte));
    return std::string(s);
  }

  /// Decodes a whole sequence; `ids[0]` is decoded as if preceded by `prev`.
  [[nodiscard]] std::string decode(const std::vector<int>& ids, int prev = -1) const {
    std::string out;
    for (int id : ids) {
      out += decode(prev, id);
      prev = id;
    }
    return out;
  }

  /// True when `s` is exactly "<0xHH>"; stores the byte value.
  [[nodiscard]] static bool parse_byte_piece(std::string_view s, int& byte) noexcept {
    if (s.size() != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return false;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(s[3]), lo = hex(s[4]);
    if (hi < 0 || lo < 0) return false;
    byte = hi * 16 + lo;
    return true;
  }

 private:
  void check_id(int id) const {
    SPARQ_CHECK(id >= 0 && static_cast<std::size_t>(id) < tokens_.size(), "Tokenizer: token id ",
                id, " is outside the vocabulary 0..", tokens_.size() - 1);
  }

  /// The greedy merge loop of llama2.c's encode on ids[first..]: repeatedly the adjacent pair whose
  /// concatenated piece is in the vocabulary with the highest score (the leftmost on ties, and only
  /// scores above -1e10) becomes that piece. llama2.c rescans every pair per merge (quadratic); here
  /// candidate pairs sit in a binary heap ordered by (score, leftmost) over a doubly linked list of
  /// symbols, each merge pushes the two new neighbouring pairs, and an entry whose symbols have
  /// changed since it was pushed (version counters) is skipped when popped: O(n log n), the same
  /// result.
  void merge_greedy(std::vector<int>& ids, std::size_t first) const {
    if (ids.size() < first + 2) return;
    const std::size_t n = ids.size() - first;
    int* id = ids.data() + first;
    std::vector<std::uint32_t> next(n), version(n, 0);
    std::vector<std::uint32_t> prev(n);
    constexpr std::uint32_t none = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? static_cast<std::uint32_t>(i + 1) : none;
      prev[i] = i > 0 ? static_cast<std::uint32_t>(i - 1) : none;
    }
    struct Cand {
      float score;
      std::uint32_t left, right, vl, vr;
      int merged;
    };
    // Max-heap on score; among equal scores the smallest (leftmost) position on top.
    auto lower = [](const Cand& a, const Cand& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::vector<Cand> heap;
    heap.reserve(n);
    std::string merged;
    auto push = [&](std::uint32_t left) {
      if (left == none || next[left] == none) return;
      const std::uint32_t right = next[left];
      merged = tokens_[static_cast<std::size_t>(id[left])];
      merged += tokens_[static_cast<std::size_t>(id[right])];
      const int m = find(merged);
      if (m < 0 || !(scores_[static_cast<std::size_t>(m)] > -1e10f)) return;
      heap.push_back({scores_[static_cast<std::size_t>(m)], left, right, version[left], version[right], m});
      std::push_heap(heap.begin(), heap.end(), lower);
    };
    for (std::uint32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), lower);
      const Cand c = heap.back();
      heap.pop_back();
      if (version[c.left] != c.vl || version[c.right] != c.vr || next[c.left] != c.right) continue;
      id[c.left] = c.merged;
      ++version[c.left];
      ++version[c.right];  // the right symbol is gone
      next[c.left] = next[c.right];
      if (next[c.right] != none) prev[next[c.right]] = c.left;
      push(prev[c.left]);
      push(c.left);
    }
    std::size_t w = 0;
    for (std::uint32_t i = 0; i != none; i = next[i]) id[w++] = id[i];
    ids.resize(first + w);
  }

  [[nodiscard]] int byte_token(unsigned char b) const {
    const int id = byte_ids_[b];
    SPARQ_CHECK(id >= 0, "Tokenizer::encode: byte 0x", static_cast<int>(b),
                " (decimal) has no <0xHH> fallback token in the vocabulary");
    return id;
  }

  void build_index() {
    index_.clear();
    index_.reserve(tokens_.size() * 2);
    for (auto& b : byte_ids_) b = -1;
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      if (tokens_[i].size() > max_token_length_) {
        max_token_length_ = static_cast<std::uint32_t>(tokens_[i].size());
      }
      // First occurrence wins for duplicate pieces (as a binary search over a stable sort would).
      index_.emplace(tokens_[i], static_cast<int>(i));
      int byte = -1;
      if (parse_byte_piece(tokens_[i], byte) && byte_ids_[static_cast<std::size_t>(byte)] < 0) {
        byte_ids_[static_cast<std::size_t>(byte)] = static_cast<int>(i);
      }
    }
  }

  std::shared_ptr<const BpeTokenizer> bpe_;  // set: the byte-level BPE kind
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
  int byte_ids_[256] = {};
  int bos_ = 1;
  int eos_ = 2;
  std::uint32_t max_token_length_ = 0;
};

}  // namespace sparq::model
