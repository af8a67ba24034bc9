// sparq-entropy: bits per weight of entropy-coded (rANS) int8 / int4 codes and 2:4 indices vs fixed width.
//
//   sparq-entropy [--model PATH] [--synthetic-rows R] [--synthetic-cols C] [--no-synthetic] [--help]
//
// For every decoder linear of the model (llama2.c or GGUF, default ../shared/data stories260K.bin)
// and for one synthetic LLaMA-7B-shaped layer (R x C Gaussian weights, default 4096 x 4096):
//   int8   = Quantizer<Symmetric, PerChannel, 8> codes (1 byte per weight)
//   int4g32, int4g128 = Quantizer<Symmetric, PerGroup<G>, 4> codes (packed nibbles; tail groups on)
//   nm24   = NMCompressed<2,4> in-group indices of Pruner<Magnitude, NM<2,4>> (2 bits per kept
//            weight = 1 bit per weight fixed)
// Columns (bits per dense weight, codes or indices only; scales and kept values not counted):
//   fixed  = the packed section as the kernels read it (row padding included)
//   rans8/rans4/rans2 = the rANS stream with the bytes read as 8/4/2-bit symbols, table and
//            states included; stored = what the SPRQ container stores (smallest of them, or raw)
//   H8/H4/H2 = order-0 entropy floor of the same symbol alphabets (no table);
//   Hf8/Hf4/Hf2 = an optimal Huffman code on the same alphabets (lengths unlimited, table not
//            counted: a lower bound for any Huffman coder; the comparison behind docs/entropy.md).
// Then the total over the model, and single-thread decode throughput on the synthetic layer
// (decoded bytes/s and codes/s, best of 5 by wall and by thread CPU time, against memcpy of the
// same bytes).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "sparq/io/entropy.hpp"
#include "sparq/io/load.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/quant/quantizer.hpp"
#include "tool_cli.hpp"

using namespace sparq;

namespace {

constexpr const char* kinds[] = {"int8", "int4g32", "int4g128", "nm24"};
constexpr int n_kinds = 4;

std::vector<std::uint8_t> stream_of(MatrixView<const float> w, int kind) {
  QuantOptions o;
  o.tail_group = true;
  switch (kind) {
    case 0: return Quantizer<Symmetric, PerChannel, 8>{}.quantize(w).code_storage();
    case 1: return Quantizer<Symmetric, PerGroup<32>, 4>(o).quantize(w).code_storage();
    case 2: return Quantizer<Symmetric, PerGroup<128>, 4>(o).quantize(w).code_storage();
    default: {
      Matrix<float> p(w.rows(), w.cols());
      for (std::size_t r = 0; r < w.rows(); ++r) std::memcpy(p.view().row(r), w.row(r), w.cols() * sizeof(float));
      (void)Pruner<Magnitude, NM<2, 4>>{}.prune(p.view());
      return NMCompressed<2, 4>::from_dense(p.view()).indices();
    }
  }
}

// Sizes in BITS of one stream under each representation.
struct Sizes {
  double weights = 0, fixed = 0, rans[3] = {0, 0, 0}, stored = 0, h[3] = {0, 0, 0}, huff[3] = {0, 0, 0};
  void add(const Sizes& o) {
    weights += o.weights, fixed += o.fixed, stored += o.stored;
    for (int k = 0; k < 3; ++k) rans[k] += o.rans[k], h[k] += o.h[k], huff[k] += o.huff[k];
  }
};

// Bits of an optimal (unlimited-length) Huffman code of the stream read as b-bit symbols: the sum
// of the merged weights of the Huffman tree (each merge adds one bit to every symbol below it).
double huffman_bits(const std::vector<std::uint8_t>& s, unsigned b) {
  std::uint64_t counts[256] = {};
  const std::size_t n_sym = s.size() * (8 / b);
  for (std::size_t i = 0; i < n_sym; ++i) ++counts[b == 8 ? s[i] : (s[i * b / 8] >> (i * b % 8)) & ((1u << b) - 1)];
  std::priority_queue<std::uint64_t, std::vector<std::uint64_t>, std::greater<>> q;
  for (unsigned k = 0; k < (1u << b); ++k)
    if (counts[k]) q.push(counts[k]);
  if (q.size() == 1) return double(n_sym);  // one symbol still needs a 1-bit code
  double bits = 0;
  while (q.size() > 1) {
    const auto a = q.top();
    q.pop();
    const auto c = q.top();
    q.pop();
    bits += double(a + c);
    q.push(a + c);
  }
  return bits;
}
constexpr unsigned widths[3] = {8, 4, 2};

Sizes measure(const std::vector<std::uint8_t>& s, double weights, const char** chosen) {
  Sizes z;
  z.weights = weights;
  z.fixed = 8.0 * double(s.size());
  for (int k = 0; k < 3; ++k) {
    z.rans[k] = 8.0 * double(io::rans_encode(s.data(), s.size(), widths[k]).size());
    z.h[k] = io::entropy_bits(s.data(), s.size(), widths[k]);
    z.huff[k] = huffman_bits(s, widths[k]);
  }
  const auto e = io::entropy_encode(s.data(), s.size(), io::SectionEncoding::smallest);
  z.stored = 8.0 * double(e.stored_size(s.size()));
  *chosen = io::encoding_name(e.encoding);
  return z;
}

void print_header() {
  std::printf("%-16s %-10s %-8s %7s %7s %7s %7s %7s %-6s %6s %6s %6s %6s %6s %6s\n", "tensor", "shape", "stream",
              "fixed", "rans8", "rans4", "rans2", "stored", "enc", "H8", "H4", "H2", "Hf8", "Hf4", "Hf2");
}
void print_row(const std::string& name, const std::string& shape, const char* kind, const Sizes& z, const char* enc) {
  const double n = z.weights;
  std::printf("%-16s %-10s %-8s %7.3f %7.3f %7.3f %7.3f %7.3f %-6s %6.3f %6.3f %6.3f %6.3f %6.3f %6.3f\n",
              name.c_str(), shape.c_str(), kind, z.fixed / n, z.rans[0] / n, z.rans[1] / n, z.rans[2] / n,
              z.stored / n, enc, z.h[0] / n, z.h[1] / n, z.h[2] / n, z.huff[0] / n, z.huff[1] / n, z.huff[2] / n);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Best of `reps` runs: {wall seconds, this thread's CPU seconds} (on a shared machine the CPU
// time excludes the time the thread was descheduled).
std::pair<double, double> best_seconds(int reps, const auto& f) {
  double wall = 1e30, cpu = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    f();
    cpu = std::min(cpu, thread_cpu_seconds() - c0);
    wall = std::min(wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return {wall, cpu};
}

int run(const std::string& model, std::size_t rows, std::size_t cols, bool synthetic) {
  {
    SPARQ_CHECK(rows > 0 && cols > 0 && cols % 4 == 0, "synthetic shape ", rows, "x", cols,
                ", expected positive with cols a multiple of 4");

    std::printf("bits per weight (codes / indices only; scales and kept values not counted)\n");
    print_header();
    const auto m = io::load_model(model);
    const auto& w = m.weights();
    Sizes total[n_kinds];
    for (std::size_t l = 0; l < w.blocks.size(); ++l)
      for (auto lin : model::all_linears) {
        const auto& mat = w.blocks[l].linear(lin);
        const std::string name = "blk." + std::to_string(l) + "." + std::string(model::linear_name(lin));
        const std::string shape = std::to_string(mat.rows()) + "x" + std::to_string(mat.cols());
        for (int k = 0; k < n_kinds; ++k) {
          const auto s = stream_of(mat.view(), k);
          const char* enc = "";
          const auto z = measure(s, double(mat.rows() * mat.cols()), &enc);
          total[k].add(z);
          print_row(name, shape, kinds[k], z, enc);
        }
      }
    std::printf("\nmodel total (%s)\n", model.c_str());
    print_header();
    for (int k = 0; k < n_kinds; ++k) print_row("total", "", kinds[k], total[k], "");

    if (synthetic) {
      std::printf("\nsynthetic LLaMA-7B-shaped layer: %zux%zu N(0, 0.02^2) weights\n", rows, cols);
      Matrix<float> g(rows, cols);
      std::mt19937 rng(1);
      std::normal_distribution<float> d(0.0f, 0.02f);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) g(r, c) = d(rng);
      print_header();
      std::vector<std::uint8_t> streams[n_kinds];
      for (int k = 0; k < n_kinds; ++k) {
        streams[k] = stream_of(g.view(), k);
        const char* enc = "";
        const auto z = measure(streams[k], double(rows * cols), &enc);
        print_row("synthetic", std::to_string(rows) + "x" + std::to_string(cols), kinds[k], z, enc);
      }
      std::printf("\ndecode throughput, single thread, best of 5 (decoded bytes in the packed layout; codes = int8 "
                  "codes, int4 codes or 2:4 indices)\n");
      std::printf("%-8s %-6s %7s %10s %12s %10s %12s %14s\n", "stream", "enc", "states", "GB/s", "Gcodes/s",
                  "GB/s cpu", "Gcodes/s cpu", "memcpy GB/s");
      const double codes_per_byte[n_kinds] = {1, 2, 2, 4};
      for (int k = 0; k < n_kinds; ++k) {
        const auto& s = streams[k];
        std::vector<std::uint8_t> out(s.size());
        const double tm = best_seconds(5, [&] { std::memcpy(out.data(), s.data(), s.size()); }).first;
        for (unsigned bits : {8u, 4u, 2u}) {
          if (k == 0 && bits == 2) continue;
          const auto enc = io::rans_encode(s.data(), s.size(), bits);
          const auto info = io::rans_stream_info(enc.data(), enc.size());
          const auto [t, tc] =
              best_seconds(5, [&] { io::rans_decode_into(enc.data(), enc.size(), out.data(), out.size()); });
          SPARQ_CHECK(out == s, "round trip failed for ", kinds[k]);
          const double b = double(s.size()), c = b * codes_per_byte[k];
          std::printf("%-8s rans%-2u %7u %10.2f %12.2f %10.2f %12.2f %14.2f\n", kinds[k], bits, info.n_states,
                      b / t / 1e9, c / t / 1e9, b / tc / 1e9, c / tc / 1e9, b / tm / 1e9);
        }
      }
    }
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = sparq_tools::data_dir(SPARQ_DATA_DIR) + "/models/stories260K.bin";
  long long rows = 4096, cols = 4096;
  bool no_synthetic = false;
  sparq_tools::Cli cli("sparq-entropy",
                       "Bits per weight of rANS-coded int8 / int4 codes and 2:4 indices against fixed width, per\n"
                       "decoder linear of a model and for one synthetic LLaMA-7B-shaped layer, and decode throughput.");
  cli.text("--model", "PATH", &model, "llama2.c or GGUF model (default: <data>/models/stories260K.bin)")
      .integer("--synthetic-rows", &rows, 1, 1LL << 20, "rows of the synthetic layer (default 4096)")
      .integer("--synthetic-cols", &cols, 4, 1LL << 20, "columns of the synthetic layer, a multiple of 4 (default 4096)")
      .flag("--no-synthetic", &no_synthetic, "skip the synthetic layer and the throughput table")
      .note("(data dir <data>: $SPARQ_DATA_DIR, else " SPARQ_DATA_DIR ")");
  return sparq_tools::run(cli, argc, argv, [&] {
    return run(model, static_cast<std::size_t>(rows), static_cast<std::size_t>(cols), !no_synthetic);
  });
}
