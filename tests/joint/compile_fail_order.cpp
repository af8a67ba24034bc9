// Compile-fail cases of Compressor<Stages...> (tests/joint/CMakeLists.txt builds this with -DSPARQ_ORDER_CASE=n).
#include "sparq/joint/compressor.hpp"

using namespace sparq;
using W8 = Quantizer<Symmetric, PerChannel, 8>;

#if SPARQ_ORDER_CASE == 0
using Recipe = Compressor<ActivationEdit, Pruner<SAR, Unstructured>, Smooth, W8>;  // valid: JSQ
#elif SPARQ_ORDER_CASE == 1
using Recipe = Compressor<Pruner<Wanda, Unstructured>, Gptq<GptqGrid<4>>, W8>;  // two quantizers
#elif SPARQ_ORDER_CASE == 2
using Recipe = Compressor<W8, Pruner<Wanda, Unstructured>>;  // a pruner after the quantizer
#elif SPARQ_ORDER_CASE == 3
using Recipe = Compressor<Pruner<Wanda, Unstructured>, W8, Smooth>;  // smoothing after quantization
#elif SPARQ_ORDER_CASE == 4
using Recipe = Compressor<Pruner<SAR, Unstructured>, ActivationEdit, Smooth, W8>;  // editor not first
#endif

int main() {
  const Recipe r;
  return static_cast<int>(r.request().empty());
}
