// MatrixView and Matrix: indexing, strides, blocks, const conversion, errors.
#include <vector>

#include "sparq/core/matrix_view.hpp"
#include "sparq_test.hpp"

TEST_CASE("MatrixView indexes strided rows and makes checked blocks", "[core]") {
  std::vector<float> buf(5 * 8);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(i);
  sparq::MatrixView<float> v(buf.data(), 5, 6, 8);
  REQUIRE(v(2, 3) == 19.0f);
  REQUIRE(v.row(4)[0] == 32.0f);
  REQUIRE_FALSE(v.contiguous());
  auto b = v.block(1, 2, 3, 4);
  REQUIRE(b.rows() == 3);
  REQUIRE(b.cols() == 4);
  REQUIRE(b(0, 0) == 10.0f);
  REQUIRE(b(2, 3) == 29.0f);
  b(1, 1) = -1.0f;
  REQUIRE(buf[19] == -1.0f);
  sparq::MatrixView<const float> c = v;  // const conversion
  REQUIRE(c(2, 3) == -1.0f);
  REQUIRE_THROWS_AS(v.block(4, 0, 2, 6), sparq::error);
  REQUIRE_THROWS_AS(v.block(0, 5, 1, 2), sparq::error);
  REQUIRE_THROWS_WITH(v.block(0, 5, 1, 2), Catch::Contains("outside the 5x6 view"));
  REQUIRE_THROWS_WITH((sparq::MatrixView<float>(buf.data(), 2, 8, 4)),
                      Catch::Contains("stride 4") && Catch::Contains("column count 8"));
}

TEST_CASE("Matrix owns contiguous storage", "[core]") {
  sparq::Matrix<int> m(3, 4, 7);
  REQUIRE(m.size() == 12);
  m(2, 1) = 5;
  REQUIRE(m.view()(2, 1) == 5);
  REQUIRE(m.view().contiguous());
}
