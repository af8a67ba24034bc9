// libFuzzer target: SPRQ container reader. Each input is parsed twice: as given (which almost
// always stops at a checksum), and after its size and checksum fields were recomputed, so that
// the fuzzer reaches the structural checks behind the checksums (and the rANS decoder of
// version-2 coded sections). A container that parses also goes through the readers built on it:
// the packed model reader (io/packed_model.hpp, packed_model_from_container: every op format's
// validation, then two decode steps through the read ops, whose kernels must stay in bounds, when
// its values are finite and small) when its config.* metadata describes a small model, and the
// stored tokenizer (container_tokenizer).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "sparq/core/half.hpp"
#include "sparq/io/container.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/llama_state.hpp"

namespace {
template <class T>
T peek(const std::vector<char>& b, std::size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
template <class T>
void poke(std::vector<char>& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
void refresh_checksums(std::vector<char>& b) {
  using sparq::io::crc32;
  if (b.size() < 40) return;
  poke<std::uint64_t>(b, 8, b.size());
  poke<std::uint32_t>(b, 28, crc32(b.data(), 28));
  const std::size_t end = b.size() - 8;
  const auto n = peek<std::uint32_t>(b, 16);
  std::size_t pos = 32;
  for (std::uint64_t i = 0; i <= n && pos + 12 <= end; ++i) {
    const auto len = peek<std::uint64_t>(b, pos);
    if (len > end - pos - 12) break;
    poke<std::uint32_t>(b, pos + 8 + static_cast<std::size_t>(len),
                        crc32(b.data() + pos + 8, static_cast<std::size_t>(len)));
    pos += 12 + static_cast<std::size_t>(len);
  }
  poke<std::uint32_t>(b, end, crc32(b.data(), end));
}
/// config.<key> as an int64 in 1..2^24, or 0.
std::uint64_t config_value(const sparq::io::Container& c, const char* key) {
  const auto it = c.metadata.find(std::string("config.") + key);
  if (it == c.metadata.end() || !std::holds_alternative<std::int64_t>(it->second)) return 0;
  const std::int64_t v = std::get<std::int64_t>(it->second);
  return v > 0 && v <= (std::int64_t{1} << 24) ? static_cast<std::uint64_t>(v) : 0;
}

/// True when every float of the container's f32 sections (tensor data, values, scales, f32 / f16 /
/// bf16 low-rank factors) is finite and within +-1e4. Only then does the harness run decode steps:
/// finite but huge weights overflow to inf / NaN in a forward pass, and a NaN activation reaching an
/// int8 activation quantizer (model::quantize_token_int8: float -> int8 cast of NaN) is undefined
/// behaviour in the runtime, not in the reader (docs/fuzzing.md, "Found, not fixed here").
bool small_finite_values(const sparq::io::Container& c) {
  auto ok = [](float f) { return std::isfinite(f) && std::fabs(f) <= 1e4f; };
  for (const auto& t : c.tensors) {
    for (const auto& s : t.sections) {
      const bool factor = s.name == "a" || s.name == "b";
      std::int64_t fmt = 0;  // lowrank::FactorFormat: 0 f32, 1 int8, 2 f16, 3 bf16
      if (factor) {
        const auto it = c.metadata.find(t.name + "." + s.name + "_format");
        if (it == c.metadata.end() || !std::holds_alternative<std::int64_t>(it->second)) return false;
        fmt = std::get<std::int64_t>(it->second);
      } else if (!(t.format == "f32" || s.name == "values" || s.name == "scales" || s.name == "a_scales" ||
                   s.name == "b_scales")) {
        continue;
      }
      if (fmt == 1) continue;
      const std::size_t w = fmt == 0 ? 4 : 2;
      for (std::size_t i = 0; i + w <= s.bytes.size(); i += w) {
        float f = 0;
        if (fmt == 0) {
          std::memcpy(&f, s.bytes.data() + i, 4);
        } else {
          std::uint16_t h = 0;
          std::memcpy(&h, s.bytes.data() + i, 2);
          f = fmt == 3 ? sparq::bf16_to_float(h) : sparq::fp16_to_float(h);
        }
        if (!ok(f)) return false;
      }
    }
  }
  return true;
}

/// The packed model reader on a parsed container. The harness skips models whose float weights,
/// KV cache or dense copies would exceed ~8 MB (a tiny file can declare a huge model; the reader
/// then allocates it only as far as the tensors are present, or a low-rank op's rows x cols float
/// copy, which is bounded by the config, not by the file).
void check_packed(const sparq::io::Container& c) {
  using namespace sparq;
  try {
    if (const auto t = io::container_tokenizer(c, "fuzz")) {
      const auto ids = t->encode("Hello w\xC3\xB6rld \xFF\x80 12", true, true);
      (void)t->decode(ids);
    }
  } catch (const error&) {
  }
  const std::uint64_t dim = config_value(c, "dim"), hidden = config_value(c, "hidden_dim"),
                      layers = config_value(c, "n_layers"), vocab = config_value(c, "vocab_size"),
                      seq = config_value(c, "seq_len");
  const std::uint64_t floats = 2 * vocab * dim + layers * (4 * dim * dim + 3 * dim * hidden) + 4 * layers * seq * dim +
                               seq * dim;
  if (dim == 0 || hidden == 0 || layers == 0 || vocab == 0 || seq == 0 || floats > (std::uint64_t{1} << 21)) return;
  try {
    const model::Llama m = io::packed_model_from_container(c, "fuzz");
    if (!small_finite_values(c)) return;
    model::LlamaState st(m.config(), std::min<std::size_t>(2, m.config().seq_len));
    for (std::size_t p = 0; p < st.capacity(); ++p) (void)m.decode(static_cast<int>(p % m.config().vocab_size), st);
  } catch (const error&) {
  }
}

void check(const std::vector<char>& b) {
  try {
    const auto c = sparq::io::parse_container(b.data(), b.size(), "fuzz");
    check_packed(c);
    // A parsed version-1 container must serialise back to the same bytes. A version-2 file may
    // hold a valid rANS stream the encoder would not have produced (another table, state count or
    // raw-vs-coded choice): its contents, not its bytes, must survive a write and a read.
    const auto again = sparq::io::serialize_container(c);
    if (peek<std::uint32_t>(b, 4) == sparq::io::container_version) {
      if (again != b) __builtin_trap();
    } else {
      const auto d = sparq::io::parse_container(again.data(), again.size(), "fuzz again");
      if (d.tensors.size() != c.tensors.size()) __builtin_trap();
      for (std::size_t i = 0; i < c.tensors.size(); ++i) {
        if (d.tensors[i].sections.size() != c.tensors[i].sections.size()) __builtin_trap();
        for (std::size_t k = 0; k < c.tensors[i].sections.size(); ++k)
          if (d.tensors[i].sections[k].bytes != c.tensors[i].sections[k].bytes) __builtin_trap();
      }
    }
  } catch (const sparq::error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<char> b(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  check(b);
  refresh_checksums(b);
  check(b);
  return 0;
}
