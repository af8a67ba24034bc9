// Hugging Face tokenizer.json of byte-level BPE (GPT-2, Llama 3, Qwen2) -> model::BpeTokenizer.
//
// Read: model {type "BPE", vocab {spelling: id}, merges ["a b", ...] or [["a", "b"], ...],
// ignore_merges}; added_tokens [{id, content, special, lstrip, rstrip, single_word}] (all matched
// in the raw text before pre-tokenization, as HF does); pre_tokenizer ByteLevel (use_regex: the
// GPT-2 expression) or Sequence [Split {Regex: the GPT-2, Llama 3 or Qwen2 expression, behavior
// Isolated}, ByteLevel {use_regex false}]; post_processor TemplateProcessing (a special token before
// $A is the BOS added by default, one after it the EOS), ByteLevel, Sequence of those, or null;
// decoder ByteLevel or null; normalizer null or NFC. NFC is accepted but not applied, as llama.cpp
// does for Qwen2: text already in NFC (nearly all text) encodes identically, other text may not.
// Anything else fails with a sparq::error naming the field and its value, e.g. a SentencePiece-style
// BPE (model.byte_fallback = true, Llama 2 / Mistral 7B), a Unigram model or another split regex.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/io/safetensors.hpp"
#include "sparq/model/tokenizer_bpe.hpp"

namespace sparq::io {

namespace detail {

/// The Split regular expressions sparq implements, as tokenizer.json spells them.
inline constexpr std::string_view tokjson_gpt2_regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
inline constexpr std::string_view tokjson_llama3_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
inline constexpr std::string_view tokjson_qwen2_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// The pre-tokenizer named by a Split regex, or false.
inline bool tokjson_regex_kind(std::string_view rx, model::PreTokenizer& out) {
  if (rx == tokjson_gpt2_regex) out = model::PreTokenizer::gpt2;
  else if (rx == tokjson_llama3_regex) out = model::PreTokenizer::llama3;
  else if (rx == tokjson_qwen2_regex) out = model::PreTokenizer::qwen2;
  else return false;
  return true;
}

/// Greatest nesting of '{' / '[' (outside strings) accepted in a tokenizer.json. Real files nest
/// about 8 deep; the cap keeps the recursive parts of nlohmann::json (dump, used in the error
/// messages) from overflowing the stack on hostile input.
inline constexpr std::size_t tokjson_max_depth = 64;

/// Fails when `s` nests '{' / '[' deeper than tokjson_max_depth (unbalanced text is left to the parser).
inline void tokjson_check_depth(std::string_view s, const std::string& what) {
  std::size_t depth = 0;
  bool in_str = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (in_str) {
      if (ch == '\\') ++i;
      else if (ch == '"') in_str = false;
    } else if (ch == '"') {
      in_str = true;
    } else if (ch == '{' || ch == '[') {
      SPARQ_CHECK(++depth <= tokjson_max_depth, what, ": JSON nests deeper than ", tokjson_max_depth,
                  " levels at byte ", i);
    } else if ((ch == '}' || ch == ']') && depth > 0) {
      --depth;
    }
  }
}

inline std::string tokjson_type(const nlohmann::json& j) {
  const auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("(no type)");
}

inline bool tokjson_flag(const nlohmann::json& j, const char* key, bool dflt, const std::string& what,
                         const std::string& field) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  SPARQ_CHECK(it->is_boolean(), what, ": ", field, ".", key, " = ", it->dump(), ", expected true or false");
  return it->get<bool>();
}

/// Applies one pre_tokenizer object (ByteLevel or Split) to the vocab.
inline void tokjson_pre(const nlohmann::json& p, const std::string& field, model::BpeVocab& v, bool& have_split,
                        const std::string& what) {
  SPARQ_CHECK(p.is_object(), what, ": ", field, " is ", p.dump(), ", expected an object");
  const std::string type = tokjson_type(p);
  if (type == "ByteLevel") {
    v.add_prefix_space = tokjson_flag(p, "add_prefix_space", false, what, field);
    if (tokjson_flag(p, "use_regex", true, what, field)) {
      SPARQ_CHECK(!have_split, what, ": ", field, ".use_regex = true after a Split (two regular expressions) is not "
                  "supported");
      v.pre = model::PreTokenizer::gpt2;
      have_split = true;
    }
  } else if (type == "Split") {
    SPARQ_CHECK(!have_split, what, ": ", field, ": a second Split is not supported");
    const auto pat = p.find("pattern");
    SPARQ_CHECK(pat != p.end() && pat->is_object() && pat->contains("Regex") && (*pat)["Regex"].is_string(), what,
                ": ", field, ".pattern = ", pat == p.end() ? std::string("(missing)") : pat->dump(),
                ", expected {\"Regex\": \"...\"}");
    const std::string rx = (*pat)["Regex"].get<std::string>();
    SPARQ_CHECK(tokjson_regex_kind(rx, v.pre), what, ": ", field, ".pattern.Regex = '", rx,
                "' is not supported (sparq implements the GPT-2, Llama 3 and Qwen2 expressions)");
    const auto beh = p.find("behavior");
    SPARQ_CHECK(beh != p.end() && *beh == "Isolated", what, ": ", field, ".behavior = ",
                beh == p.end() ? std::string("(missing)") : beh->dump(), ", expected \"Isolated\"");
    SPARQ_CHECK(!tokjson_flag(p, "invert", false, what, field), what, ": ", field, ".invert = true is not supported");
    have_split = true;
  } else {
    sparq::detail::fail(what, ": ", field, ".type = '", type, "' is not supported (expected ByteLevel or Split)");
  }
}

/// Reads a post_processor object: the special tokens around $A become BOS / EOS.
inline void tokjson_post(const nlohmann::json& p, const std::string& field, model::BpeVocab& v,
                         const std::string& what) {
  if (p.is_null()) return;
  SPARQ_CHECK(p.is_object(), what, ": ", field, " is ", p.dump(), ", expected an object or null");
  const std::string type = tokjson_type(p);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    const auto it = p.find("processors");
    SPARQ_CHECK(it != p.end() && it->is_array(), what, ": ", field, ".processors is missing or not an array");
    for (std::size_t i = 0; i < it->size(); ++i)
      tokjson_post((*it)[i], field + ".processors[" + std::to_string(i) + "]", v, what);
    return;
  }
  SPARQ_CHECK(type == "TemplateProcessing", what, ": ", field, ".type = '", type,
              "' is not supported (expected TemplateProcessing, ByteLevel or Sequence)");
  const auto single = p.find("single");
  SPARQ_CHECK(single != p.end() && single->is_array(), what, ": ", field, ".single is missing or not an array");
  const auto specials = p.find("special_tokens");
  bool seen_a = false;
  for (std::size_t i = 0; i < single->size(); ++i) {
    const auto& item = (*single)[i];
    const std::string f = field + ".single[" + std::to_string(i) + "]";
    if (item.contains("Sequence")) {
      SPARQ_CHECK(!seen_a, what, ": ", f, ": a second sequence in the template is not supported");
      seen_a = true;
      continue;
    }
    SPARQ_CHECK(item.contains("SpecialToken") && item["SpecialToken"].contains("id") &&
                    item["SpecialToken"]["id"].is_string(),
                what, ": ", f, " = ", item.dump(), ", expected {\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": ...}");
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    SPARQ_CHECK(specials != p.end() && specials->contains(name) && (*specials)[name].contains("ids") &&
                    (*specials)[name]["ids"].is_array() && (*specials)[name]["ids"].size() == 1,
                what, ": ", field, ".special_tokens['", name, "'] is missing or has not exactly one id");
    const auto id = json_uint((*specials)[name]["ids"][0], what, field + ".special_tokens['" + name + "'].ids[0]");
    SPARQ_CHECK(id < (1u << 30), what, ": ", field, ".special_tokens['", name, "'] id ", id, " is too large");
    if (!seen_a) {
      SPARQ_CHECK(!v.add_bos, what, ": ", f, ": more than one token before the sequence is not supported");
      v.add_bos = true;
      v.bos_id = static_cast<int>(id);
    } else {
      SPARQ_CHECK(!v.add_eos, what, ": ", f, ": more than one token after the sequence is not supported");
      v.add_eos = true;
      v.eos_id = static_cast<int>(id);
    }
  }
  SPARQ_CHECK(seen_a, what, ": ", field, ".single has no {\"Sequence\": ...} item");
}

}  // namespace detail

/// Parses tokenizer.json text into a BpeVocab (see the file comment). `vocab_size` > 0 pads the
/// vocabulary with unused ids up to the model's embedding rows (and fails if an id is beyond it).
/// `bos_id` / `eos_id` (>= 0, e.g. from config.json) name the BOS / EOS tokens when the
/// post-processor does not; they are then not added by default. Hostile-input limits: the JSON may
/// nest at most 64 levels, ids must be below 2^30 and nearly dense (the highest below twice the token
/// count + 1024, or below `vocab_size` when given).
[[nodiscard]] inline model::BpeVocab parse_tokenizer_json(std::string_view text, const std::string& what,
                                                          std::size_t vocab_size = 0, std::int64_t bos_id = -1,
                                                          std::int64_t eos_id = -1) {
  detail::tokjson_check_depth(text, what);
  std::string dup;
  const nlohmann::json j = detail::parse_json_unique_keys(text, dup);
  SPARQ_CHECK(!j.is_discarded(), what, ": not valid JSON");
  SPARQ_CHECK(dup.empty(), what, ": key '", dup, "' appears twice in one object");
  SPARQ_CHECK(j.is_object(), what, ": expected a JSON object at the top level");
  const auto mit = j.find("model");
  SPARQ_CHECK(mit != j.end() && mit->is_object(), what, ": field 'model' is missing or not an object");
  const auto& m = *mit;
  const std::string mtype = detail::tokjson_type(m);
  SPARQ_CHECK(mtype == "BPE", what, ": model.type = '", mtype, "', expected 'BPE' (byte-level BPE)");
  SPARQ_CHECK(!detail::tokjson_flag(m, "byte_fallback", false, what, "model"), what,
              ": model.byte_fallback = true (SentencePiece-style BPE) is not supported in tokenizer.json; use the "
              "model's GGUF vocabulary or a llama2.c tokenizer file");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = m.find(key);
    SPARQ_CHECK(it == m.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()), what,
                ": model.", key, " = ", it == m.end() ? std::string() : it->dump(), " is not supported (expected null)");
  }
  if (const auto it = m.find("dropout"); it != m.end() && !it->is_null()) {
    SPARQ_CHECK(it->is_number() && it->get<double>() == 0.0, what, ": model.dropout = ", it->dump(),
                " is not supported (expected null)");
  }
  model::BpeVocab v;
  v.ignore_merges = detail::tokjson_flag(m, "ignore_merges", false, what, "model");

  // Vocabulary and added tokens, by id.
  std::map<std::uint64_t, std::string> by_id;
  auto put = [&](std::uint64_t id, const std::string& s, const std::string& field) {
    SPARQ_CHECK(id < (1u << 30), what, ": ", field, " has id ", id, ", expected < 2^30");
    SPARQ_CHECK(!s.empty(), what, ": ", field, " (id ", id, ") is an empty string");
    const auto [it, fresh] = by_id.emplace(id, s);
    SPARQ_CHECK(fresh || it->second == s, what, ": id ", id, " is both '", it->second, "' and '", s, "' (", field, ")");
  };
  const auto vit = m.find("vocab");
  SPARQ_CHECK(vit != m.end() && vit->is_object() && !vit->empty(), what,
              ": model.vocab is missing, empty or not an object");
  for (const auto& [spelling, id] : vit->items())
    put(detail::json_uint(id, what, "model.vocab['" + spelling + "']"), spelling, "model.vocab['" + spelling + "']");
  if (const auto ait = j.find("added_tokens"); ait != j.end() && !ait->is_null()) {
    SPARQ_CHECK(ait->is_array(), what, ": added_tokens is not an array");
    for (std::size_t i = 0; i < ait->size(); ++i) {
      const auto& t = (*ait)[i];
      const std::string f = "added_tokens[" + std::to_string(i) + "]";
      SPARQ_CHECK(t.is_object() && t.contains("id") && t.contains("content") && t["content"].is_string(), what, ": ",
                  f, " = ", t.dump(), ", expected an object with id and content");
      for (const char* key : {"lstrip", "rstrip", "single_word"}) {
        SPARQ_CHECK(!detail::tokjson_flag(t, key, false, what, f), what, ": ", f, ".", key,
                    " = true is not supported");
      }
      const auto id = detail::json_uint(t["id"], what, f + ".id");
      put(id, t["content"].get<std::string>(), f);
      v.special_ids.push_back(static_cast<int>(id));
    }
  }
  const std::uint64_t n_ids = by_id.rbegin()->first + 1;
  SPARQ_CHECK(vocab_size == 0 || n_ids <= vocab_size, what, ": token id ", n_ids - 1,
              " is beyond the model's vocabulary of ", vocab_size, " tokens");
  // Ids are (nearly) dense: a few bytes naming one huge id must not allocate that many tokens.
  SPARQ_CHECK(n_ids <= std::max<std::uint64_t>(vocab_size, 2 * by_id.size() + 1024), what, ": token id ", n_ids - 1,
              " leaves more unused ids than the ", by_id.size(), " tokens (+ 1024) the file has");
  v.tokens.resize(std::max<std::size_t>(static_cast<std::size_t>(n_ids), vocab_size));
  for (auto& [id, s] : by_id) v.tokens[static_cast<std::size_t>(id)] = std::move(s);

  const auto merges = m.find("merges");
  SPARQ_CHECK(merges != m.end() && merges->is_array(), what, ": model.merges is missing or not an array");
  v.merges.reserve(merges->size());
  for (std::size_t r = 0; r < merges->size(); ++r) {
    const auto& e = (*merges)[r];
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const auto sp = s.find(' ');
      SPARQ_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < s.size() && s.find(' ', sp + 1) == std::string::npos,
                  what, ": model.merges[", r, "] = '", s, "', expected two tokens separated by one space");
      v.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      SPARQ_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(), what, ": model.merges[", r,
                  "] = ", e.dump(), ", expected \"a b\" or [\"a\", \"b\"]");
      v.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    }
  }

  if (const auto it = j.find("normalizer"); it != j.end() && !it->is_null()) {
    const std::string t = detail::tokjson_type(*it);
    SPARQ_CHECK(t == "NFC", what, ": normalizer.type = '", t, "' is not supported (expected null or NFC)");
  }
  const auto pit = j.find("pre_tokenizer");
  SPARQ_CHECK(pit != j.end() && pit->is_object(), what,
              ": pre_tokenizer is missing or null (a byte-level BPE needs ByteLevel)");
  bool have_split = false;
  if (detail::tokjson_type(*pit) == "Sequence") {
    const auto ps = pit->find("pretokenizers");
    SPARQ_CHECK(ps != pit->end() && ps->is_array() && !ps->empty(), what,
                ": pre_tokenizer.pretokenizers is missing, empty or not an array");
    for (std::size_t i = 0; i < ps->size(); ++i)
      detail::tokjson_pre((*ps)[i], "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]", v, have_split, what);
  } else {
    detail::tokjson_pre(*pit, "pre_tokenizer", v, have_split, what);
  }
  SPARQ_CHECK(have_split, what, ": pre_tokenizer has neither a Split nor ByteLevel with use_regex = true");
  if (const auto it = j.find("decoder"); it != j.end() && !it->is_null()) {
    const std::string t = detail::tokjson_type(*it);
    SPARQ_CHECK(t == "ByteLevel", what, ": decoder.type = '", t, "' is not supported (expected ByteLevel)");
  }
  if (const auto it = j.find("post_processor"); it != j.end()) detail::tokjson_post(*it, "post_processor", v, what);
  const auto n = static_cast<std::int64_t>(v.tokens.size());
  if (v.bos_id < 0 && bos_id >= 0) {
    SPARQ_CHECK(bos_id < n, what, ": bos_token_id ", bos_id, " is outside the vocabulary of ", n);
    v.bos_id = static_cast<int>(bos_id);
  }
  if (v.eos_id < 0 && eos_id >= 0) {
    SPARQ_CHECK(eos_id < n, what, ": eos_token_id ", eos_id, " is outside the vocabulary of ", n);
    v.eos_id = static_cast<int>(eos_id);
  }
  return v;
}

/// Reads a tokenizer.json file (see parse_tokenizer_json).
[[nodiscard]] inline model::BpeTokenizer read_tokenizer_json(const std::string& path, std::size_t vocab_size = 0,
                                                             std::int64_t bos_id = -1, std::int64_t eos_id = -1) {
  const auto buf = sparq::detail::read_file(path);
  const std::string what = "tokenizer '" + path + "'";
  try {
    return model::BpeTokenizer(
        parse_tokenizer_json(std::string_view(buf.data(), buf.size()), what, vocab_size, bos_id, eos_id));
  } catch (const error& e) {
    const std::string msg = e.what();
    if (msg.rfind(what, 0) == 0) throw;
    sparq::detail::fail(what, ": ", msg);
  }
}

}  // namespace sparq::io
