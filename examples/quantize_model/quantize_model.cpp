// sparq-quantize-model: quantizes every linear layer of a real llama2.c checkpoint at several
// settings and prints bits/weight (from the packed tensors' real byte size, scales and zero points
// included), max and RMS error per setting, through the real quantize → dequantize path.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sparq/sparq.hpp>
#include <sparq/quant/quantize.hpp>

#include "tool_cli.hpp"

namespace {

using sparq::CalibratorKind;
using sparq::GranularityKind;
using sparq::SchemeKind;

struct Setting {
  std::string name;
  std::optional<sparq::QuantConfig> config;  // set: sparq quantizer; unset: float rounding below
  std::function<float(float)> round = nullptr;
};

sparq::QuantConfig make(SchemeKind s, int bits, GranularityKind g, std::size_t group = 0,
                        CalibratorKind cal = CalibratorKind::minmax) {
  sparq::QuantConfig c;
  c.scheme = s;
  c.bits = bits;
  c.granularity = g;
  c.group_size = group;
  c.calibrator = cal;
  // hidden_dim (172) and dim (64) are not multiples of 128, and 172 is not a multiple of 32 or 64:
  // the last group of such rows is shorter, which must be asked for explicitly.
  c.options.tail_group = true;
  return c;
}

int run(const std::string& model) {
  const auto w = sparq::io::read_llama2c(model);

  std::vector<Setting> settings;
  settings.push_back({"fp16", std::nullopt, [](float x) { return sparq::round_to_fp16(x); }});
  settings.push_back({"bf16", std::nullopt, [](float x) { return sparq::round_to_bf16(x); }});
  const auto G = GranularityKind::per_group;
  settings.push_back({"int8 sym per-channel", make(SchemeKind::symmetric, 8, GranularityKind::per_channel)});
  settings.push_back({"int8 sym per-tensor", make(SchemeKind::symmetric, 8, GranularityKind::per_tensor)});
  settings.push_back({"int8 asym per-channel", make(SchemeKind::asymmetric, 8, GranularityKind::per_channel)});
  settings.push_back({"fp8 e4m3 per-channel", make(SchemeKind::fp8_e4m3, 8, GranularityKind::per_channel)});
  settings.push_back({"int6 sym g128", make(SchemeKind::symmetric, 6, G, 128)});
  settings.push_back({"int5 sym g128", make(SchemeKind::symmetric, 5, G, 128)});
  settings.push_back({"int4 sym per-channel", make(SchemeKind::symmetric, 4, GranularityKind::per_channel)});
  for (std::size_t g : {32, 64, 128}) {
    settings.push_back({"int4 sym g" + std::to_string(g), make(SchemeKind::symmetric, 4, G, g)});
    settings.push_back({"int4 asym g" + std::to_string(g), make(SchemeKind::asymmetric, 4, G, g)});
  }
  settings.push_back({"int4 sym g128 mse-clip", make(SchemeKind::symmetric, 4, G, 128, CalibratorKind::mse_clip)});
  settings.push_back({"int4 asym g128 mse-clip", make(SchemeKind::asymmetric, 4, G, 128, CalibratorKind::mse_clip)});
  {
    auto c = make(SchemeKind::symmetric, 4, G, 128);
    c.options.full_range = true;
    settings.push_back({"int4 sym g128 full-range", c});
  }
  settings.push_back({"int4 sym g128 p99.9", make(SchemeKind::symmetric, 4, G, 128, CalibratorKind::percentile)});
  settings.push_back({"nf4 g64", make(SchemeKind::nf4, 4, G, 64)});
  settings.push_back({"int3 sym g128", make(SchemeKind::symmetric, 3, G, 128)});
  settings.push_back({"int3 asym g128", make(SchemeKind::asymmetric, 3, G, 128)});
  settings.push_back({"int2 asym g64", make(SchemeKind::asymmetric, 2, G, 64)});
  settings.push_back({"int2 asym g64 mse-clip", make(SchemeKind::asymmetric, 2, G, 64, CalibratorKind::mse_clip)});

  std::printf("model: %s (%zu blocks, dim %zu, hidden %zu)\n", model.c_str(), w.config.n_layers,
              w.config.dim, w.config.hidden_dim);
  std::printf("note: per-group settings use QuantOptions::tail_group: w2 has %zu inputs and the other\n"
              "      linears %zu, so rows whose length is not a multiple of G end with a shorter group.\n",
              w.config.hidden_dim, w.config.dim);
  std::printf("%-26s %8s %12s %12s %10s\n", "setting", "bits/w", "max |err|", "RMS err", "rel RMS");
  for (const auto& s : settings) {
    double sq = 0, ref = 0, mx = 0, bytes = 0;
    std::size_t n = 0;
    for (const auto& b : w.blocks) {
      for (auto lin : sparq::model::all_linears) {
        const auto& m = b.linear(lin);
        sparq::Matrix<float> out(m.rows(), m.cols());
        if (s.config) {
          const sparq::QuantizedTensor q = sparq::quant::quantize(m.view(), *s.config);
          sparq::quant::dequantize(q, out.view());
          bytes += static_cast<double>(q.byte_size());
        } else {
          for (std::size_t i = 0; i < m.size(); ++i) out.data()[i] = s.round(m.data()[i]);
          bytes += 2.0 * static_cast<double>(m.size());
        }
        for (std::size_t i = 0; i < m.size(); ++i) {
          const double e = static_cast<double>(out.data()[i]) - m.data()[i];
          sq += e * e;
          ref += static_cast<double>(m.data()[i]) * m.data()[i];
          mx = std::max(mx, std::fabs(e));
        }
        n += m.size();
      }
    }
    std::printf("%-26s %8.3f %12.6g %12.6g %10.5f\n", s.name.c_str(), 8.0 * bytes / static_cast<double>(n), mx,
                std::sqrt(sq / static_cast<double>(n)), std::sqrt(sq / ref));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = sparq_tools::data_dir(SPARQ_DATA_DIR) + "/models/stories260K.bin";
  sparq_tools::Cli cli("sparq-quantize-model",
                       "Quantizes every decoder linear layer of a llama2.c checkpoint at several settings and prints\n"
                       "bits/weight (packed codes + scales + zero points), max |error|, RMS error and RMS error\n"
                       "relative to the weights' RMS.");
  cli.text("--model", "PATH", &model, "llama2.c checkpoint (default: <data>/models/stories260K.bin)")
      .note("(data dir <data>: $SPARQ_DATA_DIR, else " SPARQ_DATA_DIR ")");
  return sparq_tools::run(cli, argc, argv, [&] { return run(model); });
}
