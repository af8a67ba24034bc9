// Real weights: every linear of stories260K pruned at 50% unstructured and 2:4 with Magnitude, Wanda, SparseGPT.
// Statistics come from synthetic inputs for now (the model runtime that produces real activations is
// written in parallel): standard normal tokens with two channels scaled x8, 64 tokens per layer.
#include <algorithm>
#include <cmath>
#include <vector>

#include "sparq/io/llama2c.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/prune/sparse_gpt.hpp"
#include "sparq_test.hpp"

using namespace sparq;

TEST_CASE("stories260K: every linear pruned with exact sparsity", "[prune][real]") {
  const std::string path = sparq_test::data_path("models/stories260K.bin");
  if (path.empty()) return;
  model::LlamaWeights m = io::read_llama2c(path);
  REQUIRE(m.config.hidden_dim == 172);
  std::size_t layers = 0;
  for (auto& block : m.blocks)
    for (model::Linear l : model::all_linears) {
      const Matrix<float>& w = block.linear(l);
      const std::size_t cout = w.rows(), cin = w.cols();
      auto x = sparq_test::randn(64 * cin, unsigned(layers + 1));
      for (std::size_t t = 0; t < 64; ++t) {
        x[t * cin + 1] *= 8.0f;
        x[t * cin + cin / 2] *= 8.0f;
      }
      const MatrixView<const float> xv(x.data(), 64, cin);
      ColumnSquareSum sq(cin);
      sq.add(xv);
      const Matrix<float> h = hessian_from_tokens(xv, 1);
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
      ++layers;
    }
  REQUIRE(layers == m.config.n_layers * 7);
}
