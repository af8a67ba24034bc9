// Umbrella header: everything sparq offers (include the narrower headers to build faster).
// Sections follow the layers of include/sparq/ (README.md "Layout", scripts/check-layering.py).
#pragma once

// core/: vocabulary
#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/core/half.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/core/version.hpp"
#include "sparq/simd/arch.hpp"

// kernels/: hot loops over raw buffers
#include "sparq/kernels/cholesky.hpp"
#include "sparq/kernels/dispatch.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/kernels/gemm_q.hpp"
#include "sparq/kernels/gemv_bitmask.hpp"
#include "sparq/kernels/gemv_bitmask_q.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_half.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"

// quant/: Quantizer<Scheme, Granularity, Bits, Calibrator>, GPTQ, SmoothQuant, AWQ (their Llama groups: model/)
#include "sparq/quant/awq.hpp"
#include "sparq/quant/gptq.hpp"
#include "sparq/quant/quantizer.hpp"
#include "sparq/quant/smooth.hpp"

// prune/: Pruner<Metric, Pattern>, SparseGPT, ExactOBS + obq + N:M permutation (jsq+), OWL, sparse storage
#include "sparq/prune/bitmask_sparse.hpp"
#include "sparq/prune/csr_matrix.hpp"
#include "sparq/prune/exact_obs.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/prune/nm_permutation.hpp"
#include "sparq/prune/obq.hpp"
#include "sparq/prune/owl.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/prune/quantizer_column_adapter.hpp"
#include "sparq/prune/sparse_gpt.hpp"

// model/: Llama runtime, tokenizer, perplexity, layer-by-layer calibration
#include "sparq/model/bitmask_q4_linear.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/generate.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/layer_group.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/model/tokenizer.hpp"

// joint/: JSQ pieces
#include "sparq/joint/activation_edit.hpp"
#include "sparq/joint/annealing.hpp"

// io/: llama2.c, GGUF (in, and out for llama.cpp), safetensors, sparq container, model loading
#include "sparq/io/container.hpp"
#include "sparq/io/gguf_export.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/hf_checkpoint.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/io/load.hpp"
#include "sparq/io/safetensors.hpp"
