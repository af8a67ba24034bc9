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
#elif SPARQ_ORDER_CASE == 5
using Recipe = Compressor<Pruner<Wanda, Unstructured>, LowRankCompensation, W8>;  // LoRC not last
#elif SPARQ_ORDER_CASE == 6
using Recipe = Compressor<Smooth, LowRankCompensation>;  // nothing to compensate
#elif SPARQ_ORDER_CASE == 7
using Recipe = Compressor<LowRank, Pruner<Wanda, Unstructured>>;  // a pruner after LowRank
#elif SPARQ_ORDER_CASE == 8
// valid: LoRC after SAR + W4 g128; LowRank then a factor quantizer; the N:M fallback prune stage
using Recipe = Compressor<Pruner<SAR, Unstructured>, Quantizer<Symmetric, PerGroup<128>, 4>, LowRankCompensation>;
using Recipe2 = Compressor<LowRank, W8>;
using Recipe3 = Compressor<NMFallback<Pruner<SAR, NM<4, 8>>>, W8, LowRankCompensation>;
static_assert(Recipe2::size == 2 && Recipe3::size == 3);
#endif

int main() {
  const Recipe r;
  return static_cast<int>(r.request().empty());
}
