// libFuzzer target: the JSON files of a Hugging Face model directory (io/hf_checkpoint.hpp):
// config.json (hf_parse_config, the hyper-parameters and every rejected field) and
// model.safetensors.index.json (hf_parse_weight_map, the tensor -> shard map and its file-name
// checks), both through hf_parse_json (depth cap, duplicate keys), the in-memory part of
// hf_read_json. Each input is tried as both files. Any input must give either sparq::error or a
// valid result: a config that passed LlamaConfig::validate, shard names that are plain
// *.safetensors file names.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sparq/io/hf_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sparq;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = io::detail::hf_parse_json(text, "fuzz");
  } catch (const error&) {
    return 0;
  }
  try {
    const auto hc = io::detail::hf_parse_config(j, "fuzz");
    hc.cfg.validate();  // must not throw: hf_parse_config validated it
    if (hc.bos >= static_cast<std::int64_t>(hc.cfg.vocab_size) || hc.eos >= static_cast<std::int64_t>(hc.cfg.vocab_size))
      __builtin_trap();
    if (hc.cfg.n_layers <= 64) (void)io::detail::hf_slots(hc.cfg);  // the names and shapes the reader expects
  } catch (const error&) {
  }
  try {
    const auto m = io::detail::hf_parse_weight_map(j, "fuzz");
    for (const auto& kv : m) {
      const std::string& s = kv.second;
      if (s.find('/') != std::string::npos || s.find('\\') != std::string::npos || s == ".." ||
          s.size() <= std::string_view(".safetensors").size())
        __builtin_trap();  // a shard name that could leave the model directory
    }
  } catch (const error&) {
  }
  return 0;
}
