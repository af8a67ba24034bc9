// sparq-quantize-model: quantizes every linear layer of a real llama2.c checkpoint at several
// settings and prints bits/weight, max and RMS error per setting.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <sparq/sparq.hpp>

namespace {

struct Setting {
  std::string name;
  double bits_per_weight;  // storage cost including scales / zero points
  std::function<void(const float* w, std::size_t rows, std::size_t cols, float* out)> roundtrip;
};

void usage() {
  std::printf(
      "usage: sparq-quantize-model [--model PATH]\n"
      "  Quantizes every decoder linear layer of a llama2.c checkpoint (default: the shared\n"
      "  stories260K.bin) at several settings and prints bits/weight, max |error| and RMS error.\n");
}

}  // namespace

int main(int argc, char** argv) try {
  std::string model = std::string(SPARQ_DATA_DIR) + "/models/stories260K.bin";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--model") && i + 1 < argc) {
      model = argv[++i];
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument '%s'\n", argv[i]);
      usage();
      return 2;
    }
  }
  const auto w = sparq::io::read_llama2c(model);
  std::vector<Setting> settings;
  settings.push_back({"fp16", 16.0, [](const float* x, std::size_t r, std::size_t c, float* y) {
                        for (std::size_t i = 0; i < r * c; ++i) y[i] = sparq::round_to_fp16(x[i]);
                      }});
  settings.push_back({"bf16", 16.0, [](const float* x, std::size_t r, std::size_t c, float* y) {
                        for (std::size_t i = 0; i < r * c; ++i) y[i] = sparq::round_to_bf16(x[i]);
                      }});

  std::printf("model: %s (%zu blocks, dim %zu, hidden %zu)\n", model.c_str(), w.config.n_layers,
              w.config.dim, w.config.hidden_dim);
  std::printf("%-24s %10s %14s %14s %12s\n", "setting", "bits/w", "max |err|", "RMS err", "rel RMS");
  for (const auto& s : settings) {
    double sq = 0, ref = 0, mx = 0;
    std::size_t n = 0;
    for (const auto& b : w.blocks) {
      for (auto lin : sparq::model::all_linears) {
        const auto& m = b.linear(lin);
        std::vector<float> out(m.size());
        s.roundtrip(m.data(), m.rows(), m.cols(), out.data());
        for (std::size_t i = 0; i < m.size(); ++i) {
          const double e = static_cast<double>(out[i]) - m.data()[i];
          sq += e * e;
          ref += static_cast<double>(m.data()[i]) * m.data()[i];
          mx = std::max(mx, std::fabs(e));
        }
        n += m.size();
      }
    }
    std::printf("%-24s %10.3f %14.6g %14.6g %12.6g\n", s.name.c_str(), s.bits_per_weight, mx,
                std::sqrt(sq / n), std::sqrt(sq / ref));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sparq-quantize-model: %s\n", e.what());
  return 1;
}
