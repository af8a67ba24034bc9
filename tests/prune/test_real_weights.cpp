// Real weights: every linear of stories260K pruned at 50% unstructured and 2:4 with Magnitude, Wanda, SparseGPT.
// Statistics are the model's own activations: the layer-wise driver (model/calibration.hpp) runs the
// first 8 windows of 128 tokens of tinystories_train_head.txt through the dense model, and every
// linear gets the Wanda norms and the SparseGPT Hessian of its real inputs.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

#include "sparq/io/load.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/prune/sparse_gpt.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {
struct Stats {
  std::optional<ColumnSquareSum> sq;
  std::optional<HessianAccumulator> h;
};

// Collects per-group statistics; compress_block checks every linear of the block on copies.
struct RealCallbacks : model::LayerwiseCallbacks {
  std::map<model::Linear, Stats> stats;
  std::size_t layers = 0;
  void on_linear_input(std::size_t, model::Linear leader, MatrixView<const float> x, std::size_t) override {
    Stats& s = stats[leader];
    if (!s.sq) s.sq.emplace(x.cols());
    if (!s.h) s.h.emplace(x.cols());
    s.sq->add(x);
    s.h->add(x);
  }
  void compress_block(std::size_t, model::LlamaBlock& block, model::Llama&) override {
    for (model::Linear l : model::all_linears) {
      Stats& st = stats.at(model::input_group_leader(l));
      check_linear(block.linear(l), l, *st.sq, st.h->hessian());
      ++layers;
    }
    stats.clear();
  }
  void check_linear(const Matrix<float>& w, model::Linear l, const ColumnSquareSum& sq, const Matrix<float>& h);
};
}  // namespace

void RealCallbacks::check_linear(const Matrix<float>& w, model::Linear l, const ColumnSquareSum& sq,
                                 const Matrix<float>& h) {
  const std::size_t cout = w.rows(), cin = w.cols();
  INFO("layer " << layers << " " << model::linear_name(l) << " " << cout << "x" << cin);
  // 50% unstructured: exactly floor(cin/2) zeros per row (Magnitude, Wanda); SparseGPT pooled per block.
  {
    Matrix<float> a = w, b = w, c = w;
    const PruneMask ma = Pruner<Magnitude, Unstructured>().prune(a.view());
    const PruneMask mb = Pruner<Wanda, Unstructured>().prune(b.view(), sq);
    const PruneMask mc = Pruner<SparseGPT, Unstructured>().prune(c.view(), h);
    for (std::size_t r = 0; r < cout; ++r) {
      REQUIRE(std::size_t(std::count(ma.row(r), ma.row(r) + cin, 0)) == cin / 2);
      REQUIRE(std::size_t(std::count(mb.row(r), mb.row(r) + cin, 0)) == cin / 2);
      for (std::size_t j = 0; j < cin; ++j) {
        if (!ma(r, j)) REQUIRE(a(r, j) == 0.0f);
        if (!mb(r, j)) REQUIRE(b(r, j) == 0.0f);
      }
    }
    std::size_t expect = 0;
    for (std::size_t i1 = 0; i1 < cin; i1 += 128) expect += cout * std::min<std::size_t>(128, cin - i1) / 2;
    REQUIRE(std::size_t(std::count(mc.data(), mc.data() + mc.size(), 0)) == expect);
    for (std::size_t i = 0; i < c.size(); ++i)
      if (!mc.data()[i]) REQUIRE(c.data()[i] == 0.0f);
  }
  // 2:4: every group keeps 2 (masks), packs into NMCompressed and round-trips.
  {
    Matrix<float> a = w, b = w, c = w;
    const PruneMask ma = Pruner<Magnitude, NM<2, 4>>().prune(a.view());
    const PruneMask mb = Pruner<Wanda, NM<2, 4>>().prune(b.view(), sq);
    const PruneMask mc = Pruner<SparseGPT, NM<2, 4>>().prune(c.view(), h);
    for (const PruneMask* mk : {&ma, &mb, &mc})
      for (std::size_t r = 0; r < cout; ++r)
        for (std::size_t g = 0; g < cin; g += 4)
          REQUIRE((*mk)(r, g) + (*mk)(r, g + 1) + (*mk)(r, g + 2) + (*mk)(r, g + 3) == 2);
    for (const Matrix<float>* p : {&a, &b, &c}) {
      const auto packed = NMCompressed<2, 4>::from_dense(p->view());
      REQUIRE(packed.to_dense().storage() == p->storage());
    }
  }
  // 4:8 on w2 (cin = hidden_dim = 172, 172 % 8 = 4) must fail clearly.
  if (l == model::Linear::w2) {
    Matrix<float> a = w;
    REQUIRE_THROWS_WITH((Pruner<Wanda, NM<4, 8>>().prune(a.view(), sq)),
                        Catch::Contains("cin = 172") && Catch::Contains("multiple of M = 8"));
  }
}

TEST_CASE("stories260K: every linear pruned with exact sparsity, statistics from real activations", "[prune][real]") {
  const std::string path = sparq_test::data_path("models/stories260K.bin");
  const std::string text = sparq_test::data_path("text/tinystories_train_head.txt");
  if (path.empty() || text.empty()) return;
  auto lm = io::load(path);
  REQUIRE(lm.model.config().hidden_dim == 172);
  const auto stream = model::document_token_stream_file(text, lm.tokenizer);
  const auto windows = model::calibration_windows(stream, 8, 128);
  RealCallbacks cb;
  model::run_layerwise(lm.model, windows, cb);
  REQUIRE(cb.layers == lm.model.config().n_layers * 7);
}
