// Writes a small seed corpus for the fuzzers, with sparq's own writers: valid GGUF (every metadata
// type, every tensor type, a tiny Llama; Llama metadata with a SentencePiece vocabulary with byte
// fallback and with gpt2 byte-level vocabularies, pre-tokenizers gpt2, llama-bpe and qwen2), safetensors and container files (a plain container, tiny packed models mixing the
// op formats, one with a stored tokenizer), tokenizer.json files (GPT-2, Llama 3 and Qwen2
// styles), Hugging Face config.json / model.safetensors.index.json files, and rANS streams (8-, 4-
// and 2-bit symbols, 4 to 32 states).
// Usage: fuzz_make_seeds <out_dir>
//   (creates out_dir/{gguf,safetensors,container,rans,tokenizer_json,hf_json}/)
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparq/io/container.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/gguf_writer.hpp"
#include "sparq/io/hf_checkpoint.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/io/safetensors.hpp"
#include "sparq/io/tokenizer_json.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/model/tokenizer.hpp"
#include "sparq/prune/magnitude.hpp"
#include "sparq/prune/nm.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/quant/quantizer.hpp"

using namespace sparq;
using namespace sparq::io;

namespace {

void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

/// A tiny byte-level BPE vocabulary: single-byte tokens in GPT-2's spelling, a few merges, and
/// special tokens after them. tokens[i] is the spelling of id i.
struct TinyBpe {
  std::vector<std::string> tokens;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<std::string> specials;  // ids tokens.size() .. + specials.size() - 1
};

TinyBpe tiny_bpe() {
  TinyBpe b;
  for (const char* c : {"a", "b", "d", "e", "h", "l", "o", "r", "t", "w", "s", "'", "0", "1", "2", ",", "!"})
    b.tokens.emplace_back(c);
  for (const char* c : {"\xC4\xA0", "\xC4\x8A", "\xC3\xA9", "\xC3\x83"}) b.tokens.emplace_back(c);  // Ġ (space), Ċ (\n), é, Ã
  const std::pair<const char*, const char*> m[] = {{"\xC4\xA0", "t"}, {"h", "e"}, {"\xC4\xA0t", "he"}, {"l", "l"},
                                                  {"e", "ll"}, {"h", "ell"}, {"hell", "o"}, {"o", "r"},
                                                  {"w", "or"}, {"wor", "l"}, {"worl", "d"}, {"\xC4\xA0", "world"},
                                                  {"'", "s"}, {"1", "2"}};
  for (const auto& [x, y] : m) {
    b.merges.emplace_back(x, y);
    b.tokens.push_back(std::string(x) + y);
  }
  b.specials = {"<|endoftext|>", "<|im_start|>"};
  return b;
}

/// A tokenizer.json of `b`: style 0 GPT-2 (ByteLevel with its regex, merges as strings), 1 Llama 3
/// (Split + ByteLevel, ignore_merges, TemplateProcessing with BOS, merges as pairs), 2 Qwen2 (NFC,
/// Split with the Qwen2 regex, post_processor null).
std::string tokenizer_json(const TinyBpe& b, int style) {
  using nlohmann::json;
  json vocab = json::object();
  for (std::size_t i = 0; i < b.tokens.size(); ++i) vocab[b.tokens[i]] = i;
  json merges = json::array();
  for (const auto& [x, y] : b.merges) merges.push_back(style == 1 ? json::array({x, y}) : json(x + " " + y));
  json added = json::array();
  for (std::size_t i = 0; i < b.specials.size(); ++i)
    added.push_back({{"id", b.tokens.size() + i}, {"content", b.specials[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = style == 2 ? json{{"type", "NFC"}} : json(nullptr);
  auto split = [](std::string_view rx) {
    return json{{"type", "Split"}, {"pattern", {{"Regex", std::string(rx)}}}, {"behavior", "Isolated"}, {"invert", false}};
  };
  const json byte_level_plain = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  if (style == 0) {
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  } else {
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers", json::array({split(style == 1 ? io::detail::tokjson_llama3_regex
                                                                          : io::detail::tokjson_qwen2_regex),
                                                         byte_level_plain})}};
    if (style == 1) {
      const std::string bos = b.specials[0];
      j["post_processor"] = {
          {"type", "Sequence"},
          {"processors",
           json::array({byte_level_plain,
                        {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                         {"pair", json::array()},
                         {"special_tokens", {{bos, {{"id", bos}, {"ids", json::array({b.tokens.size()})},
                                                    {"tokens", json::array({bos})}}}}}}})}};
    } else {
      j["post_processor"] = nullptr;
    }
  }
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"},      {"dropout", nullptr},          {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                {"byte_fallback", false}, {"ignore_merges", style == 1}, {"vocab", vocab}, {"merges", merges}};
  return j.dump(style == 0 ? 2 : -1);
}

/// The GGUF vocabulary (tokenizer.ggml.model = gpt2) of `b` with pre-tokenizer `pre`.
GgufVocab gguf_bpe(const TinyBpe& b, const std::string& pre) {
  GgufVocab v;
  v.model = "gpt2";
  v.pre = pre;
  v.tokens = b.tokens;
  v.token_types.assign(b.tokens.size(), 1);
  for (const auto& s : b.specials) {
    v.tokens.push_back(s);
    v.token_types.push_back(3);
  }
  v.token_types[16] = 5;  // an unused id ("!", in no merge)
  for (const auto& [x, y] : b.merges) v.merges.push_back(x + " " + y);
  v.bos_id = static_cast<std::int64_t>(b.tokens.size());
  v.eos_id = v.bos_id;
  if (pre == "qwen2") v.add_bos = 0, v.add_eos = 1;
  return v;
}

/// Deterministic weights in [-1, 1).
void fill(float* p, std::size_t n, unsigned seed) {
  std::uint32_t s = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = static_cast<float>(static_cast<int>(s >> 16) % 2001 - 1000) * 0.001f;
  }
}

/// A tiny Llama whose decoder linears use every op format the packed file holds (those that pack
/// the prepared weights: each is tried, a failure leaves the linear dense and is reported).
model::Llama packed_model(bool lowrank) {
  using namespace model;
  LlamaConfig cfg;
  cfg.dim = 32;
  cfg.hidden_dim = 32;
  cfg.n_layers = 2;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 1;
  cfg.vocab_size = 8;
  cfg.seq_len = 4;
  auto w = LlamaWeights::zeros(cfg);
  unsigned seed = 1;
  fill(w.token_embedding.data(), w.token_embedding.size(), seed++);
  for (auto& b : w.blocks)
    for (Linear l : all_linears) fill(b.linear(l).data(), b.linear(l).size(), seed++);
  for (auto& b : w.blocks) {
    for (std::size_t i = 0; i < cfg.dim; ++i) b.rms_att[i] = b.rms_ffn[i] = 1.0f;
  }
  for (std::size_t i = 0; i < cfg.dim; ++i) w.rms_final[i] = 1.0f;
  Llama m(std::move(w));
  struct Plan {
    std::size_t b;
    Linear l;
    PackFormat f;
    std::size_t group;
    bool asym;
    ActivationMode act;
  };
  const Plan plans[] = {
      {0, Linear::wq, PackFormat::w8, 0, false, ActivationMode::a8},
      {0, Linear::wk, PackFormat::w4, 32, false, ActivationMode::a32},
      {0, Linear::wv, PackFormat::w4, 32, true, ActivationMode::a8},
      {0, Linear::wo, PackFormat::nm_f32, 32, false, ActivationMode::a32},
      {0, Linear::w1, PackFormat::nm_w8, 32, false, ActivationMode::a8},
      {0, Linear::w2, PackFormat::w8, 0, false, ActivationMode::a32},
      {0, Linear::w3, PackFormat::bitmask_f32, 32, false, ActivationMode::a8},
      {1, Linear::wq, PackFormat::bitmask_w8, 0, false, ActivationMode::a32},
      {1, Linear::wk, PackFormat::bitmask_w4, 32, false, ActivationMode::a8},
      {1, Linear::wv, PackFormat::bitmask_w4, 32, true, ActivationMode::a32},
  };
  QuantOptions tail;
  tail.tail_group = true;
  for (const auto& p : plans) {
    auto& wt = m.block_weights(p.b).linear(p.l);
    const bool nm = p.f == PackFormat::nm_f32 || p.f == PackFormat::nm_w8 || p.f == PackFormat::nm_w4;
    const bool bitmask = p.f == PackFormat::bitmask_f32 || p.f == PackFormat::bitmask_w8 || p.f == PackFormat::bitmask_w4;
    if (nm) (void)Pruner<Magnitude, NM<2, 4>>{}.prune(wt.view());
    if (bitmask)
      for (std::size_t i = 0; i < wt.size(); i += 3) wt.data()[i] = 0.0f;
    if (p.f == PackFormat::w8 || p.f == PackFormat::nm_w8 || p.f == PackFormat::bitmask_w8)
      wt = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(wt.view());
    if (p.f == PackFormat::w4 || p.f == PackFormat::bitmask_w4)
      wt = p.asym ? Quantizer<Asymmetric, PerGroup<32>, 4>(tail).fake_quantize(wt.view())
                  : Quantizer<Symmetric, PerGroup<32>, 4>(tail).fake_quantize(wt.view());
    m.refresh_block(p.b);
    PackOptions o;
    o.format = p.f;
    o.group_size = p.group;
    o.asymmetric = p.asym;
    try {
      m.set_linear(p.b, p.l, pack_linear(m.weights().blocks[p.b].linear(p.l).view(), o, p.act));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_make_seeds: block %zu linear %s left dense: %s\n", p.b, std::string(model::linear_name(p.l)).c_str(), e.what());
    }
  }
  // block 1: w1 dense behind a 6-bit input quantizer; w2 low-rank; w3 dense + LoRC correction.
  m.set_linear(1, Linear::w1, std::make_unique<InputQuantLinear>(m.take_linear(1, Linear::w1), 6));
  if (lowrank) {
    auto factors = [&](std::size_t rows, std::size_t cols, std::size_t r, lowrank::FactorFormat f) {
      lowrank::LowRankFactors lf;
      lf.a = Matrix<float>(rows, r);
      lf.b = Matrix<float>(r, cols);
      fill(lf.a.data(), lf.a.size(), seed++);
      fill(lf.b.data(), lf.b.size(), seed++);
      lowrank::Compensation c;
      c.a = lowrank::StoredFactor::encode(lf.a.view(), f);
      c.b = lowrank::StoredFactor::encode(lf.b.view(), f);
      return c;
    };
    const auto [r2, c2] = m.expected_shape(Linear::w2);
    auto lr = factors(r2, c2, 3, lowrank::FactorFormat::int8);
    m.set_linear(1, Linear::w2, std::make_unique<LowRankLinear>(std::move(lr.a), std::move(lr.b)));
    const auto [r3, c3] = m.expected_shape(Linear::w3);
    m.set_linear(1, Linear::w3,
                 std::make_unique<CompensatedLinear>(m.take_linear(1, Linear::w3), factors(r3, c3, 2, lowrank::FactorFormat::f16)));
  }
  m.set_attention_input_bits(8);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <out_dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out(argv[1]);
  for (const char* d : {"gguf", "safetensors", "container", "rans", "tokenizer_json", "hf_json", "llama2c"})
    std::filesystem::create_directories(out / d);
  std::vector<float> x(256);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 29) - 14) * 0.1f;

  GgufWriter g;
  g.set("u8", std::uint8_t{1});
  g.set("i8", std::int8_t{-1});
  g.set("u16", std::uint16_t{2});
  g.set("i16", std::int16_t{-2});
  g.set("u32", std::uint32_t{3});
  g.set("i32", std::int32_t{-3});
  g.set("f32", 0.5f);
  g.set("bool", true);
  g.set("str", std::string("text"));
  g.set("u64", std::uint64_t{4});
  g.set("i64", std::int64_t{-4});
  g.set("f64", 0.25);
  g.set("arr", GgufArray::of_strings({"a", "bc"}));
  GgufArray nested;
  nested.elem_type = GgufType::array;
  nested.arrays.push_back(GgufArray::of(GgufType::i32, std::vector<std::int32_t>{1, 2}));
  g.set("nested", nested);
  g.add_tensor("f32", {32, 2}, GgmlType::F32, x.data());
  g.add_tensor("f16", {64}, GgmlType::F16, x.data());
  g.add_tensor("bf16", {16, 2}, GgmlType::BF16, x.data());
  g.add_tensor("q8", {64, 2}, GgmlType::Q8_0, x.data());
  g.add_tensor("q4", {32, 4, 2}, GgmlType::Q4_0, x.data());
  g.write((out / "gguf" / "types.gguf").string());

  model::LlamaConfig cfg;
  cfg.dim = 32;
  cfg.hidden_dim = 32;
  cfg.n_layers = 1;
  cfg.n_heads = 2;
  cfg.n_kv_heads = 1;
  cfg.vocab_size = 4;
  cfg.seq_len = 8;
  auto w = model::LlamaWeights::zeros(cfg);
  GgufVocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a"};
  v.scores = {0, 0, 0, -1};
  v.token_types = {2, 3, 3, 1};
  v.bos_id = 1;
  v.eos_id = 2;
  GgufLlamaWriteOptions opt;
  opt.linear_type = GgmlType::Q4_0;
  write_gguf_llama((out / "gguf" / "tiny_llama_q4.gguf").string(), w, &v, opt);
  write_gguf_llama((out / "gguf" / "tiny_llama_f32.gguf").string(), w, &v);
  {
    // llama2.c: the tiny Llama as a checkpoint, shared and unshared classifier, and a tokenizer file
    // (byte-fallback pieces, a merge, a piece of the maximum length).
    auto lw = w;
    for (std::size_t i = 0; i < lw.token_embedding.size(); ++i) lw.token_embedding.data()[i] = x[i % x.size()];
    for (auto& b : lw.blocks) {
      b.rms_att.assign(cfg.dim, 1.0f);
      b.rms_ffn.assign(cfg.dim, 1.0f);
    }
    lw.rms_final.assign(cfg.dim, 1.0f);
    write_llama2c(lw, (out / "llama2c" / "tiny_shared.bin").string());
    lw.config.shared_classifier = false;
    lw.classifier = lw.token_embedding;
    write_llama2c(lw, (out / "llama2c" / "tiny_unshared.bin").string());
    const model::Tokenizer tk({"<unk>", "<s>", "</s>", " ", "a", "b", " a", "ab", "<0x0A>", "<0xFF>", "abababab"},
                              {0, 0, 0, -1, -2, -3, -1.5f, -0.5f, 0, 0, -4}, 1, 2);
    const std::vector<char> tb = tk.llama2c_bytes();
    write_text(out / "llama2c" / "tok11.bin", std::string(tb.begin(), tb.end()));
  }

  // A SentencePiece vocabulary with byte fallback (<0x00>..<0xFF>), so that any text encodes.
  {
    GgufVocab sp;
    sp.model = "llama";
    sp.tokens = {"<unk>", "<s>", "</s>"};
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      sp.tokens.emplace_back(hex);
    }
    for (const char* t : {"\xE2\x96\x81", "\xE2\x96\x81t", "he", "\xE2\x96\x81the", "ll", "llo", "\xE2\x96\x81he", "\xE2\x96\x81hello",
                          "or", "ld", "\xE2\x96\x81w", "\xE2\x96\x81wor", "\xE2\x96\x81world", "\xC3\xA9"})
      sp.tokens.emplace_back(t);
    sp.scores.assign(sp.tokens.size(), 0.0f);
    sp.token_types.assign(sp.tokens.size(), 1);
    sp.token_types[0] = 2;
    sp.token_types[1] = sp.token_types[2] = 3;
    for (std::size_t i = 3; i < 259; ++i) sp.token_types[i] = 6;
    for (std::size_t i = 259; i < sp.tokens.size(); ++i) sp.scores[i] = -static_cast<float>(i - 259);
    sp.bos_id = 1;
    sp.eos_id = 2;
    sp.unk_id = 0;
    model::LlamaConfig sc = cfg;
    sc.vocab_size = sp.tokens.size();
    GgufWriter vw;
    gguf_llama_metadata(vw, sc, &sp, "tiny");
    vw.write((out / "gguf" / "vocab_spm.gguf").string());
  }

  SafetensorsWriter s;
  s.add("a", SafeDtype::F32, {2, 8}, x.data());
  s.add("b", SafeDtype::F16, {16}, x.data());
  s.add("c", SafeDtype::BF16, {4, 2}, x.data());
  s.add_bytes("d", SafeDtype::I8, {3}, std::vector<char>{1, 2, 3});
  s.set_metadata("format", "pt");
  s.write((out / "safetensors" / "small.safetensors").string());

  Container c;
  c.metadata["s"] = std::string("v");
  c.metadata["i"] = std::int64_t{7};
  c.metadata["f"] = 1.5;
  c.add_f32("w", {4, 8}, x.data());
  ContainerTensor t{"q", "int4_g32_sym", {2, 32}, {}};
  t.add_section("codes", std::vector<std::uint8_t>(32, 0x5a));
  t.add_section("scales", std::vector<std::uint16_t>{0x3c00, 0x3800});
  c.add(std::move(t));
  write_container((out / "container" / "small.sprq").string(), c);
  // rANS streams of skewed bytes.
  {
    std::vector<std::uint8_t> bytes(600);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>((i * i) % 7 == 0 ? i : i % 5);
    const std::pair<unsigned, unsigned> kinds[] = {{8, 0}, {4, 4}, {2, 32}, {8, 16}};
    for (const auto& [bits, states] : kinds) {
      const auto st = rans_encode(bytes.data(), bytes.size(), bits, states);
      std::ofstream f(out / "rans" / ("stream_" + std::to_string(bits) + "b_" + std::to_string(states) + "s.bin"),
                      std::ios::binary);
      f.write(reinterpret_cast<const char*>(st.data()), static_cast<std::streamsize>(st.size()));
    }
  }

  // Packed models (SPRQ): every op format, version 3 (bitmask int8 / int4) and version 2 (low-rank).
  {
    const auto m3 = packed_model(false);
    write_container((out / "container" / "packed_v3.sprq").string(), packed_model_container(m3));
    const auto m2 = packed_model(true);
    Container pc = packed_model_container(m2);
    // a stored llama2.c tokenizer (container_tokenizer), BOS / EOS not 1 / 2
    std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", " ", "a", "b", " a", "ab", "<0x0A>", "<0xFF>"};
    std::vector<float> scores = {0, 0, 0, -1, -2, -3, -1.5f, -0.5f, 0, 0};
    add_tokenizer(pc, model::Tokenizer(pieces, scores, 2, 1));
    write_container((out / "container" / "packed_lowrank_tok.sprq").string(), pc);
  }

  // tokenizer.json (three styles) and the same vocabulary as GGUF gpt2 vocabularies.
  const TinyBpe bpe = tiny_bpe();
  for (int style = 0; style < 3; ++style)
    write_text(out / "tokenizer_json" / ("tokenizer_" + std::to_string(style) + ".json"), tokenizer_json(bpe, style));
  for (const char* pre : {"gpt2", "llama-bpe", "qwen2"}) {
    const GgufVocab gv = gguf_bpe(bpe, pre);
    model::LlamaConfig bc = cfg;
    bc.vocab_size = gv.tokens.size();
    GgufWriter vw;  // the metadata of a Llama file, without its tensors (the seed stays small)
    gguf_llama_metadata(vw, bc, &gv, "tiny");
    vw.write((out / "gguf" / (std::string("vocab_bpe_") + pre + ".gguf")).string());
  }

  // Hugging Face config.json (llama as written by sparq; qwen2 and mistral with the optional
  // fields) and model.safetensors.index.json.
  {
    model::LlamaConfig hc = cfg;
    write_text(out / "hf_json" / "config_llama.json", hf_llama_config_json(hc, SafeDtype::BF16).dump(2));
    nlohmann::json q = hf_llama_config_json(hc, SafeDtype::F16);
    q["model_type"] = "qwen2";
    q["architectures"] = nlohmann::json::array({"Qwen2ForCausalLM"});
    q["use_sliding_window"] = true;
    q["sliding_window"] = 4;
    q["rope_scaling"] = nullptr;
    q["head_dim"] = hc.dim / hc.n_heads;
    q["bos_token_id"] = 1;
    q["eos_token_id"] = nlohmann::json::array({2, 3});
    q["tie_word_embeddings"] = true;
    q["hidden_act"] = "silu";
    write_text(out / "hf_json" / "config_qwen2.json", q.dump());
    nlohmann::json mi = hf_llama_config_json(hc, SafeDtype::F32);
    mi.erase("architectures");
    mi["model_type"] = "mistral";
    mi["sliding_window"] = 6;
    mi["rope_scaling"] = {{"rope_type", "default"}};
    write_text(out / "hf_json" / "config_mistral.json", mi.dump());
    nlohmann::json idx;
    idx["metadata"] = {{"total_size", 12345}};
    nlohmann::json wm = nlohmann::json::object();
    std::size_t k = 0;
    for (const auto& slot : io::detail::hf_slots(hc))
      if (slot.required) wm[slot.name] = "model-0000" + std::to_string(1 + (k++ % 2)) + "-of-00002.safetensors";
    idx["weight_map"] = wm;
    write_text(out / "hf_json" / "model.safetensors.index.json", idx.dump(2));
  }
  std::printf("seeds written to %s\n", out.string().c_str());
  return 0;
}
