// Umbrella header: everything sparq offers.
#pragma once

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/model/llama_weights.hpp"
#include "sparq/io/llama2c.hpp"
