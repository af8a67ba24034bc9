// HfLlama: a Hugging Face model directory of the Llama family (llama, mistral, qwen2) mapped to
// model::LlamaWeights, and the inverse writer. The mapping, the q/k row permutation and every
// rejected case are described in docs/formats.md, "Hugging Face model directories".
//
// Reading (read_hf_llama):
//   config.json        hyper-parameters; architectures / model_type must name llama, mistral or
//                      qwen2; fields the runtime cannot honour (rope_scaling other than null or
//                      "default", hidden_act other than silu, head_dim != hidden/heads,
//                      quantization_config) are errors naming the field and its value.
//   model.safetensors  the weights in one file, or
//   model.safetensors.index.json + the shards its weight_map names (plain file names in the
//                      directory ending in .safetensors; every tensor of every shard mapped to
//                      that shard, every mapped tensor present in it).
// Two passes: first only the shard headers are read (io::read_safetensors_header) and every
// tensor's name, dtype (F32, F16, BF16) and shape is checked against the config, so what is then
// allocated is bounded by the tensor bytes actually present; then each shard is read in full
// (and validated again), converted to float, checked finite and copied into the weights, one
// shard in memory at a time. q_proj / k_proj rows go through permute_qk_hf_to_gguf (HF rotates
// x[i] with x[i + hd/2], sparq's runtime adjacent pairs). Bias tensors (Qwen2's q/k/v, Llama's
// attention_bias / mlp_bias) are accepted only when every value is zero, since the runtime has
// no biases. Any other tensor name is an error, except rotary_emb.inv_freq buffers, which HF
// recomputes from rope_theta and sparq ignores.
//
// Writing (write_hf_llama): config.json (LlamaForCausalLM) and model.safetensors, or shards of at
// most max_shard_bytes each plus model.safetensors.index.json; q/k rows permuted back to HF order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/core/half.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/safetensors.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq::io {

/// A Llama-family model read from a Hugging Face directory: float weights plus what the
/// directory says about its vocabulary (the tokenizer files are only located here; io::load reads a
/// byte-level BPE tokenizer.json with io::read_tokenizer_json).
struct HfLlama {
  model::LlamaWeights weights;
  std::string model_type;       ///< "llama", "mistral" or "qwen2"
  std::string torch_dtype;      ///< config.json torch_dtype, if present (informational)
  std::string tokenizer_model;  ///< path of the directory's tokenizer.model (SentencePiece), if any
  std::string tokenizer_json;   ///< path of the directory's tokenizer.json, if any
  std::int64_t bos_id = -1;     ///< config.json bos_token_id (-1 when absent or null)
  std::int64_t eos_id = -1;     ///< config.json eos_token_id (the first one of a list; -1 when absent)
};

/// Default cap on config.json and the index file (both are small: a 400-layer index is ~100 KB).
inline constexpr std::uintmax_t hf_max_json_bytes = 64u << 20;

namespace detail {

/// Greatest nesting depth of '{' / '[' outside strings; fails beyond `max_depth` or when unbalanced.
inline void hf_json_depth(std::string_view s, std::size_t max_depth, const std::string& what) {
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
      SPARQ_CHECK(++depth <= max_depth, what, ": JSON nests deeper than ", max_depth, " levels at byte ", i);
    } else if (ch == '}' || ch == ']') {
      SPARQ_CHECK(depth > 0, what, ": unbalanced JSON at byte ", i);
      --depth;
    }
  }
}

/// Parses the text of a JSON object file (`w` names it in errors): depth-capped, no duplicate key
/// at any level. hf_read_json's in-memory part (the fuzz target tests/fuzz/fuzz_hf_json.cpp calls it).
inline nlohmann::json hf_parse_json(std::string_view text, const std::string& w) {
  hf_json_depth(text, 16, w);
  std::string dup;
  nlohmann::json j = detail::parse_json_unique_keys(text, dup);
  SPARQ_CHECK(!j.is_discarded(), w, " is not valid JSON");
  SPARQ_CHECK(dup.empty(), w, " has the key '", dup, "' twice");
  SPARQ_CHECK(j.is_object(), w, " is not a JSON object");
  return j;
}

/// Reads and parses a JSON object file: size-capped, depth-capped, no duplicate key at any level.
inline nlohmann::json hf_read_json(const std::filesystem::path& path, const std::string& what) {
  std::error_code ec;
  SPARQ_CHECK(std::filesystem::is_regular_file(path, ec), what, ": '", path.string(), "' does not exist");
  const auto size = std::filesystem::file_size(path, ec);
  SPARQ_CHECK(!ec && size <= hf_max_json_bytes, what, ": '", path.filename().string(), "' has ", size,
              " bytes, more than the limit of ", hf_max_json_bytes);
  const auto bytes = sparq::detail::read_file(path.string());
  return hf_parse_json(std::string_view(bytes.data(), bytes.size()), what + ": " + path.filename().string());
}

/// Present and not null.
inline bool hf_has(const nlohmann::json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

/// An integer field in 1..2^24-1; `dflt` when absent or null (0: the field is required).
inline std::size_t hf_cfg_uint(const nlohmann::json& j, const char* key, const std::string& what, std::size_t dflt) {
  if (!hf_has(j, key)) {
    SPARQ_CHECK(dflt != 0, what, ": config.json has no field '", key, "'");
    return dflt;
  }
  const auto& v = j[key];
  const bool ok = (v.is_number_unsigned() || v.is_number_integer()) && v.get<std::int64_t>() > 0 &&
                  v.get<std::int64_t>() < (std::int64_t{1} << 24);
  SPARQ_CHECK(ok, what, ": config.json field ", key, " = ", v.dump(), ", expected an integer in 1..16777215");
  return static_cast<std::size_t>(v.get<std::int64_t>());
}

/// A finite number field; `dflt` when absent or null, unless `required`.
inline double hf_cfg_number(const nlohmann::json& j, const char* key, const std::string& what, bool required,
                            double dflt) {
  if (!hf_has(j, key)) {
    SPARQ_CHECK(!required, what, ": config.json has no field '", key, "'");
    return dflt;
  }
  const auto& v = j[key];
  SPARQ_CHECK(v.is_number() && std::isfinite(v.get<double>()), what, ": config.json field ", key, " = ", v.dump(),
              ", expected a finite number");
  return v.get<double>();
}

/// A boolean field; `dflt` when absent or null.
inline bool hf_cfg_bool(const nlohmann::json& j, const char* key, const std::string& what, bool dflt) {
  if (!hf_has(j, key)) return dflt;
  SPARQ_CHECK(j[key].is_boolean(), what, ": config.json field ", key, " = ", j[key].dump(), ", expected true or false");
  return j[key].get<bool>();
}

/// A token id field (an integer, or a list whose first entry is taken); -1 when absent or null.
inline std::int64_t hf_cfg_token(const nlohmann::json& j, const char* key, std::size_t vocab, const std::string& what) {
  if (!hf_has(j, key)) return -1;
  const nlohmann::json* v = &j[key];
  if (v->is_array()) {
    if (v->empty()) return -1;
    v = &(*v)[0];
  }
  const bool ok = (v->is_number_unsigned() || v->is_number_integer()) && v->get<std::int64_t>() >= 0 &&
                  static_cast<std::uint64_t>(v->get<std::int64_t>()) < vocab;
  SPARQ_CHECK(ok, what, ": config.json field ", key, " = ", j[key].dump(), ", expected a token id below vocab_size ",
              vocab);
  return v->get<std::int64_t>();
}

/// The architectures sparq reads: model_type and its transformers class.
struct HfArch {
  const char* model_type;
  const char* class_name;
};
inline constexpr HfArch hf_archs[] = {
    {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}};

/// The config and the facts about it the tensor mapping needs.
struct HfConfig {
  model::LlamaConfig cfg;
  std::string model_type;
  std::string torch_dtype;
  bool tie = false;
  std::int64_t bos = -1, eos = -1;
};

/// Maps a parsed config.json to a LlamaConfig (validated), rejecting what the runtime cannot run.
inline HfConfig hf_parse_config(const nlohmann::json& j, const std::string& what) {
  HfConfig r;
  // Architecture: model_type and/or architectures, consistent, one of hf_archs.
  std::string from_type, from_class;
  if (hf_has(j, "model_type")) {
    const auto& v = j["model_type"];
    bool ok = false;
    for (const auto& a : hf_archs) ok = ok || (v.is_string() && v.get<std::string>() == a.model_type);
    SPARQ_CHECK(ok, what, ": config.json field model_type = ", v.dump(),
                " is not supported (sparq reads \"llama\", \"mistral\" and \"qwen2\")");
    from_type = v.get<std::string>();
  }
  if (hf_has(j, "architectures")) {
    const auto& v = j["architectures"];
    bool ok = false;
    if (v.is_array() && v.size() == 1 && v[0].is_string()) {
      for (const auto& a : hf_archs) {
        if (v[0].get<std::string>() == a.class_name) {
          ok = true;
          from_class = a.model_type;
        }
      }
    }
    SPARQ_CHECK(ok, what, ": config.json field architectures = ", v.dump(),
                " is not supported (sparq reads [\"LlamaForCausalLM\"], [\"MistralForCausalLM\"] and "
                "[\"Qwen2ForCausalLM\"])");
  }
  SPARQ_CHECK(!from_type.empty() || !from_class.empty(), what,
              ": config.json has neither 'model_type' nor 'architectures'");
  SPARQ_CHECK(from_type.empty() || from_class.empty() || from_type == from_class, what,
              ": config.json field model_type = \"", from_type, "\" contradicts architectures = ",
              j["architectures"].dump());
  r.model_type = from_type.empty() ? from_class : from_type;

  SPARQ_CHECK(!j.contains("quantization_config"), what,
              ": config.json has a quantization_config (a pre-quantized checkpoint); sparq reads float "
              "weights (F32, F16, BF16) only");
  if (hf_has(j, "hidden_act")) {
    const auto& v = j["hidden_act"];
    SPARQ_CHECK(v.is_string() && v.get<std::string>() == "silu", what, ": config.json field hidden_act = ", v.dump(),
                ", expected \"silu\" (the runtime's FFN is SwiGLU)");
  }
  if (hf_has(j, "rope_scaling")) {
    const auto& v = j["rope_scaling"];
    SPARQ_CHECK(v.is_object(), what, ": config.json field rope_scaling = ", v.dump(), ", expected null or an object");
    const char* key = v.contains("rope_type") ? "rope_type" : "type";
    const std::string shown = v.contains(key) ? v[key].dump() : std::string("(missing)");
    SPARQ_CHECK(v.contains(key) && v[key].is_string() && v[key].get<std::string>() == "default", what,
                ": config.json field rope_scaling.", key, " = ", shown,
                " is not supported: sparq's RoPE uses the plain frequencies rope_theta^(-2i/head_dim) with no "
                "scaling (only rope_scaling null or \"default\" is accepted)");
  }

  auto& c = r.cfg;
  c.dim = hf_cfg_uint(j, "hidden_size", what, 0);
  c.hidden_dim = hf_cfg_uint(j, "intermediate_size", what, 0);
  c.n_layers = hf_cfg_uint(j, "num_hidden_layers", what, 0);
  c.n_heads = hf_cfg_uint(j, "num_attention_heads", what, 0);
  c.n_kv_heads = hf_cfg_uint(j, "num_key_value_heads", what, c.n_heads);
  c.vocab_size = hf_cfg_uint(j, "vocab_size", what, 0);
  c.seq_len = hf_cfg_uint(j, "max_position_embeddings", what, 0);
  const double eps = hf_cfg_number(j, "rms_norm_eps", what, true, 0);
  SPARQ_CHECK(eps > 0 && eps < 1, what, ": config.json field rms_norm_eps = ", eps, ", expected in (0, 1)");
  c.rms_eps = static_cast<float>(eps);
  const double theta = hf_cfg_number(j, "rope_theta", what, false, 10000.0);
  SPARQ_CHECK(theta > 1 && theta < 1e30, what, ": config.json field rope_theta = ", theta,
              ", expected a finite value > 1");
  c.rope_theta = static_cast<float>(theta);
  r.tie = hf_cfg_bool(j, "tie_word_embeddings", what, false);
  if (hf_has(j, "head_dim")) {
    const std::size_t hd = hf_cfg_uint(j, "head_dim", what, 0);
    SPARQ_CHECK(c.dim % c.n_heads == 0 && hd == c.dim / c.n_heads, what, ": config.json field head_dim = ", hd,
                ", expected hidden_size / num_attention_heads = ", c.dim, " / ", c.n_heads,
                " (the runtime has no separate head dimension)");
  }
  // Sliding-window attention (Mistral; Qwen2 when use_sliding_window): within a window every
  // position sees all earlier ones, so capping the context at the window is exact.
  const bool sliding = r.model_type == "mistral" ||
                       (r.model_type == "qwen2" && hf_cfg_bool(j, "use_sliding_window", what, false));
  if (sliding && hf_has(j, "sliding_window")) {
    c.seq_len = std::min(c.seq_len, hf_cfg_uint(j, "sliding_window", what, 0));
  }
  c.shared_classifier = true;  // decided from the tensors
  try {
    c.validate();
  } catch (const error& e) {
    sparq::detail::fail(what, ": config.json: ", e.what());
  }
  if (hf_has(j, "torch_dtype") && j["torch_dtype"].is_string()) r.torch_dtype = j["torch_dtype"].get<std::string>();
  r.bos = hf_cfg_token(j, "bos_token_id", c.vocab_size, what);
  r.eos = hf_cfg_token(j, "eos_token_id", c.vocab_size, what);
  return r;
}

/// HF module name of a block linear.
inline const char* hf_linear_name(model::Linear l) noexcept {
  switch (l) {
    case model::Linear::wq: return "self_attn.q_proj";
    case model::Linear::wk: return "self_attn.k_proj";
    case model::Linear::wv: return "self_attn.v_proj";
    case model::Linear::wo: return "self_attn.o_proj";
    case model::Linear::w1: return "mlp.gate_proj";
    case model::Linear::w2: return "mlp.down_proj";
    case model::Linear::w3: return "mlp.up_proj";
  }
  return "?";
}

enum class HfRole : std::uint8_t { embed, final_norm, lm_head, att_norm, ffn_norm, linear, bias };

/// One tensor a checkpoint may hold: its name, expected shape (cols == 0: a vector of `rows`).
struct HfSlot {
  std::string name;
  std::size_t rows = 0, cols = 0;
  HfRole role = HfRole::embed;
  std::size_t layer = 0;
  model::Linear lin = model::Linear::wq;
  bool required = true;
};

/// Every tensor name of a Llama-family checkpoint with config `c`, in the order the writer uses.
inline std::vector<HfSlot> hf_slots(const model::LlamaConfig& c) {
  std::vector<HfSlot> s;
  const std::size_t d = c.dim, h = c.hidden_dim, kv = c.kv_dim();
  s.push_back({"model.embed_tokens.weight", c.vocab_size, d, HfRole::embed, 0, model::Linear::wq, true});
  for (std::size_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    s.push_back({p + "input_layernorm.weight", d, 0, HfRole::att_norm, l, model::Linear::wq, true});
    s.push_back({p + "post_attention_layernorm.weight", d, 0, HfRole::ffn_norm, l, model::Linear::wq, true});
    const std::size_t shapes[7][2] = {{d, d}, {kv, d}, {kv, d}, {d, d}, {h, d}, {d, h}, {h, d}};
    for (model::Linear lin : model::all_linears) {
      const auto i = static_cast<std::size_t>(lin);
      const std::string base = p + hf_linear_name(lin);
      s.push_back({base + ".weight", shapes[i][0], shapes[i][1], HfRole::linear, l, lin, true});
      s.push_back({base + ".bias", shapes[i][0], 0, HfRole::bias, l, lin, false});
    }
  }
  s.push_back({"model.norm.weight", d, 0, HfRole::final_norm, 0, model::Linear::wq, true});
  s.push_back({"lm_head.weight", c.vocab_size, d, HfRole::lm_head, 0, model::Linear::wq, false});
  return s;
}

/// A shard file name from the index: a plain name inside the directory, ending in .safetensors.
inline void hf_check_shard_name(const std::string& s, const std::string& tensor, const std::string& what) {
  const bool plain = !s.empty() && s.size() <= 255 && s != "." && s != ".." &&
                     s.find_first_of(std::string_view("/\\\0:", 4)) == std::string::npos;
  constexpr std::string_view ext = ".safetensors";
  const bool ends = s.size() > ext.size() && s.compare(s.size() - ext.size(), ext.size(), ext) == 0;
  SPARQ_CHECK(plain && ends, what, ": model.safetensors.index.json maps '", tensor, "' to the file \"", s,
              "\", expected a plain file name in the model directory ending in .safetensors");
}

/// The weight_map of a parsed model.safetensors.index.json (tensor -> shard file name), every shard
/// name checked by hf_check_shard_name.
inline std::map<std::string, std::string> hf_parse_weight_map(const nlohmann::json& idx, const std::string& what) {
  SPARQ_CHECK(idx.contains("weight_map") && idx["weight_map"].is_object() && !idx["weight_map"].empty(), what,
              ": model.safetensors.index.json has no weight_map object (tensor -> shard file)");
  std::map<std::string, std::string> weight_map;
  for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
    SPARQ_CHECK(it.value().is_string(), what, ": model.safetensors.index.json maps '", it.key(), "' to ",
                it.value().dump(), ", expected a file name");
    const std::string s = it.value().get<std::string>();
    hf_check_shard_name(s, it.key(), what);
    weight_map[it.key()] = s;
  }
  return weight_map;
}

inline bool hf_is_ignored_buffer(const std::string& name) {
  constexpr std::string_view pre = "model.layers.", suf = ".self_attn.rotary_emb.inv_freq";
  return name.size() > pre.size() + suf.size() && name.compare(0, pre.size(), pre) == 0 &&
         name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
}

inline std::string hf_shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Shortest decimal that reads back as the same float (for config.json values).
inline double hf_float_for_json(float x) {
  char buf[64];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(x));
    if (std::strtof(buf, nullptr) == x) break;
  }
  return std::strtod(buf, nullptr);
}

}  // namespace detail

/// True when `path` is a directory holding a config.json (a Hugging Face model directory).
[[nodiscard]] inline bool is_hf_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) &&
         std::filesystem::is_regular_file(std::filesystem::path(path) / "config.json", ec);
}

/// A Hugging Face Llama / Mistral / Qwen2 model directory opened for reading part by part (see the
/// file comment and docs/formats.md): the constructor reads config.json, the index and every
/// shard's header and checks every tensor's name, dtype and shape (no tensor data); read_globals and
/// read_block then read only the tensors they need, mapping each shard they touch and unmapping it
/// before they return, so a model larger than memory can be compressed block by block
/// (io::compress_streaming). Throws sparq::error naming the file, field or tensor at fault.
class HfCheckpoint {
 public:
  explicit HfCheckpoint(const std::string& dir) : dir_(dir), what_("Hugging Face model directory '" + dir + "'") {
    namespace fs = std::filesystem;
    const std::string& what = what_;
    std::error_code ec;
    SPARQ_CHECK(fs::is_directory(dir, ec), what, " is not a directory");
    const fs::path root(dir);
    hc_ = detail::hf_parse_config(detail::hf_read_json(root / "config.json", what), what);
    model::LlamaConfig cfg = hc_.cfg;

    // Weight files and which tensor each holds.
    const bool single = fs::is_regular_file(root / "model.safetensors", ec);
    const bool indexed = fs::is_regular_file(root / "model.safetensors.index.json", ec);
    SPARQ_CHECK(!(single && indexed), what,
                " has both model.safetensors and model.safetensors.index.json; keep one of them");
    if (!single && !indexed) {
      const bool pt = fs::exists(root / "pytorch_model.bin", ec) || fs::exists(root / "pytorch_model.bin.index.json", ec);
      sparq::detail::fail(what, " has neither model.safetensors nor model.safetensors.index.json",
                          pt ? " (PyTorch .bin checkpoints are not read: convert them to safetensors)" : "");
    }
    std::map<std::string, std::string> weight_map;  // tensor -> shard (indexed only)
    if (single) {
      shards_.push_back("model.safetensors");
    } else {
      weight_map = detail::hf_parse_weight_map(detail::hf_read_json(root / "model.safetensors.index.json", what), what);
      std::set<std::string> names;
      for (const auto& kv : weight_map) names.insert(kv.second);
      for (const auto& sh : names) {
        SPARQ_CHECK(fs::is_regular_file(root / sh, ec), what, ": model.safetensors.index.json names the shard '", sh,
                    "', which does not exist in the directory");
        shards_.push_back(sh);
      }
    }

    // Headers only. Every tensor is accounted for and its dtype and shape checked.
    for (std::size_t si = 0; si < shards_.size(); ++si) {
      const auto hdr = read_safetensors_header((root / shards_[si]).string());
      for (const auto& t : hdr.tensors) {
        if (!single) {
          const auto m = weight_map.find(t.name);
          SPARQ_CHECK(m != weight_map.end(), what, ": shard '", shards_[si], "' holds the tensor '", t.name,
                      "', which model.safetensors.index.json does not map");
          SPARQ_CHECK(m->second == shards_[si], what, ": shard '", shards_[si], "' holds the tensor '", t.name,
                      "', which model.safetensors.index.json maps to '", m->second, "'");
        }
        SPARQ_CHECK(found_.emplace(t.name, Ref{si, t}).second, what, ": tensor '", t.name, "' appears in two shards");
      }
    }
    for (const auto& [name, shard] : weight_map) {
      SPARQ_CHECK(found_.count(name) != 0, what, ": model.safetensors.index.json maps '", name, "' to '", shard,
                  "', which does not hold it");
    }
    slots_ = detail::hf_slots(cfg);
    for (std::size_t i = 0; i < slots_.size(); ++i) slot_of_[slots_[i].name] = i;
    for (const auto& kv : found_) {
      if (slot_of_.count(kv.first) == 0 && !detail::hf_is_ignored_buffer(kv.first)) {
        sparq::detail::fail(what, ": unexpected tensor '", kv.first, "' (not part of a ", hc_.model_type,
                            " checkpoint with ", cfg.n_layers, " layers that sparq can run)");
      }
    }
    for (const auto& sl : slots_) {
      const auto it = found_.find(sl.name);
      if (it == found_.end()) {
        if (sl.role == detail::HfRole::lm_head && !hc_.tie) {
          sparq::detail::fail(what, ": config.json field tie_word_embeddings = false, but there is no tensor "
                              "'lm_head.weight' (the classifier)");
        }
        SPARQ_CHECK(!sl.required, what, ": missing tensor '", sl.name, "'");
        continue;
      }
      const auto& t = it->second.t;
      SPARQ_CHECK(t.dtype == SafeDtype::F32 || t.dtype == SafeDtype::F16 || t.dtype == SafeDtype::BF16, what,
                  ": tensor '", sl.name, "' has dtype ", safe_dtype_name(t.dtype), ", expected F32, F16 or BF16");
      const std::vector<std::uint64_t> want =
          sl.cols ? std::vector<std::uint64_t>{sl.rows, sl.cols} : std::vector<std::uint64_t>{sl.rows};
      SPARQ_CHECK(t.shape == want, what, ": tensor '", sl.name, "' has shape ", detail::hf_shape_string(t.shape),
                  ", config.json implies ", detail::hf_shape_string(want));
    }
    has_lm_head_ = found_.count("lm_head.weight") != 0;
    cfg.shared_classifier = !has_lm_head_;  // settled by read_globals: an identical lm_head is shared
    cfg_ = cfg;

    info_.model_type = hc_.model_type;
    info_.torch_dtype = hc_.torch_dtype;
    info_.bos_id = hc_.bos;
    info_.eos_id = hc_.eos;
    if (fs::is_regular_file(root / "tokenizer.model", ec)) info_.tokenizer_model = (root / "tokenizer.model").string();
    if (fs::is_regular_file(root / "tokenizer.json", ec)) info_.tokenizer_json = (root / "tokenizer.json").string();
  }

  /// The model's configuration (shared_classifier: no lm_head tensor; read_globals also shares an
  /// lm_head equal to the embedding).
  [[nodiscard]] const model::LlamaConfig& config() const noexcept { return cfg_; }
  /// What the directory says besides the weights (HfLlama::weights is empty here).
  [[nodiscard]] const HfLlama& info() const noexcept { return info_; }

  /// The embedding, final norm and classifier, with n_layers empty blocks (for a
  /// model::DeferredBlocks model; read_block gives the blocks).
  [[nodiscard]] model::LlamaWeights read_globals() {
    model::LlamaWeights w;
    w.config = cfg_;
    w.token_embedding = Matrix<float>(cfg_.vocab_size, cfg_.dim);
    w.rms_final.assign(cfg_.dim, 0.0f);
    if (has_lm_head_) w.classifier = Matrix<float>(cfg_.vocab_size, cfg_.dim);
    w.blocks.resize(cfg_.n_layers);
    read([](const detail::HfSlot& sl) { return sl.role == detail::HfRole::embed || sl.role == detail::HfRole::final_norm ||
                                              sl.role == detail::HfRole::lm_head; },
         w);
    if (has_lm_head_) {
      const bool same = std::memcmp(w.classifier.data(), w.token_embedding.data(), w.classifier.size() * sizeof(float)) == 0;
      SPARQ_CHECK(same || !hc_.tie, what_, ": config.json field tie_word_embeddings = true, but lm_head.weight differs "
                  "from model.embed_tokens.weight");
      if (same) {
        w.config.shared_classifier = true;
        w.classifier = Matrix<float>();
      }
    }
    cfg_.shared_classifier = w.config.shared_classifier;
    return w;
  }

  /// Block b's float weights (norms, the seven linears in sparq's q/k row order; biases checked zero).
  [[nodiscard]] model::LlamaBlock read_block(std::size_t b) {
    SPARQ_CHECK(b < cfg_.n_layers, what_, ": block ", b, " requested, the model has ", cfg_.n_layers);
    model::LlamaWeights w;
    w.config = cfg_;
    w.blocks.resize(cfg_.n_layers);
    model::LlamaBlock& blk = w.blocks[b];
    blk = model::LlamaBlock::zeros(cfg_);
    read([b](const detail::HfSlot& sl) { return sl.layer == b && (sl.role == detail::HfRole::att_norm ||
                                                                  sl.role == detail::HfRole::ffn_norm ||
                                                                  sl.role == detail::HfRole::linear ||
                                                                  sl.role == detail::HfRole::bias); },
         w);
    return std::move(blk);
  }

  /// Every tensor: the whole model in memory (read_hf_llama).
  [[nodiscard]] HfLlama read_all() {
    HfLlama r = info_;
    model::LlamaWeights g = read_globals();
    r.weights = std::move(g);
    for (std::size_t b = 0; b < cfg_.n_layers; ++b) r.weights.blocks[b] = read_block(b);
    return r;
  }

 private:
  struct Ref {
    std::size_t shard;
    SafetensorsTensor t;
  };

  /// Reads the slots `want` selects into w, one shard at a time (each fully validated again, mapped
  /// only while its tensors are converted).
  template <class Want>
  void read(Want&& want, model::LlamaWeights& w) {
    namespace fs = std::filesystem;
    const std::string& what = what_;
    for (std::size_t si = 0; si < shards_.size(); ++si) {
      bool needed = false;
      for (const auto& [name, ref] : found_)
        if (ref.shard == si && slot_of_.count(name) != 0 && want(slots_[slot_of_.at(name)])) needed = true;
      if (!needed) continue;
      const auto f = read_safetensors((fs::path(dir_) / shards_[si]).string());
      for (const auto& [name, ref] : found_) {
        if (ref.shard != si || slot_of_.count(name) == 0) continue;
        const auto& sl = slots_[slot_of_.at(name)];
        if (!want(sl)) continue;
        const auto& t = f.tensor(name);
        SPARQ_CHECK(t.dtype == ref.t.dtype && t.shape == ref.t.shape, what, ": tensor '", name,
                    "' changed while the directory was being read");
        const std::vector<float> v = f.floats(t);
        for (std::size_t i = 0; i < v.size(); ++i) {
          if (!std::isfinite(v[i])) {
            sparq::detail::fail(what, ": tensor '", name, "' has the non-finite value ", v[i], " at flat index ", i);
          }
        }
        auto copy_to = [&](float* dst) {
          if (!v.empty()) std::memcpy(dst, v.data(), v.size() * sizeof(float));
        };
        switch (sl.role) {
          case detail::HfRole::embed: copy_to(w.token_embedding.data()); break;
          case detail::HfRole::final_norm: copy_to(w.rms_final.data()); break;
          case detail::HfRole::lm_head: copy_to(w.classifier.data()); break;
          case detail::HfRole::att_norm: copy_to(w.blocks[sl.layer].rms_att.data()); break;
          case detail::HfRole::ffn_norm: copy_to(w.blocks[sl.layer].rms_ffn.data()); break;
          case detail::HfRole::linear: {
            auto& m = w.blocks[sl.layer].linear(sl.lin);
            copy_to(m.data());
            if (sl.lin == model::Linear::wq) m = permute_qk_hf_to_gguf(m, cfg_.n_heads);
            if (sl.lin == model::Linear::wk) m = permute_qk_hf_to_gguf(m, cfg_.n_kv_heads);
            break;
          }
          case detail::HfRole::bias:
            for (std::size_t i = 0; i < v.size(); ++i) {
              if (v[i] != 0.0f) {
                sparq::detail::fail(what, ": tensor '", name, "' has the non-zero value ", v[i], " at index ", i,
                                    "; the runtime has no linear biases, so only all-zero biases are accepted",
                                    hc_.model_type == "qwen2" ? " (Qwen2 checkpoints have q/k/v biases)" : "");
              }
            }
            break;
        }
      }
    }
  }

  std::string dir_, what_;
  detail::HfConfig hc_;
  model::LlamaConfig cfg_;
  std::vector<std::string> shards_;
  std::map<std::string, Ref> found_;
  std::vector<detail::HfSlot> slots_;
  std::map<std::string, std::size_t> slot_of_;
  bool has_lm_head_ = false;
  HfLlama info_;
};

/// Reads a Hugging Face Llama / Mistral / Qwen2 model directory (see the file comment and
/// docs/formats.md) into memory. Throws sparq::error naming the file, field or tensor at fault.
[[nodiscard]] inline HfLlama read_hf_llama(const std::string& dir) { return HfCheckpoint(dir).read_all(); }

/// The config.json sparq writes for `c` (model_type llama, LlamaForCausalLM).
[[nodiscard]] inline nlohmann::json hf_llama_config_json(const model::LlamaConfig& c, SafeDtype dtype) {
  c.validate();
  nlohmann::json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.dim;
  j["intermediate_size"] = c.hidden_dim;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim();
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.seq_len;
  j["rms_norm_eps"] = detail::hf_float_for_json(c.rms_eps);
  j["rope_theta"] = detail::hf_float_for_json(c.rope_theta);
  j["rope_scaling"] = nullptr;
  j["tie_word_embeddings"] = c.shared_classifier;
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["torch_dtype"] = dtype == SafeDtype::BF16 ? "bfloat16" : dtype == SafeDtype::F16 ? "float16" : "float32";
  return j;
}

/// Writes `w` as a Hugging Face Llama directory: config.json and model.safetensors, or, when
/// max_shard_bytes > 0, shards model-0000i-of-0000n.safetensors of at most that many tensor bytes
/// each (a larger tensor gets a shard of its own) plus model.safetensors.index.json. Every tensor
/// in `dtype` (F32, F16 or BF16); q/k rows in HF order (permute_qk_gguf_to_hf). Creates the
/// directory; removes a model.safetensors or index left from a write of the other form, so the
/// directory stays unambiguous. Each file goes through a temporary file and a rename.
inline void write_hf_llama(const std::string& dir, const model::LlamaWeights& w, SafeDtype dtype = SafeDtype::F32,
                           std::uint64_t max_shard_bytes = 0) {
  namespace fs = std::filesystem;
  const auto& c = w.config;
  SPARQ_CHECK(dtype == SafeDtype::F32 || dtype == SafeDtype::F16 || dtype == SafeDtype::BF16,
              "write_hf_llama: dtype ", safe_dtype_name(dtype), ", expected F32, F16 or BF16");
  const nlohmann::json config = hf_llama_config_json(c, dtype);
  SPARQ_CHECK(w.blocks.size() == c.n_layers, "write_hf_llama: ", w.blocks.size(), " blocks, config says ", c.n_layers);
  std::error_code ec;
  fs::create_directories(dir, ec);
  SPARQ_CHECK(fs::is_directory(dir, ec), "write_hf_llama: cannot create the directory '", dir, "'");
  const fs::path root(dir);

  std::vector<SafetensorsWriter> shards(1);
  std::vector<std::uint64_t> shard_bytes(1, 0);
  std::vector<std::pair<std::string, std::size_t>> placed;  // tensor -> shard
  const std::size_t esize = safe_dtype_size(dtype);
  auto put = [&](const std::string& name, std::vector<std::uint64_t> shape, const float* x, std::size_t n) {
    std::uint64_t want = 1;
    for (auto dim : shape) want *= dim;
    SPARQ_CHECK(n == want, "write_hf_llama: ", name, " has ", n, " values, the config implies ",
                detail::hf_shape_string(shape));
    for (std::size_t i = 0; i < n; ++i) {
      const float y = dtype == SafeDtype::F16 ? round_to_fp16(x[i]) : dtype == SafeDtype::BF16 ? round_to_bf16(x[i]) : x[i];
      if (!std::isfinite(y)) {
        sparq::detail::fail("write_hf_llama: ", name, " value ", x[i], " at flat index ", i, " is not finite in ",
                            safe_dtype_name(dtype));
      }
    }
    const std::uint64_t bytes = static_cast<std::uint64_t>(n) * esize;
    if (max_shard_bytes > 0 && shard_bytes.back() > 0 && shard_bytes.back() + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes.push_back(0);
    }
    shards.back().add(name, dtype, shape, x);
    shard_bytes.back() += bytes;
    placed.emplace_back(name, shards.size() - 1);
  };
  for (const auto& s : detail::hf_slots(c)) {
    switch (s.role) {
      case detail::HfRole::embed: put(s.name, {s.rows, s.cols}, w.token_embedding.data(), w.token_embedding.size()); break;
      case detail::HfRole::final_norm: put(s.name, {s.rows}, w.rms_final.data(), w.rms_final.size()); break;
      case detail::HfRole::lm_head:
        if (!c.shared_classifier) put(s.name, {s.rows, s.cols}, w.classifier.data(), w.classifier.size());
        break;
      case detail::HfRole::att_norm: put(s.name, {s.rows}, w.blocks[s.layer].rms_att.data(), w.blocks[s.layer].rms_att.size()); break;
      case detail::HfRole::ffn_norm: put(s.name, {s.rows}, w.blocks[s.layer].rms_ffn.data(), w.blocks[s.layer].rms_ffn.size()); break;
      case detail::HfRole::linear: {
        const auto& m = w.blocks[s.layer].linear(s.lin);
        SPARQ_CHECK(m.rows() == s.rows && m.cols() == s.cols, "write_hf_llama: ", s.name, " is ", m.rows(), "x",
                    m.cols(), ", expected ", s.rows, "x", s.cols);
        if (s.lin == model::Linear::wq || s.lin == model::Linear::wk) {
          const auto hf = permute_qk_gguf_to_hf(m, s.lin == model::Linear::wq ? c.n_heads : c.n_kv_heads);
          put(s.name, {s.rows, s.cols}, hf.data(), hf.size());
        } else {
          put(s.name, {s.rows, s.cols}, m.data(), m.size());
        }
        break;
      }
      case detail::HfRole::bias: break;
    }
  }

  if (max_shard_bytes == 0) {
    shards[0].set_metadata("format", "pt");
    shards[0].write((root / "model.safetensors").string());
    fs::remove(root / "model.safetensors.index.json", ec);
  } else {
    const std::size_t n = shards.size();
    auto shard_name = [n](std::size_t i) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
      return std::string(buf);
    };
    nlohmann::json index;
    std::uint64_t total = 0;
    for (auto b : shard_bytes) total += b;
    index["metadata"]["total_size"] = total;
    index["weight_map"] = nlohmann::json::object();
    for (const auto& [name, si] : placed) index["weight_map"][name] = shard_name(si);
    for (std::size_t i = 0; i < n; ++i) {
      shards[i].set_metadata("format", "pt");
      shards[i].write((root / shard_name(i)).string());
    }
    const std::string text = index.dump(2) + "\n";
    sparq::detail::write_file_atomic((root / "model.safetensors.index.json").string(), text.data(), text.size());
    fs::remove(root / "model.safetensors", ec);
  }
  const std::string text = config.dump(2) + "\n";
  sparq::detail::write_file_atomic((root / "config.json").string(), text.data(), text.size());
}

}  // namespace sparq::io
