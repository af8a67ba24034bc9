// Hugging Face model directories (io/hf_checkpoint.hpp): stories260K written as F32 / BF16 shards
// reads back exactly, scores the golden perplexity through io::load, the q/k permutation is
// applied, and every malformed or unsupported directory is a sparq::error naming the value.
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "sparq/core/half.hpp"
#include "sparq/io/hf_checkpoint.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/io/load.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq_test.hpp"

using namespace sparq;
namespace fs = std::filesystem;

namespace {

struct TempDir : sparq_test::TempDir {
  TempDir() : sparq_test::TempDir("sparq-hf") {}
};

model::LlamaWeights small_weights(bool shared = true) {
  model::LlamaConfig c;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 32;
  c.seq_len = 64;
  c.shared_classifier = shared;
  auto w = model::LlamaWeights::zeros(c);
  unsigned seed = 1;
  auto fill = [&](float* p, std::size_t n) {
    const auto v = sparq_test::randn(n, seed++, 0.5f);
    std::memcpy(p, v.data(), n * sizeof(float));
  };
  fill(w.token_embedding.data(), w.token_embedding.size());
  fill(w.rms_final.data(), w.rms_final.size());
  if (!shared) fill(w.classifier.data(), w.classifier.size());
  for (auto& b : w.blocks) {
    fill(b.rms_att.data(), b.rms_att.size());
    fill(b.rms_ffn.data(), b.rms_ffn.size());
    for (auto l : model::all_linears) fill(b.linear(l).data(), b.linear(l).size());
  }
  return w;
}

/// Every tensor of `got` equals round(`want`) bit for bit, and the configs agree.
void require_same(const model::LlamaWeights& got, const model::LlamaWeights& want, float (*round)(float)) {
  const auto& a = got.config;
  const auto& b = want.config;
  REQUIRE(a.dim == b.dim);
  REQUIRE(a.hidden_dim == b.hidden_dim);
  REQUIRE(a.n_layers == b.n_layers);
  REQUIRE(a.n_heads == b.n_heads);
  REQUIRE(a.n_kv_heads == b.n_kv_heads);
  REQUIRE(a.vocab_size == b.vocab_size);
  REQUIRE(a.seq_len == b.seq_len);
  REQUIRE(a.shared_classifier == b.shared_classifier);
  REQUIRE(a.rms_eps == b.rms_eps);
  REQUIRE(a.rope_theta == b.rope_theta);
  auto same = [&](const float* x, const float* y, std::size_t n, const std::string& what) {
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float r = round(y[i]);
      if (std::memcmp(&x[i], &r, sizeof(float)) != 0) ++bad;
    }
    INFO(what);
    CHECK(bad == 0);
  };
  same(got.token_embedding.data(), want.token_embedding.data(), want.token_embedding.size(), "embedding");
  same(got.rms_final.data(), want.rms_final.data(), want.rms_final.size(), "rms_final");
  REQUIRE(got.classifier.size() == want.classifier.size());
  same(got.classifier.data(), want.classifier.data(), want.classifier.size(), "classifier");
  for (std::size_t l = 0; l < b.n_layers; ++l) {
    const auto& x = got.blocks[l];
    const auto& y = want.blocks[l];
    same(x.rms_att.data(), y.rms_att.data(), y.rms_att.size(), "rms_att " + std::to_string(l));
    same(x.rms_ffn.data(), y.rms_ffn.data(), y.rms_ffn.size(), "rms_ffn " + std::to_string(l));
    for (auto lin : model::all_linears) {
      REQUIRE(x.linear(lin).rows() == y.linear(lin).rows());
      REQUIRE(x.linear(lin).cols() == y.linear(lin).cols());
      same(x.linear(lin).data(), y.linear(lin).data(), y.linear(lin).size(),
           std::string(model::linear_name(lin)) + " " + std::to_string(l));
    }
  }
}

float identity(float x) { return x; }

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}
void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}
void edit_config(const TempDir& d, const std::function<void(nlohmann::json&)>& fn) {
  auto j = read_json(d.path / "config.json");
  fn(j);
  write_text(d.path / "config.json", j.dump(2));
}
void edit_index(const TempDir& d, const std::function<void(nlohmann::json&)>& fn) {
  auto j = read_json(d.path / "model.safetensors.index.json");
  fn(j);
  write_text(d.path / "model.safetensors.index.json", j.dump(2));
}

/// Rewrites a single-file directory's model.safetensors: `keep` decides per tensor (and may add
/// replacements to the writer), `extra` adds tensors.
void rewrite_weights(const TempDir& d, const std::function<bool(const std::string&)>& keep,
                     const std::function<void(io::SafetensorsWriter&)>& extra) {
  const auto path = (d.path / "model.safetensors").string();
  const auto f = io::read_safetensors(path);
  io::SafetensorsWriter w;
  for (const auto& t : f.tensors) {
    if (!keep(t.name)) continue;
    const char* p = f.data(t);
    w.add_bytes(t.name, t.dtype, t.shape, std::vector<char>(p, p + (t.end - t.begin)));
  }
  extra(w);
  w.write(path);
}

/// Runs fn, requires a sparq::error whose message contains every one of `parts`.
void require_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const sparq::error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const auto& p : parts) {
      INFO("expected to contain: " << p);
      CHECK(msg.find(p) != std::string::npos);
    }
    return;
  }
  FAIL("no sparq::error thrown (expected one naming " << parts.front() << ")");
}

}  // namespace

TEST_CASE("stories260K as an HF directory: F32 and BF16, 3 shards, read back exactly; golden perplexity",
          "[io][hf][real]") {
  const auto bin = sparq_test::data_path("models/stories260K.bin");
  const auto tok = sparq_test::data_path("models/tok512.bin");
  const auto text = sparq_test::data_path("text/tinystories_valid_head.txt");
  if (bin.empty() || tok.empty() || text.empty()) return;
  const auto w = io::read_llama2c(bin);
  // 1,056,512 bytes of F32 tensors; 400 KB shards give three (the embedding, 128 KB, first).
  TempDir f32, bf16;
  io::write_hf_llama(f32.str(), w, io::SafeDtype::F32, 400'000);
  io::write_hf_llama(bf16.str(), w, io::SafeDtype::BF16, 200'000);
  for (const TempDir* d : {&f32, &bf16}) {
    CHECK_FALSE(fs::exists(d->path / "model.safetensors"));
    const auto idx = read_json(d->path / "model.safetensors.index.json");
    std::set<std::string> files;
    for (const auto& kv : idx["weight_map"].items()) files.insert(kv.value().get<std::string>());
    CHECK(files == std::set<std::string>{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                         "model-00003-of-00003.safetensors"});
    for (const auto& s : files) CHECK(fs::exists(d->path / s));
  }
  const auto cfg = read_json(f32.path / "config.json");
  CHECK(cfg["model_type"] == "llama");
  CHECK(cfg["num_key_value_heads"] == 4);
  CHECK(cfg["max_position_embeddings"] == 512);
  CHECK(cfg["tie_word_embeddings"] == true);
  CHECK(cfg["rms_norm_eps"].get<double>() == 1e-5);

  const auto r32 = io::read_hf_llama(f32.str());
  CHECK(r32.model_type == "llama");
  require_same(r32.weights, w, identity);
  const auto r16 = io::read_hf_llama(bf16.str());
  require_same(r16.weights, w, round_to_bf16);

  // The F32 directory through io::load, scored with the reference protocol.
  REQUIRE_THROWS_WITH(io::load(f32.str()), Catch::Contains("--tokenizer"));
  auto lm = io::load(f32.str(), tok);
  CHECK(lm.format == "hf");
  CHECK(lm.tokenizer_source == tok);
  const auto stream = model::document_token_stream_file(text, lm.tokenizer, 60000);
  model::PerplexityOptions o;
  o.seq_len = 512;
#if defined(__SANITIZE_ADDRESS__)
  o.max_tokens = 1024;  // -O1 + ASan: two windows; Release checks the full figure
#endif
  const auto p = model::perplexity(lm.model, stream, o);
  CHECK(std::isfinite(p.perplexity));
#if !defined(__SANITIZE_ADDRESS__)
  CHECK(p.scored_tokens == 59882);
  CHECK(std::fabs(p.mean_nll - 1.3986) < 0.0005);
  CHECK(std::fabs(p.perplexity - 4.0494) < 0.0005);
#else
  CHECK((p.scored_tokens > 0 && p.scored_tokens < 1024));  // at most the 1024 tokens, less each window's first
#endif
  // A llama2.c tokenizer named tok<vocab>.bin inside the directory is found without --tokenizer.
  fs::copy_file(tok, f32.path / "tok512.bin");
  CHECK(io::load(f32.str()).tokenizer_source == (f32.path / "tok512.bin").string());
  CHECK(io::load_model(f32.str()).config().dim == 64);
}

TEST_CASE("HF directories round-trip: single file, F16, untied classifier", "[io][hf]") {
  for (bool shared : {true, false}) {
    const auto w = small_weights(shared);
    TempDir d;
    CHECK_FALSE(io::is_hf_directory(d.str()));
    io::write_hf_llama(d.str(), w);
    CHECK(io::is_hf_directory(d.str()));
    CHECK(fs::exists(d.path / "model.safetensors"));
    CHECK_FALSE(fs::exists(d.path / "model.safetensors.index.json"));
    require_same(io::read_hf_llama(d.str()).weights, w, identity);
    io::write_hf_llama(d.str(), w, io::SafeDtype::F16);
    require_same(io::read_hf_llama(d.str()).weights, w, round_to_fp16);
    // Rewriting as shards removes the single file, so the directory stays unambiguous.
    io::write_hf_llama(d.str(), w, io::SafeDtype::F32, 1000);
    CHECK_FALSE(fs::exists(d.path / "model.safetensors"));
    require_same(io::read_hf_llama(d.str()).weights, w, identity);
  }
  // Values a 16-bit dtype cannot hold, and weights that do not match their config, are refused.
  {
    auto big = small_weights(true);
    big.blocks[1].w2(3, 5) = 1e6f;
    TempDir d;
    require_error([&] { io::write_hf_llama(d.str(), big, io::SafeDtype::F16); },
                  {"model.layers.1.mlp.down_proj.weight", "1000000", "F16"});
    CHECK_NOTHROW(io::write_hf_llama(d.str(), big, io::SafeDtype::BF16));
    big.rms_final.pop_back();
    require_error([&] { io::write_hf_llama(d.str(), big); }, {"model.norm.weight", "15 values"});
  }
  // An lm_head equal to the embedding is read as a shared classifier (tied or not).
  const auto w = small_weights(true);
  TempDir d;
  io::write_hf_llama(d.str(), w);
  rewrite_weights(d, [](const std::string&) { return true; }, [&](io::SafetensorsWriter& sw) {
    sw.add("lm_head.weight", io::SafeDtype::F32, {32, 16}, w.token_embedding.data());
  });
  edit_config(d, [](nlohmann::json& j) { j["tie_word_embeddings"] = false; });
  CHECK(io::read_hf_llama(d.str()).weights.config.shared_classifier);
}

TEST_CASE("HF q/k rows (rotate-half order) are permuted into the runtime's adjacent-pair order", "[io][hf]") {
  const auto w = small_weights(true);
  const auto& c = w.config;
  const std::size_t hd = c.head_dim(), half = hd / 2;
  // HF row h*hd + j*half + i holds the runtime's row h*hd + 2i + j (written here by hand).
  auto to_hf = [&](const Matrix<float>& m, std::size_t heads) {
    Matrix<float> out(m.rows(), m.cols());
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t i = 0; i < half; ++i)
        for (std::size_t j = 0; j < 2; ++j)
          for (std::size_t k = 0; k < m.cols(); ++k) out(h * hd + j * half + i, k) = m(h * hd + 2 * i + j, k);
    return out;
  };
  io::SafetensorsWriter sw;
  auto put = [&](const std::string& n, const Matrix<float>& m) {
    sw.add(n, io::SafeDtype::F32, {m.rows(), m.cols()}, m.data());
  };
  auto putv = [&](const std::string& n, const std::vector<float>& v) {
    sw.add(n, io::SafeDtype::F32, {v.size()}, v.data());
  };
  put("model.embed_tokens.weight", w.token_embedding);
  putv("model.norm.weight", w.rms_final);
  bool differs = false;
  for (std::size_t l = 0; l < c.n_layers; ++l) {
    const auto& b = w.blocks[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    putv(p + "input_layernorm.weight", b.rms_att);
    putv(p + "post_attention_layernorm.weight", b.rms_ffn);
    const auto q = to_hf(b.wq, c.n_heads);
    const auto k = to_hf(b.wk, c.n_kv_heads);
    differs = differs || std::memcmp(q.data(), b.wq.data(), q.size() * 4) != 0 ||
              std::memcmp(k.data(), b.wk.data(), k.size() * 4) != 0;
    put(p + "self_attn.q_proj.weight", q);
    put(p + "self_attn.k_proj.weight", k);
    put(p + "self_attn.v_proj.weight", b.wv);
    put(p + "self_attn.o_proj.weight", b.wo);
    put(p + "mlp.gate_proj.weight", b.w1);
    put(p + "mlp.down_proj.weight", b.w2);
    put(p + "mlp.up_proj.weight", b.w3);
    // an inv_freq buffer, as older transformers versions saved, is ignored
    const std::vector<float> inv(half, 1.0f);
    putv(p + "self_attn.rotary_emb.inv_freq", inv);
  }
  REQUIRE(differs);  // the HF files really hold other rows than the runtime's
  TempDir d;
  sw.write((d.path / "model.safetensors").string());
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_size", c.dim},
                      {"intermediate_size", c.hidden_dim},
                      {"num_hidden_layers", c.n_layers},
                      {"num_attention_heads", c.n_heads},
                      {"num_key_value_heads", c.n_kv_heads},
                      {"vocab_size", c.vocab_size},
                      {"max_position_embeddings", c.seq_len},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"rope_scaling", nullptr},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", true},
                      {"bos_token_id", 1},
                      {"eos_token_id", {2, 3}}};
  write_text(d.path / "config.json", j.dump());
  write_text(d.path / "tokenizer.model", "not read");
  const auto r = io::read_hf_llama(d.str());
  require_same(r.weights, w, identity);
  CHECK(r.bos_id == 1);
  CHECK(r.eos_id == 2);
  CHECK(r.tokenizer_model == (d.path / "tokenizer.model").string());
  // io::load without a tokenizer names what the directory has and asks for --tokenizer.
  require_error([&] { (void)io::load(d.str()); }, {"tokenizer.model", "not supported yet", "--tokenizer"});
}

TEST_CASE("HF directories: bad or unsupported input is a sparq::error naming the value", "[io][hf][errors]") {
  const auto w = small_weights(true);
  auto fresh = [&](TempDir& d, std::uint64_t shard = 0) { io::write_hf_llama(d.str(), w, io::SafeDtype::F32, shard); };
  auto read = [](const TempDir& d) { return [&d] { (void)io::read_hf_llama(d.str()); }; };

  SECTION("not a directory, no config, no weights") {
    require_error([] { (void)io::read_hf_llama("/nonexistent/hf"); }, {"/nonexistent/hf", "not a directory"});
    TempDir d;
    require_error(read(d), {"config.json", "does not exist"});
    fresh(d);
    fs::remove(d.path / "model.safetensors");
    require_error(read(d), {"neither model.safetensors nor model.safetensors.index.json"});
  }
  SECTION("missing config field") {
    TempDir d;
    fresh(d);
    edit_config(d, [](nlohmann::json& j) { j.erase("hidden_size"); });
    require_error(read(d), {"no field 'hidden_size'"});
    edit_config(d, [](nlohmann::json& j) {
      j["hidden_size"] = 16;
      j["num_attention_heads"] = 4.5;
    });
    require_error(read(d), {"num_attention_heads = 4.5"});
  }
  SECTION("unsupported architecture") {
    TempDir d;
    fresh(d);
    edit_config(d, [](nlohmann::json& j) { j["model_type"] = "gpt2"; });
    require_error(read(d), {"model_type = \"gpt2\""});
    edit_config(d, [](nlohmann::json& j) {
      j["model_type"] = "llama";
      j["architectures"] = {"GPTNeoXForCausalLM"};
    });
    require_error(read(d), {"architectures = [\"GPTNeoXForCausalLM\"]"});
    edit_config(d, [](nlohmann::json& j) { j["architectures"] = {"MistralForCausalLM"}; });
    require_error(read(d), {"model_type = \"llama\" contradicts"});
  }
  SECTION("rope_scaling llama3, hidden_act, head_dim, quantization_config") {
    TempDir d;
    fresh(d);
    edit_config(d, [](nlohmann::json& j) {
      j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    });
    require_error(read(d), {"rope_scaling.rope_type = \"llama3\"", "not supported"});
    edit_config(d, [](nlohmann::json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; });
    require_error(read(d), {"rope_scaling.type = \"linear\""});
    edit_config(d, [](nlohmann::json& j) { j["rope_scaling"] = {{"rope_type", "default"}}; });
    CHECK_NOTHROW(io::read_hf_llama(d.str()));
    edit_config(d, [](nlohmann::json& j) { j["hidden_act"] = "gelu"; });
    require_error(read(d), {"hidden_act = \"gelu\""});
    edit_config(d, [](nlohmann::json& j) {
      j["hidden_act"] = "silu";
      j["head_dim"] = 8;
    });
    require_error(read(d), {"head_dim = 8", "16 / 4"});
    edit_config(d, [](nlohmann::json& j) {
      j["head_dim"] = 4;
      j["quantization_config"] = {{"quant_method", "gptq"}};
    });
    require_error(read(d), {"quantization_config"});
  }
  SECTION("qwen2: zero q/k/v biases accepted, a non-zero one rejected") {
    TempDir d;
    fresh(d);
    edit_config(d, [](nlohmann::json& j) {
      j["model_type"] = "qwen2";
      j["architectures"] = {"Qwen2ForCausalLM"};
      j["use_sliding_window"] = false;
      j["sliding_window"] = 32;
    });
    const std::vector<float> zeros(16, 0.0f), kzeros(8, 0.0f);
    rewrite_weights(d, [](const std::string&) { return true; }, [&](io::SafetensorsWriter& sw) {
      for (int l = 0; l < 2; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
        sw.add(p + "q_proj.bias", io::SafeDtype::BF16, {16}, zeros.data());
        sw.add(p + "k_proj.bias", io::SafeDtype::BF16, {8}, kzeros.data());
        sw.add(p + "v_proj.bias", io::SafeDtype::BF16, {8}, kzeros.data());
      }
    });
    const auto r = io::read_hf_llama(d.str());
    CHECK(r.model_type == "qwen2");
    CHECK(r.weights.config.seq_len == 64);  // use_sliding_window false: the window does not apply
    require_same(r.weights, w, identity);
    auto kb = kzeros;
    kb[5] = 0.25f;
    rewrite_weights(d, [](const std::string& n) { return n != "model.layers.1.self_attn.k_proj.bias"; },
                    [&](io::SafetensorsWriter& sw) {
                      sw.add("model.layers.1.self_attn.k_proj.bias", io::SafeDtype::BF16, {8}, kb.data());
                    });
    require_error(read(d), {"model.layers.1.self_attn.k_proj.bias", "non-zero value 0.25", "index 5"});
    rewrite_weights(d, [](const std::string& n) { return n != "model.layers.1.self_attn.k_proj.bias"; },
                    [&](io::SafetensorsWriter& sw) {
                      sw.add("model.layers.1.self_attn.k_proj.bias", io::SafeDtype::BF16, {16}, zeros.data());
                    });
    require_error(read(d), {"model.layers.1.self_attn.k_proj.bias", "shape [16]", "[8]"});
  }
  SECTION("mistral: the sliding window caps the context") {
    TempDir d;
    fresh(d);
    edit_config(d, [](nlohmann::json& j) {
      j["model_type"] = "mistral";
      j["architectures"] = {"MistralForCausalLM"};
      j["sliding_window"] = 48;
    });
    CHECK(io::read_hf_llama(d.str()).weights.config.seq_len == 48);
  }
  SECTION("index: missing shard, path traversal, unmapped or misplaced tensors") {
    TempDir d;
    fresh(d, 1000);
    const auto idx = read_json(d.path / "model.safetensors.index.json");
    const std::string first = idx["weight_map"]["model.embed_tokens.weight"].get<std::string>();
    const std::string norm_shard = idx["weight_map"]["model.norm.weight"].get<std::string>();
    edit_index(d, [](nlohmann::json& j) { j["weight_map"]["model.norm.weight"] = "model-00099-of-00099.safetensors"; });
    require_error(read(d), {"model-00099-of-00099.safetensors", "does not exist"});
    for (const char* bad : {"../x", "../x.safetensors", "/etc/passwd", "sub/a.safetensors", ".."}) {
      edit_index(d, [&](nlohmann::json& j) { j["weight_map"]["model.norm.weight"] = bad; });
      require_error(read(d), {std::string("\"") + bad + "\"", "plain file name"});
    }
    edit_index(d, [&](nlohmann::json& j) { j["weight_map"]["model.norm.weight"] = first; });
    require_error(read(d), {"model.norm.weight"});  // held by another shard than the index says
    edit_index(d, [&](nlohmann::json& j) { j["weight_map"]["model.norm.weight"] = norm_shard; });
    CHECK_NOTHROW(io::read_hf_llama(d.str()));
    edit_index(d, [&](nlohmann::json& j) { j["weight_map"]["model.layers.0.mlp.extra.weight"] = first; });
    require_error(read(d), {"model.layers.0.mlp.extra.weight", first, "does not hold it"});
    // Shard 2 holds both norms of layer 0 (and nothing else); unmap one of them.
    edit_index(d, [&](nlohmann::json& j) {
      j["weight_map"].erase("model.layers.0.mlp.extra.weight");
      j["weight_map"].erase("model.layers.0.post_attention_layernorm.weight");
    });
    require_error(read(d), {"model.layers.0.post_attention_layernorm.weight", "does not map"});
    edit_index(d, [&](nlohmann::json& j) { j["weight_map"] = nlohmann::json::object(); });
    require_error(read(d), {"weight_map"});
    // A truncated shard fails on its header, before anything is allocated.
    fresh(d, 1000);
    fs::resize_file(d.path / norm_shard, fs::file_size(d.path / norm_shard) - 4);
    require_error(read(d), {norm_shard, "data buffer"});
  }
  SECTION("missing or unexpected tensors, shape and dtype") {
    TempDir d;
    fresh(d);
    rewrite_weights(d, [](const std::string& n) { return n != "model.layers.1.mlp.up_proj.weight"; },
                    [](io::SafetensorsWriter&) {});
    require_error(read(d), {"missing tensor 'model.layers.1.mlp.up_proj.weight'"});
    fresh(d);
    const std::vector<float> big(24 * 17, 0.5f);
    rewrite_weights(d, [](const std::string& n) { return n != "model.layers.0.mlp.gate_proj.weight"; },
                    [&](io::SafetensorsWriter& sw) {
                      sw.add("model.layers.0.mlp.gate_proj.weight", io::SafeDtype::F32, {24, 17}, big.data());
                    });
    require_error(read(d), {"model.layers.0.mlp.gate_proj.weight", "[24, 17]", "[24, 16]"});
    fresh(d);
    rewrite_weights(d, [](const std::string& n) { return n != "model.layers.0.self_attn.o_proj.weight"; },
                    [&](io::SafetensorsWriter& sw) {
                      sw.add_bytes("model.layers.0.self_attn.o_proj.weight", io::SafeDtype::I8, {16, 16},
                                   std::vector<char>(256, 1));
                    });
    require_error(read(d), {"model.layers.0.self_attn.o_proj.weight", "dtype I8"});
    fresh(d);
    rewrite_weights(d, [](const std::string&) { return true; }, [&](io::SafetensorsWriter& sw) {
      sw.add("model.layers.2.input_layernorm.weight", io::SafeDtype::F32, {16}, w.rms_final.data());
    });
    require_error(read(d), {"unexpected tensor 'model.layers.2.input_layernorm.weight'"});
    fresh(d);
    std::vector<float> nan = w.rms_final;
    nan[3] = std::nanf("");
    rewrite_weights(d, [](const std::string& n) { return n != "model.norm.weight"; }, [&](io::SafetensorsWriter& sw) {
      sw.add("model.norm.weight", io::SafeDtype::F32, {16}, nan.data());
    });
    require_error(read(d), {"model.norm.weight", "non-finite", "index 3"});
  }
  SECTION("tie_word_embeddings false without lm_head; tied but different lm_head") {
    TempDir d;
    fresh(d);
    edit_config(d, [](nlohmann::json& j) { j["tie_word_embeddings"] = false; });
    require_error(read(d), {"tie_word_embeddings = false", "lm_head.weight"});
    const std::vector<float> other(32 * 16, 0.125f);
    rewrite_weights(d, [](const std::string&) { return true; }, [&](io::SafetensorsWriter& sw) {
      sw.add("lm_head.weight", io::SafeDtype::F32, {32, 16}, other.data());
    });
    CHECK_FALSE(io::read_hf_llama(d.str()).weights.config.shared_classifier);
    edit_config(d, [](nlohmann::json& j) { j["tie_word_embeddings"] = true; });
    require_error(read(d), {"tie_word_embeddings = true", "lm_head.weight differs"});
  }
  SECTION("hostile config: huge dims with tiny files do not allocate") {
    TempDir d;
    fresh(d);
    edit_config(d, [](nlohmann::json& j) {
      j["vocab_size"] = 16000000;
      j["hidden_size"] = 16384;
      j["intermediate_size"] = 16000000;
      j["num_hidden_layers"] = 4000;
      j["num_attention_heads"] = 128;
      j["num_key_value_heads"] = 128;
      j["head_dim"] = 128;
    });
    require_error(read(d), {"model.embed_tokens.weight", "[32, 16]", "[16000000, 16384]"});
    edit_config(d, [](nlohmann::json& j) { j["num_key_value_heads"] = 3; });
    require_error(read(d), {"n_kv_heads = 3"});
  }
  SECTION("both a single file and an index") {
    TempDir d;
    fresh(d, 1000);
    io::SafetensorsWriter sw;
    sw.add("model.norm.weight", io::SafeDtype::F32, {16}, w.rms_final.data());
    sw.write((d.path / "model.safetensors").string());
    require_error(read(d), {"both model.safetensors and model.safetensors.index.json"});
  }
  SECTION("duplicate JSON keys and non-JSON") {
    TempDir d;
    fresh(d);
    auto txt = read_json(d.path / "config.json").dump();
    txt.insert(1, "\"vocab_size\": 5, ");
    write_text(d.path / "config.json", txt);
    require_error(read(d), {"'vocab_size' twice"});
    write_text(d.path / "config.json", "{ nope");
    require_error(read(d), {"config.json is not valid JSON"});
  }
}
