// sparq_make_synthetic_hf: writes a Hugging Face Llama directory of a given shape with random bf16
// weights and a real byte-level BPE tokenizer, for the streaming benchmark (run_stream_1b.sh,
// docs/benchmarks.md#streaming-a-11-b-model).
//
//   sparq_make_synthetic_hf DIR [--shape tinyllama|small|tiny] [--seed S] [--shard-mib M]
//
// tinyllama (default): TinyLlama-1.1B's shape: dim 2048, hidden 5632, 22 layers, 32 query heads,
// 4 key/value heads, vocabulary 32000, context 2048, untied classifier, rope_theta 10000 (1.10 B
// parameters, 2.2 GB in bf16). small: dim 256, hidden 688, 4 layers, 8/2 heads (a quick check);
// tiny: dim 64, hidden 176, 2 layers, 4/2 heads (the tool's --stream test); both vocabulary 32000.
// Weights: linears and embeddings N(0, 0.02²), RMSNorm weights 1; deterministic for a seed
// (splitmix64 + Box-Muller), generated and written one shard at a time, so memory stays near one
// shard (--shard-mib, default 512 MiB of bf16). Tokenizer: GPT-2's byte-level BPE with its first
// 31,743 merges (tests/data/tokenizers/gpt2-vocab.bpe), i.e. 256 byte tokens, 31,743 merged tokens
// and <|endoftext|>: exactly 32,000 ids, a real vocabulary truncated as if training had stopped
// earlier.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sparq/io/hf_checkpoint.hpp>
#include <sparq/io/safetensors.hpp>
#include <sparq/model/tokenizer_bpe.hpp>

namespace {

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
};

/// n bf16 values of N(0, sigma²) (sigma = 0: all 1), seeded per tensor name.
std::vector<char> bf16_values(std::size_t n, double sigma, std::uint64_t seed) {
  std::vector<char> out(2 * n);
  Rng r{seed};
  for (std::size_t i = 0; i < n; i += 2) {
    const double u1 = r.uniform(), u2 = r.uniform();
    const double rad = std::sqrt(-2.0 * std::log(u1));
    const double v[2] = {rad * std::cos(6.283185307179586 * u2), rad * std::sin(6.283185307179586 * u2)};
    for (std::size_t k = 0; k < 2 && i + k < n; ++k) {
      const float x = sigma > 0 ? static_cast<float>(sigma * v[k]) : 1.0f;
      const std::uint16_t h = sparq::float_to_bf16(x);
      std::memcpy(out.data() + 2 * (i + k), &h, 2);
    }
  }
  return out;
}

std::uint64_t name_seed(const std::string& name, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

/// tokenizer.json of GPT-2's byte-level BPE cut to `vocab` ids (256 bytes, vocab - 257 merges, <|endoftext|>).
nlohmann::json gpt2_tokenizer_json(const std::string& bpe_path, std::size_t vocab) {
  std::ifstream f(bpe_path);
  SPARQ_CHECK(f.good(), "cannot open '", bpe_path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bpe = ss.str();
  std::vector<std::string> tokens;
  std::vector<unsigned> order;
  for (unsigned b = 0; b < 256; ++b)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) order.push_back(b);
  for (unsigned b = 0; b < 256; ++b) {
    bool in = false;
    for (unsigned o : order) in = in || o == b;
    if (!in) order.push_back(b);
  }
  for (unsigned b : order) tokens.push_back(sparq::model::bpe_detail::bytes_to_spelling(std::string(1, char(b))));
  nlohmann::json merges = nlohmann::json::array();
  std::size_t pos = bpe.find('\n') + 1;  // skip "#version: 0.2"
  while (pos < bpe.size() && tokens.size() + 1 < vocab) {
    const std::size_t end = bpe.find('\n', pos);
    const std::string line = bpe.substr(pos, end - pos);
    pos = end == std::string::npos ? bpe.size() : end + 1;
    if (line.empty()) continue;
    const std::size_t sp = line.find(' ');
    merges.push_back(line);
    tokens.push_back(line.substr(0, sp) + line.substr(sp + 1));
  }
  SPARQ_CHECK(tokens.size() + 1 == vocab, "'", bpe_path, "' has too few merges for a vocabulary of ", vocab);
  tokens.emplace_back("<|endoftext|>");
  nlohmann::json v = nlohmann::json::object();
  for (std::size_t i = 0; i < tokens.size(); ++i) v[tokens[i]] = i;
  nlohmann::json added = nlohmann::json::array();
  added.push_back({{"id", vocab - 1}, {"content", "<|endoftext|>"}, {"special", true}, {"lstrip", false},
                   {"rstrip", false}, {"single_word", false}, {"normalized", false}});
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false}, {"vocab", v},
            {"merges", merges}}}};
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using sparq::io::SafeDtype;
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: sparq_make_synthetic_hf DIR [--shape tinyllama|small|tiny] [--seed S] [--shard-mib M]\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::string shape = "tinyllama";
  std::uint64_t seed = 1;
  std::uint64_t shard_mib = 512;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--shape") shape = v;
    else if (k == "--seed") seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--shard-mib") shard_mib = std::strtoull(v.c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "sparq_make_synthetic_hf: unknown option '%s'\n", k.c_str());
      return 2;
    }
  }
  try {
    sparq::model::LlamaConfig c;
    if (shape == "tinyllama") {
      c.dim = 2048, c.hidden_dim = 5632, c.n_layers = 22, c.n_heads = 32, c.n_kv_heads = 4, c.vocab_size = 32000;
      c.seq_len = 2048;
    } else if (shape == "small") {
      c.dim = 256, c.hidden_dim = 688, c.n_layers = 4, c.n_heads = 8, c.n_kv_heads = 2, c.vocab_size = 32000;
      c.seq_len = 1024;
    } else if (shape == "tiny") {
      c.dim = 64, c.hidden_dim = 176, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.vocab_size = 32000;
      c.seq_len = 256;
    } else {
      std::fprintf(stderr, "sparq_make_synthetic_hf: --shape %s, expected tinyllama, small or tiny\n", shape.c_str());
      return 2;
    }
    c.rope_theta = 10000.0f;
    c.rms_eps = 1e-5f;
    c.shared_classifier = false;
    c.validate();
    fs::create_directories(dir);
    const fs::path root(dir);
    {
      auto cj = sparq::io::hf_llama_config_json(c, SafeDtype::BF16);
      cj["bos_token_id"] = c.vocab_size - 1;  // <|endoftext|> begins and ends documents, as in GPT-2
      cj["eos_token_id"] = c.vocab_size - 1;
      std::ofstream(root / "config.json") << cj.dump(2) << "\n";
      std::ofstream(root / "tokenizer.json")
          << gpt2_tokenizer_json(std::string(SPARQ_SOURCE_DIR) + "/tests/data/tokenizers/gpt2-vocab.bpe", c.vocab_size)
                 .dump();
    }
    // Shards in hf_slots order, each closed when the next tensor would pass --shard-mib.
    const std::uint64_t cap = shard_mib << 20;
    std::vector<sparq::io::detail::HfSlot> slots;
    for (const auto& s : sparq::io::detail::hf_slots(c))
      if (s.role != sparq::io::detail::HfRole::bias) slots.push_back(s);
    std::map<std::string, std::string> weight_map;
    std::vector<std::vector<const sparq::io::detail::HfSlot*>> shards(1);
    std::uint64_t bytes = 0, total = 0, params = 0;
    for (const auto& s : slots) {
      const std::uint64_t b = 2 * s.rows * (s.cols ? s.cols : 1);
      if (!shards.back().empty() && bytes + b > cap) {
        shards.emplace_back();
        bytes = 0;
      }
      shards.back().push_back(&s);
      bytes += b;
      total += b;
      params += b / 2;
    }
    const std::size_t n = shards.size();
    for (std::size_t i = 0; i < n; ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n);
      sparq::io::SafetensorsWriter w;
      for (const auto* s : shards[i]) {
        const bool norm = s->cols == 0;
        const std::size_t count = s->rows * (norm ? 1 : s->cols);
        std::vector<std::uint64_t> shp = norm ? std::vector<std::uint64_t>{s->rows} : std::vector<std::uint64_t>{s->rows, s->cols};
        w.add_bytes(s->name, SafeDtype::BF16, shp, bf16_values(count, norm ? 0.0 : 0.02, name_seed(s->name, seed)));
        weight_map[s->name] = name;
      }
      w.write((root / name).string());
      std::fprintf(stderr, "wrote %s (%zu tensors)\n", name, shards[i].size());
    }
    nlohmann::json idx;
    idx["metadata"] = {{"total_size", total}};
    idx["weight_map"] = weight_map;
    std::ofstream(root / "model.safetensors.index.json") << idx.dump(2) << "\n";
    std::printf("%s: %s shape, %llu parameters, %.2f GB of bf16 in %zu shards\n", dir.c_str(), shape.c_str(),
                static_cast<unsigned long long>(params), static_cast<double>(total) / 1e9, n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq_make_synthetic_hf: %s\n", e.what());
    return 1;
  }
  return 0;
}
