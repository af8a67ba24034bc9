// The dispatch tables shared by the per-target registration TUs of the dispatch test.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparq/kernels/dispatch.hpp"

namespace kt {
using GemvF32 = void(const float*, std::size_t, std::size_t, const float*, float*, int);
using GemvQ8A8 = void(const std::int8_t*, const float*, std::size_t, std::size_t, const std::int8_t*, float, float*, int);
inline sparq::kernels::Dispatcher<GemvF32> gemv_f32_table;
inline sparq::kernels::Dispatcher<GemvQ8A8> gemv_q8_a8_table;
}  // namespace kt
