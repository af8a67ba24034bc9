// Writes a small seed corpus for the fuzzers: valid GGUF (every metadata type, every tensor type,
// a tiny Llama), safetensors and container files, written with sparq's own writers.
// Usage: fuzz_make_seeds <out_dir>   (creates out_dir/{gguf,safetensors,container}/)
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "sparq/io/container.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/gguf_writer.hpp"
#include "sparq/io/safetensors.hpp"

using namespace sparq;
using namespace sparq::io;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <out_dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out(argv[1]);
  for (const char* d : {"gguf", "safetensors", "container"}) std::filesystem::create_directories(out / d);
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
  std::printf("seeds written to %s\n", out.string().c_str());
  return 0;
}
