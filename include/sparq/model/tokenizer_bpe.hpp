// BpeTokenizer: byte-level BPE with ranked merges (GPT-2, Llama 3, Qwen2), its pre-tokenizers and
// special tokens.
//
// Vocabulary. Ordinary tokens are spelled in GPT-2's byte-to-unicode alphabet: each byte b maps to
// one printable code point (the 188 printable Latin-1 bytes '!'..'~', '¡'..'¬', '®'..'ÿ' to
// themselves, the other 68 bytes, in increasing order, to U+0100, U+0101, ...), so " the" is
// spelled "Ġthe". A merge "a b" of rank r says: the adjacent tokens spelled a and b become the token
// spelled ab; lower rank = applied first. Special (added) tokens are spelled as their raw text.
//
// Encoding `text` (docs/tokenizers.md has the details and the reasons):
//   1. optional BOS;
//   2. with special-token parsing on, the text is cut at the special tokens: leftmost match first,
//      the longest one at that position (HF's added-token splitting);
//   3. each remaining segment is pre-tokenized (PreTokenizer: the GPT-2 or the Llama 3 / Qwen2
//      regular expression, implemented by hand, on the code points of the UTF-8 text; a byte that is
//      not part of a valid UTF-8 sequence is a code point of its own that is neither letter, number
//      nor white space);
//   4. each pre-token becomes one token per byte, then merges apply, lowest rank first and leftmost
//      first among equal ranks, until no adjacent pair has a merge. A binary heap of candidate pairs
//      keyed (rank, position) over a doubly linked list of symbols makes this O(k log k) for a
//      pre-token of k bytes; stale heap entries are skipped when popped. With `ignore_merges`
//      (Llama 3) a pre-token that is itself a vocabulary entry is emitted as that token;
//   5. optional EOS.
// The whole encoding is O(n log n) in the text length n (linear pre-tokenization and special-token
// matching; the log factor only within a pre-token).
//
// Decoding concatenates the bytes of the tokens (special tokens: their text).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/model/tokenizer_unicode.hpp"

namespace sparq::model {

/// The pre-tokenization rule (a regular expression in the reference implementations).
enum class PreTokenizer : std::uint8_t {
  /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
  gpt2,
  /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
  llama3,
  /// Qwen2: as llama3 with `\p{N}` (one digit per pre-token) instead of `\p{N}{1,3}`.
  qwen2,
};

/// Name of a pre-tokenizer as GGUF's tokenizer.ggml.pre spells it ("gpt2", "llama-bpe", "qwen2").
[[nodiscard]] inline const char* pre_tokenizer_name(PreTokenizer p) noexcept {
  switch (p) {
    case PreTokenizer::gpt2: return "gpt2";
    case PreTokenizer::llama3: return "llama-bpe";
    case PreTokenizer::qwen2: return "qwen2";
  }
  return "?";
}

namespace bpe_detail {

/// One decoded code point: its value (or invalid_cp for a byte outside valid UTF-8) and length.
inline constexpr std::uint32_t invalid_cp = 0xFFFFFFFFu;
struct CodePoint {
  std::uint32_t cp;
  std::uint32_t len;
};

/// Decodes the code point at s[i] (i < s.size()). Strict UTF-8: overlong forms, surrogates, values
/// above U+10FFFF, stray continuation bytes and truncated sequences give {invalid_cp, 1}.
[[nodiscard]] inline CodePoint utf8_at(std::string_view s, std::size_t i) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  std::uint32_t len = 0, cp = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) len = 2, cp = b0 & 0x1Fu, min = 0x80;
  else if ((b0 & 0xF0) == 0xE0) len = 3, cp = b0 & 0x0Fu, min = 0x800;
  else if ((b0 & 0xF8) == 0xF0) len = 4, cp = b0 & 0x07u, min = 0x10000;
  else return {invalid_cp, 1};
  if (s.size() - i < len) return {invalid_cp, 1};
  for (std::uint32_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {invalid_cp, 1};
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {invalid_cp, 1};
  return {cp, len};
}

/// Appends the UTF-8 encoding of a code point (<= U+10FFFF, not a surrogate).
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Classes of a code point used by the pre-tokenizers.
enum : std::uint8_t { cls_letter = 1, cls_number = 2, cls_space = 4, cls_newline = 8 };

[[nodiscard]] inline std::uint8_t classify(std::uint32_t cp) noexcept {
  if (cp == invalid_cp) return 0;
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return cls_letter;
    if (cp >= '0' && cp <= '9') return cls_number;
    if (cp == '\r' || cp == '\n') return cls_space | cls_newline;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return cls_space;
    return 0;
  }
  if (unicode::is_letter(cp)) return cls_letter;
  if (unicode::is_number(cp)) return cls_number;
  if (unicode::is_white_space(cp)) return cls_space;
  return 0;
}

/// GPT-2's byte -> code point map (bytes_to_unicode).
[[nodiscard]] inline const std::array<std::uint32_t, 256>& byte_to_cp() {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

/// The byte-level spelling of raw bytes ("Ġthe" for " the").
[[nodiscard]] inline std::string bytes_to_spelling(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, byte_to_cp()[static_cast<unsigned char>(c)]);
  return out;
}

/// The raw bytes of a byte-level spelling; false when a code point is not in the alphabet.
[[nodiscard]] inline bool spelling_to_bytes(std::string_view s, std::string& out) {
  static const std::unordered_map<std::uint32_t, unsigned char> inverse = [] {
    std::unordered_map<std::uint32_t, unsigned char> m;
    for (std::uint32_t b = 0; b < 256; ++b) m.emplace(byte_to_cp()[b], static_cast<unsigned char>(b));
    return m;
  }();
  out.clear();
  for (std::size_t i = 0; i < s.size();) {
    const CodePoint c = utf8_at(s, i);
    const auto it = inverse.find(c.cp);
    if (c.cp == invalid_cp || it == inverse.end()) return false;
    out.push_back(static_cast<char>(it->second));
    i += c.len;
  }
  return true;
}

/// Pre-tokenizes `text` with rule `kind`, calling emit(std::string_view piece) for each pre-token in
/// order (the pieces concatenate to `text`). Each alternative of the regular expression is tried in
/// order at the current position, exactly as a backtracking engine would, but every test is a
/// look at a bounded number of code points or one scan of a run, so the cost is linear.
template <class Emit>
void pretokenize(std::string_view text, PreTokenizer kind, Emit&& emit) {
  // Decode once: byte offset and class of every code point (invalid bytes are code points too).
  std::vector<std::uint32_t> off;
  std::vector<std::uint32_t> cps;
  std::vector<std::uint8_t> cls;
  off.reserve(text.size() + 1);
  cps.reserve(text.size());
  cls.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const CodePoint c = utf8_at(text, i);
    off.push_back(static_cast<std::uint32_t>(i));
    cps.push_back(c.cp);
    cls.push_back(classify(c.cp));
    i += c.len;
  }
  off.push_back(static_cast<std::uint32_t>(text.size()));
  const std::size_t n = cps.size();
  auto L = [&](std::size_t k) { return k < n && (cls[k] & cls_letter) != 0; };
  auto N = [&](std::size_t k) { return k < n && (cls[k] & cls_number) != 0; };
  auto S = [&](std::size_t k) { return k < n && (cls[k] & cls_space) != 0; };
  auto NL = [&](std::size_t k) { return k < n && (cls[k] & cls_newline) != 0; };
  auto other = [&](std::size_t k) { return k < n && cls[k] == 0; };  // [^\s\p{L}\p{N}]
  const bool fold = kind != PreTokenizer::gpt2;  // (?i:...) around the contractions
  auto lower = [&](std::size_t k) -> std::uint32_t {
    if (k >= n) return 0;
    std::uint32_t c = cps[k];
    if (fold) {
      if (c >= 'A' && c <= 'Z') c += 32;
      if (c == 0x17F) c = 's';  // LATIN SMALL LETTER LONG S folds to 's' (simple case folding)
    }
    return c;
  };
  // 's|'t|'re|'ve|'m|'ll|'d: returns the end, or 0 when no contraction starts at i.
  auto contraction = [&](std::size_t i) -> std::size_t {
    if (cps[i] != '\'' || i + 1 >= n) return 0;
    const std::uint32_t a = lower(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    const std::uint32_t b = lower(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
  };
  auto run = [&](std::size_t k, auto pred) {
    while (pred(k)) ++k;
    return k;
  };
  // \s+(?!\S) then \s+, at a white-space code point i.
  auto spaces = [&](std::size_t i) -> std::size_t {
    const std::size_t j = run(i, S);
    if (j == n || j - i < 2) return j;  // at the end (nothing follows) or a single space: \s+
    return j - 1;                       // leave the last space to go with what follows
  };
  const std::size_t max_digits = kind == PreTokenizer::llama3 ? 3 : kind == PreTokenizer::qwen2 ? 1 : 0;
  std::size_t i = 0;
  while (i < n) {
    std::size_t j = contraction(i);
    if (j == 0) {
      if (kind == PreTokenizer::gpt2) {
        const std::size_t k = i + (cps[i] == ' ' ? 1 : 0);  // " ?"
        if (L(k)) j = run(k, L);                             // ' ?\p{L}+'
        else if (N(k)) j = run(k, N);                        // ' ?\p{N}+'
        else if (other(k)) j = run(k, other);                // ' ?[^\s\p{L}\p{N}]+'
        else j = spaces(i);                                  // i is white space
      } else if (L(i)) {
        j = run(i, L);  // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional part empty
      } else if (!NL(i) && !N(i) && L(i + 1)) {
        j = run(i + 1, L);  // ... with one leading non-letter, non-number, non-newline
      } else if (N(i)) {
        j = i + 1;  // \p{N}{1,3} (Qwen2: \p{N})
        while (j - i < max_digits && N(j)) ++j;
      } else if (other(i) || (cps[i] == ' ' && other(i + 1))) {
        j = run(i + (cps[i] == ' ' ? 1 : 0), other);  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        j = run(j, NL);
      } else {
        // i is white space: \s*[\r\n]+ ends after the run's last newline, if it has one.
        const std::size_t e = run(i, S);
        std::size_t m = e;
        while (m > i && !NL(m - 1)) --m;
        j = m > i ? m : spaces(i);
      }
    }
    emit(text.substr(off[i], off[j] - off[i]));
    i = j;
  }
}

/// Hash of std::string keys that also looks up std::string_view (no temporary strings).
struct TransparentStringHash {
  using is_transparent = void;
  [[nodiscard]] std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace bpe_detail

/// Everything a BpeTokenizer is built from (what tokenizer.json or a GGUF gpt2 vocabulary holds).
struct BpeVocab {
  /// Token spellings by id: byte-level for ordinary tokens, raw text for special tokens. An empty
  /// string is an unused id (e.g. padding up to the model's embedding rows); it never matches.
  std::vector<std::string> tokens;
  /// Merges in rank order (rank = index), each the two spellings that merge.
  std::vector<std::pair<std::string, std::string>> merges;
  /// Ids of the special (added) tokens matched in the raw text before pre-tokenization.
  std::vector<int> special_ids;
  PreTokenizer pre = PreTokenizer::gpt2;
  bool ignore_merges = false;     ///< a pre-token that is a vocabulary entry is emitted whole
  bool add_prefix_space = false;  ///< a space is put before each text segment not starting with one
  int bos_id = -1, eos_id = -1;   ///< -1 when the vocabulary has none
  bool add_bos = false, add_eos = false;  ///< what encode(text) adds
};

class BpeTokenizer {
 public:
  BpeTokenizer() = default;

  /// Builds the tokenizer. Throws sparq::error naming the entry when a merge names a spelling
  /// that is not a token (or whose concatenation is not), a special id is out of range or empty,
  /// or the vocabulary is empty or too large.
  explicit BpeTokenizer(BpeVocab v) : v_(std::move(v)) {
    const std::size_t nt = v_.tokens.size();
    SPARQ_CHECK(nt > 0, "BpeTokenizer: empty vocabulary");
    SPARQ_CHECK(nt < (std::size_t{1} << 30), "BpeTokenizer: vocabulary of ", nt, " entries is too large");
    auto check_special = [&](int id, const char* what) {
      SPARQ_CHECK(id >= -1 && id < static_cast<int>(nt), "BpeTokenizer: ", what, " = ", id, ", expected -1..",
                  nt - 1);
    };
    check_special(v_.bos_id, "bos_id");
    check_special(v_.eos_id, "eos_id");
    SPARQ_CHECK(!v_.add_bos || v_.bos_id >= 0, "BpeTokenizer: add_bos is set but there is no BOS token");
    SPARQ_CHECK(!v_.add_eos || v_.eos_id >= 0, "BpeTokenizer: add_eos is set but there is no EOS token");
    std::vector<char> is_special(nt, 0);
    for (int id : v_.special_ids) {
      SPARQ_CHECK(id >= 0 && static_cast<std::size_t>(id) < nt, "BpeTokenizer: special token id ", id,
                  " is outside the vocabulary 0..", nt - 1);
      SPARQ_CHECK(!v_.tokens[static_cast<std::size_t>(id)].empty(), "BpeTokenizer: special token ", id,
                  " has empty text");
      is_special[static_cast<std::size_t>(id)] = 1;
    }
    // Bytes of every token; index of spellings (for merges) and of bytes (for ignore_merges).
    bytes_.resize(nt);
    std::unordered_map<std::string_view, int> spelled;
    spelled.reserve(nt * 2);
    index_.reserve(nt * 2);
    byte_ids_.fill(-1);
    for (std::size_t i = 0; i < nt; ++i) {
      const std::string& t = v_.tokens[i];
      if (t.empty()) continue;
      const int id = static_cast<int>(i);
      if (is_special[i] || !bpe_detail::spelling_to_bytes(t, bytes_[i])) bytes_[i] = t;
      if (is_special[i]) continue;
      spelled.emplace(t, id);  // the first of duplicate spellings wins
      index_.emplace(bytes_[i], id);
      if (bytes_[i].size() == 1 && byte_ids_[static_cast<unsigned char>(bytes_[i][0])] < 0) {
        byte_ids_[static_cast<unsigned char>(bytes_[i][0])] = id;
      }
    }
    merges_.reserve(v_.merges.size() * 2);
    SPARQ_CHECK(v_.merges.size() < (std::size_t{1} << 31), "BpeTokenizer: too many merges");
    std::string cat;
    for (std::size_t r = 0; r < v_.merges.size(); ++r) {
      const auto& [a, b] = v_.merges[r];
      const auto ia = spelled.find(a), ib = spelled.find(b);
      cat = a;
      cat += b;
      const auto ic = spelled.find(cat);
      SPARQ_CHECK(ia != spelled.end() && ib != spelled.end() && ic != spelled.end(), "BpeTokenizer: merge ", r,
                  " '", a, " ", b, "' names ", ia == spelled.end() ? "'" + a + "'"
                                                 : ib == spelled.end() ? "'" + b + "'" : "'" + cat + "'",
                  ", which is not a token of the vocabulary");
      // The first (lowest-rank) merge of a pair wins, as in a rank map built in order.
      merges_.emplace(pair_key(ia->second, ib->second),
                      Merge{static_cast<std::uint32_t>(r), static_cast<std::int32_t>(ic->second)});
    }
    // Special tokens: a byte trie for leftmost-longest matching.
    trie_.emplace_back();
    for (int id : v_.special_ids) {
      std::size_t node = 0;
      for (char c : v_.tokens[static_cast<std::size_t>(id)]) {
        const auto byte = static_cast<unsigned char>(c);
        int next = trie_child(node, byte);
        if (next < 0) {
          next = static_cast<int>(trie_.size());
          trie_[node].children.emplace_back(byte, next);
          trie_.emplace_back();
        }
        node = static_cast<std::size_t>(next);
      }
      if (trie_[node].token < 0) trie_[node].token = id;
      first_bytes_[static_cast<unsigned char>(v_.tokens[static_cast<std::size_t>(id)][0])] = true;
    }
  }

  [[nodiscard]] const BpeVocab& vocab() const noexcept { return v_; }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return v_.tokens.size(); }
  [[nodiscard]] int bos_id() const noexcept { return v_.bos_id; }
  [[nodiscard]] int eos_id() const noexcept { return v_.eos_id; }
  [[nodiscard]] bool add_bos() const noexcept { return v_.add_bos; }
  [[nodiscard]] bool add_eos() const noexcept { return v_.add_eos; }
  [[nodiscard]] PreTokenizer pre_tokenizer() const noexcept { return v_.pre; }
  /// The bytes token `id` decodes to (throws sparq::error when out of range).
  [[nodiscard]] const std::string& bytes(int id) const {
    SPARQ_CHECK(id >= 0 && static_cast<std::size_t>(id) < bytes_.size(), "BpeTokenizer: token id ", id,
                " is outside the vocabulary 0..", bytes_.size() - 1);
    return bytes_[static_cast<std::size_t>(id)];
  }
  /// Id of the ordinary token whose bytes are `b`, or -1.
  [[nodiscard]] int find(std::string_view b) const {
    const auto it = index_.find(b);
    return it == index_.end() ? -1 : it->second;
  }

  /// encode(text, add_bos(), add_eos(), true): the rules of the vocabulary.
  [[nodiscard]] std::vector<int> encode(std::string_view text) const {
    return encode(text, v_.add_bos, v_.add_eos, true);
  }

  /// Encodes `text` (see the file comment). `parse_special`: special-token text in `text` becomes
  /// the special token (HF tokenizers' behaviour); off, it is encoded as ordinary text. Throws
  /// sparq::error when BOS / EOS is asked for but the vocabulary has none, or when a byte has no
  /// single-byte token.
  [[nodiscard]] std::vector<int> encode(std::string_view text, bool bos, bool eos, bool parse_special = true) const {
    SPARQ_CHECK(!bytes_.empty(), "BpeTokenizer::encode: empty tokenizer");
    SPARQ_CHECK(!bos || v_.bos_id >= 0, "BpeTokenizer::encode: BOS requested but the vocabulary has no BOS token");
    SPARQ_CHECK(!eos || v_.eos_id >= 0, "BpeTokenizer::encode: EOS requested but the vocabulary has no EOS token");
    SPARQ_CHECK(text.size() < (std::size_t{1} << 32), "BpeTokenizer::encode: text of ", text.size(),
                " bytes is too long (expected < 4 GiB)");
    std::vector<int> ids;
    ids.reserve(text.size() / 3 + 4);
    if (bos) ids.push_back(v_.bos_id);
    Scratch s;
    std::string prefixed;
    auto segment = [&](std::string_view seg) {
      if (seg.empty()) return;
      if (v_.add_prefix_space && seg.front() != ' ') {
        prefixed.assign(1, ' ');
        prefixed += seg;
        seg = prefixed;
      }
      bpe_detail::pretokenize(seg, v_.pre, [&](std::string_view piece) { encode_piece(piece, ids, s); });
    };
    std::size_t start = 0;
    if (parse_special && trie_.size() > 1) {
      for (std::size_t i = 0; i < text.size(); ++i) {
        if (!first_bytes_[static_cast<unsigned char>(text[i])]) continue;
        std::size_t len = 0;
        const int id = match_special(text, i, len);
        if (id < 0) continue;
        segment(text.substr(start, i - start));
        ids.push_back(id);
        start = i + len;
        i = start - 1;
      }
    }
    segment(text.substr(start));
    if (eos) ids.push_back(v_.eos_id);
    return ids;
  }

  /// Concatenated bytes of the tokens.
  [[nodiscard]] std::string decode(const std::vector<int>& ids) const {
    std::string out;
    for (int id : ids) out += bytes(id);
    return out;
  }

 private:
  struct Merge {
    std::uint32_t rank;
    std::int32_t result;
  };
  struct TrieNode {
    std::vector<std::pair<unsigned char, int>> children;
    int token = -1;
  };
  /// Buffers reused across the pre-tokens of one encode call.
  struct Scratch {
    std::vector<int> id, prev, next;
    std::vector<std::uint64_t> heap;
  };

  [[nodiscard]] static std::uint64_t pair_key(int a, int b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  [[nodiscard]] const Merge* find_merge(int a, int b) const {
    const auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] int trie_child(std::size_t node, unsigned char b) const noexcept {
    for (const auto& [c, next] : trie_[node].children)
      if (c == b) return next;
    return -1;
  }
  /// Id of the longest special token starting at text[i] (its length in `len`), or -1.
  [[nodiscard]] int match_special(std::string_view text, std::size_t i, std::size_t& len) const {
    std::size_t node = 0;
    int best = -1;
    for (std::size_t k = i; k < text.size(); ++k) {
      const int next = trie_child(node, static_cast<unsigned char>(text[k]));
      if (next < 0) break;
      node = static_cast<std::size_t>(next);
      if (trie_[node].token >= 0) {
        best = trie_[node].token;
        len = k + 1 - i;
      }
    }
    return best;
  }
  [[nodiscard]] int byte_token(unsigned char b) const {
    const int id = byte_ids_[b];
    SPARQ_CHECK(id >= 0, "BpeTokenizer::encode: byte ", static_cast<int>(b),
                " (decimal) has no single-byte token in the vocabulary");
    return id;
  }

  /// BPE of one pre-token: heap of (rank << 32 | left position) over a linked list of symbols.
  void encode_piece(std::string_view piece, std::vector<int>& out, Scratch& s) const {
    if (piece.size() == 1) {
      out.push_back(byte_token(static_cast<unsigned char>(piece[0])));
      return;
    }
    if (v_.ignore_merges) {
      const auto it = index_.find(piece);
      if (it != index_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    const std::size_t k = piece.size();
    s.id.resize(k);
    s.prev.resize(k);
    s.next.resize(k);
    s.heap.clear();
    for (std::size_t p = 0; p < k; ++p) {
      s.id[p] = byte_token(static_cast<unsigned char>(piece[p]));
      s.prev[p] = static_cast<int>(p) - 1;
      s.next[p] = p + 1 < k ? static_cast<int>(p + 1) : -1;
    }
    auto push = [&](int left) {
      if (left < 0 || s.next[static_cast<std::size_t>(left)] < 0) return;
      const Merge* m = find_merge(s.id[static_cast<std::size_t>(left)],
                                  s.id[static_cast<std::size_t>(s.next[static_cast<std::size_t>(left)])]);
      if (m == nullptr) return;
      s.heap.push_back((static_cast<std::uint64_t>(m->rank) << 32) | static_cast<std::uint32_t>(left));
      std::push_heap(s.heap.begin(), s.heap.end(), std::greater<>());
    };
    for (std::size_t p = 0; p + 1 < k; ++p) push(static_cast<int>(p));
    while (!s.heap.empty()) {
      std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<>());
      const std::uint64_t top = s.heap.back();
      s.heap.pop_back();
      const auto rank = static_cast<std::uint32_t>(top >> 32);
      const auto left = static_cast<std::size_t>(top & 0xFFFFFFFFu);
      // Stale when the left symbol was merged away (its id is then -1), has no right neighbour any
      // more, or the pair at this position is now a different one (a lower-rank merge changed it).
      if (s.id[left] < 0 || s.next[left] < 0) continue;
      const auto right = static_cast<std::size_t>(s.next[left]);
      const Merge* m = find_merge(s.id[left], s.id[right]);
      if (m == nullptr || m->rank != rank) continue;
      s.id[left] = m->result;
      s.id[right] = -1;
      s.next[left] = s.next[right];
      if (s.next[right] >= 0) s.prev[static_cast<std::size_t>(s.next[right])] = static_cast<int>(left);
      push(s.prev[left]);
      push(static_cast<int>(left));
    }
    for (int p = 0; p >= 0; p = s.next[static_cast<std::size_t>(p)]) out.push_back(s.id[static_cast<std::size_t>(p)]);
  }

  BpeVocab v_;
  std::vector<std::string> bytes_;
  std::unordered_map<std::string, int, bpe_detail::TransparentStringHash, std::equal_to<>> index_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::array<int, 256> byte_ids_{};
  std::vector<TrieNode> trie_;
  std::array<bool, 256> first_bytes_{};
};

}  // namespace sparq::model
