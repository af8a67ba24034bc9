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

// lowrank/: SVD, activation-aware factorization, LowRank, LoRC
#include "sparq/lowrank/low_rank.hpp"
#include "sparq/lowrank/low_rank_compensation.hpp"
#include "sparq/lowrank/svd.hpp"

// model/: Llama runtime, its LinearOp formats and packing, tokenizers, perplexity, layer-by-layer calibration
#include "sparq/model/bitmask_q4_linear.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/embedding_quant.hpp"
#include "sparq/model/generate.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/linear_formats.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/model/tokenizer_bpe.hpp"
#include "sparq/model/layer_group.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/model/tokenizer.hpp"

// joint/: compression drivers: Compressor<Stages...>, run-time and named recipes, the JSQ search, low-rank stages
#include "sparq/joint/activation_edit.hpp"
#include "sparq/joint/annealing.hpp"
#include "sparq/joint/compressor.hpp"
#include "sparq/joint/edit_vector_compressor.hpp"
#include "sparq/joint/jsq_search.hpp"
#include "sparq/joint/lowrank_stages.hpp"
#include "sparq/joint/named_recipes.hpp"
#include "sparq/joint/pack_compressed.hpp"
#include "sparq/joint/recipe.hpp"

// io/: llama2.c, GGUF (in, and out for llama.cpp), safetensors, sparq container, model loading, streaming compression
#include "sparq/io/compress_stream.hpp"
#include "sparq/io/container.hpp"
#include "sparq/io/entropy.hpp"
#include "sparq/io/gguf_export.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/hf_checkpoint.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/io/load.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/io/safetensors.hpp"
