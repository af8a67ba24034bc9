// Registers this TU's instantiations (its target follows the flags it is compiled with).
#include "dispatch_table.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_q8.hpp"

namespace {
const bool registered_f32 = kt::gemv_f32_table.add(sparq::kernels::this_target(), &sparq::kernels::gemv_f32<>);
const bool registered_q8 = kt::gemv_q8_a8_table.add(sparq::kernels::this_target(), &sparq::kernels::gemv_q8_a8<>);
}  // namespace
