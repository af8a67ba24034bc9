// llama2.c checkpoint reader and writer (the 7-int32 header format of karpathy/llama2.c).
//
// Layout (little-endian): int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
// seq_len; a negative vocab_size means the classifier is stored separately. Then float32 tensors:
// token_embedding [vocab x dim], rms_att [L x dim], wq [L x dim x dim], wk [L x kv x dim],
// wv [L x kv x dim], wo [L x dim x dim], rms_ffn [L x dim], w1 [L x hidden x dim],
// w2 [L x dim x hidden], w3 [L x hidden x dim], rms_final [dim], two legacy RoPE tables
// [seq_len x head_dim/2] each (skipped on read, written for compatibility), and, when not shared,
// wcls [vocab x dim]. The file size must match the header exactly.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq::io {

namespace detail {
// The file helpers moved to core/file.hpp (model/ uses them too); io code and its users keep
// calling them as io::detail::read_file and io::detail::write_file_atomic.
using sparq::detail::read_file;
using sparq::detail::write_file_atomic;
}  // namespace detail

/// Parses a llama2.c checkpoint held in memory. Throws sparq::error on a bad header, a size that
/// does not match the header, or non-finite weights.
inline model::LlamaWeights parse_llama2c(const char* data, std::size_t size,
                                         const std::string& what = "llama2.c checkpoint") {
  SPARQ_CHECK(size >= 7 * sizeof(std::int32_t), what, ": ", size,
              " bytes is too short for the 28-byte header");
  std::int32_t h[7];
  std::memcpy(h, data, sizeof h);
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i) {
    if (i == 5) continue;
    SPARQ_CHECK(h[i] > 0, what, ": header field ", names[i], " = ", h[i], ", expected > 0");
  }
  SPARQ_CHECK(h[5] != 0 && h[5] != INT32_MIN, what, ": header field vocab_size = ", h[5],
              ", expected non-zero");
  model::LlamaConfig cfg;
  cfg.dim = static_cast<std::size_t>(h[0]);
  cfg.hidden_dim = static_cast<std::size_t>(h[1]);
  cfg.n_layers = static_cast<std::size_t>(h[2]);
  cfg.n_heads = static_cast<std::size_t>(h[3]);
  cfg.n_kv_heads = static_cast<std::size_t>(h[4]);
  cfg.shared_classifier = h[5] > 0;
  cfg.vocab_size = static_cast<std::size_t>(h[5] > 0 ? h[5] : -static_cast<std::int64_t>(h[5]));
  cfg.seq_len = static_cast<std::size_t>(h[6]);
  try {
    cfg.validate();
  } catch (const error& e) {
    sparq::detail::fail(what, ": ", e.what());
  }
  const std::size_t d = cfg.dim, hd = cfg.hidden_dim, L = cfg.n_layers, kv = cfg.kv_dim();
  const std::size_t rope = cfg.seq_len * (cfg.head_dim() / 2);
  {
    // The fields pass validate() below 2^24 (n_layers below 4096), so the exact byte count below can
    // pass 2^64 and wrap around to a small number: bound it in double first.
    const double D = static_cast<double>(d), H = static_cast<double>(hd), NL = static_cast<double>(L),
                 KV = static_cast<double>(kv), V = static_cast<double>(cfg.vocab_size);
    const double approx = 28.0 + 4.0 * (V * D * (cfg.shared_classifier ? 1.0 : 2.0) + NL * (2.0 * D * D + 2.0 * KV * D +
                                                                                            3.0 * H * D + 2.0 * D) +
                                        D + 2.0 * static_cast<double>(rope));
    SPARQ_CHECK(approx < 0x1p62 && approx <= static_cast<double>(size) * 2.0 + 1024.0, what, ": header (dim ", d,
                ", hidden ", hd, ", layers ", L, ", vocab ", cfg.vocab_size, ", seq_len ", cfg.seq_len, ") implies ",
                approx, " bytes, the file has ", size);
  }
  const std::size_t floats = cfg.vocab_size * d + L * d + L * d * d + 2 * L * kv * d + L * d * d +
                             L * d + 3 * L * hd * d + d + 2 * rope +
                             (cfg.shared_classifier ? 0 : cfg.vocab_size * d);
  const std::size_t expect = 28 + floats * sizeof(float);
  SPARQ_CHECK(size == expect, what, ": file is ", size, " bytes, but its header (dim ", d,
              ", hidden ", hd, ", layers ", L, ", heads ", cfg.n_heads, "/", cfg.n_kv_heads,
              ", vocab ", cfg.vocab_size, ", seq_len ", cfg.seq_len, ") implies ", expect, " bytes");

  model::LlamaWeights w = model::LlamaWeights::zeros(cfg);
  const char* p = data + 28;
  auto take = [&](float* dst, std::size_t n) {
    std::memcpy(dst, p, n * sizeof(float));
    p += n * sizeof(float);
  };
  take(w.token_embedding.data(), w.token_embedding.size());
  for (auto& b : w.blocks) take(b.rms_att.data(), d);
  for (auto& b : w.blocks) take(b.wq.data(), d * d);
  for (auto& b : w.blocks) take(b.wk.data(), kv * d);
  for (auto& b : w.blocks) take(b.wv.data(), kv * d);
  for (auto& b : w.blocks) take(b.wo.data(), d * d);
  for (auto& b : w.blocks) take(b.rms_ffn.data(), d);
  for (auto& b : w.blocks) take(b.w1.data(), hd * d);
  for (auto& b : w.blocks) take(b.w2.data(), d * hd);
  for (auto& b : w.blocks) take(b.w3.data(), hd * d);
  take(w.rms_final.data(), d);
  p += 2 * rope * sizeof(float);  // legacy freq_cis_real / freq_cis_imag
  if (!cfg.shared_classifier) take(w.classifier.data(), w.classifier.size());

  check_finite(w.token_embedding.data(), w.token_embedding.size(), "llama2.c token_embedding");
  for (std::size_t l = 0; l < L; ++l) {
    const auto& b = w.blocks[l];
    for (model::Linear lin : model::all_linears) {
      const auto& m = b.linear(lin);
      for (std::size_t i = 0; i < m.size(); ++i) {
        if (!std::isfinite(m.data()[i])) {
          sparq::detail::fail(what, ": non-finite weight ", m.data()[i], " in block ", l, " ",
                       model::linear_name(lin), " at flat index ", i);
        }
      }
    }
    check_finite(b.rms_att.data(), d, "llama2.c rms_att");
    check_finite(b.rms_ffn.data(), d, "llama2.c rms_ffn");
  }
  check_finite(w.rms_final.data(), d, "llama2.c rms_final");
  if (!cfg.shared_classifier) check_finite(w.classifier.data(), w.classifier.size(), "llama2.c wcls");
  return w;
}

/// Reads a llama2.c checkpoint file.
inline model::LlamaWeights read_llama2c(const std::string& path) {
  const FileBytes buf = FileBytes::map(path);  // memory-mapped, not copied (core/file.hpp)
  return parse_llama2c(buf.data(), buf.size(), "llama2.c checkpoint '" + path + "'");
}

/// Serialises weights in llama2.c layout (RoPE tables recomputed as llama2.c's export does).
inline std::vector<char> serialize_llama2c(const model::LlamaWeights& w) {
  const auto& cfg = w.config;
  cfg.validate();
  SPARQ_CHECK(cfg.vocab_size <= static_cast<std::size_t>(INT32_MAX) &&
                  cfg.hidden_dim <= static_cast<std::size_t>(INT32_MAX),
              "serialize_llama2c: sizes do not fit the int32 header");
  std::vector<char> out;
  auto put = [&](const void* src, std::size_t n) {
    const char* c = static_cast<const char*>(src);
    out.insert(out.end(), c, c + n);
  };
  const std::int32_t h[7] = {static_cast<std::int32_t>(cfg.dim), static_cast<std::int32_t>(cfg.hidden_dim),
                             static_cast<std::int32_t>(cfg.n_layers), static_cast<std::int32_t>(cfg.n_heads),
                             static_cast<std::int32_t>(cfg.n_kv_heads),
                             static_cast<std::int32_t>(cfg.vocab_size) * (cfg.shared_classifier ? 1 : -1),
                             static_cast<std::int32_t>(cfg.seq_len)};
  put(h, sizeof h);
  auto putm = [&](const Matrix<float>& m) { put(m.data(), m.size() * sizeof(float)); };
  auto putv = [&](const std::vector<float>& v) { put(v.data(), v.size() * sizeof(float)); };
  putm(w.token_embedding);
  for (const auto& b : w.blocks) putv(b.rms_att);
  for (const auto& b : w.blocks) putm(b.wq);
  for (const auto& b : w.blocks) putm(b.wk);
  for (const auto& b : w.blocks) putm(b.wv);
  for (const auto& b : w.blocks) putm(b.wo);
  for (const auto& b : w.blocks) putv(b.rms_ffn);
  for (const auto& b : w.blocks) putm(b.w1);
  for (const auto& b : w.blocks) putm(b.w2);
  for (const auto& b : w.blocks) putm(b.w3);
  putv(w.rms_final);
  const std::size_t hd2 = cfg.head_dim() / 2;
  std::vector<float> re(cfg.seq_len * hd2), im(cfg.seq_len * hd2);
  for (std::size_t t = 0; t < cfg.seq_len; ++t) {
    for (std::size_t i = 0; i < hd2; ++i) {
      const double freq = 1.0 / std::pow(static_cast<double>(cfg.rope_theta),
                                         static_cast<double>(2 * i) / static_cast<double>(cfg.head_dim()));
      re[t * hd2 + i] = static_cast<float>(std::cos(static_cast<double>(t) * freq));
      im[t * hd2 + i] = static_cast<float>(std::sin(static_cast<double>(t) * freq));
    }
  }
  putv(re);
  putv(im);
  if (!cfg.shared_classifier) putm(w.classifier);
  return out;
}

/// Writes a llama2.c checkpoint (temporary file + rename).
inline void write_llama2c(const model::LlamaWeights& w, const std::string& path) {
  const auto bytes = serialize_llama2c(w);
  detail::write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace sparq::io
