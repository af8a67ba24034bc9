// The registry of packed linear formats: file format name -> loader (docs/model.md#adding-a-weight-format).
//
// A LinearOp writes itself to a packed model file with LinearOp::save, naming its format
// (OpWriter::format). Reading the file back, io/packed_model.hpp looks that name up here and calls
// the registered loader, which rebuilds the op from an OpReader. The formats of the library are
// the table below; a program adds its own with register_linear_format (once, before it reads a
// file that holds them). Two names are not in the table because they are not ops of their own: "f32"
// (the model's float block weights, which the reader installs as the model's dense view) and
// "lowrank" (LowRankLinear, also the storage of LoRC corrections; io/packed_model.hpp).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/model/bitmask_linear.hpp"
#include "sparq/model/bitmask_q4_linear.hpp"
#include "sparq/model/bitmask_q8_linear.hpp"
#include "sparq/model/linear_op.hpp"
#include "sparq/model/nm_linear.hpp"
#include "sparq/model/q4_linear.hpp"
#include "sparq/model/q8_linear.hpp"

namespace sparq::model {

/// Rebuilds an op from its tensor in a packed file; throws sparq::error on anything malformed.
using LinearLoader = std::unique_ptr<LinearOp> (*)(const OpReader&);

/// One packed file format: the name LinearOp::save gives it, and its loader.
struct LinearFormat {
  std::string name;
  LinearLoader load = nullptr;
};

namespace detail {

struct LinearFormatRegistry {
  std::mutex mutex;
  std::vector<LinearFormat> formats{
      {"packed_q8", &Q8Linear::load},
      {"packed_q4", &Q4Linear::load},
      {"packed_nm", &NMLinear::load},
      {"packed_bitmask", &BitmaskLinear::load},
      {"packed_bitmask_q8", &BitmaskQ8Linear::load},
      {"packed_bitmask_q4", &BitmaskQ4Linear::load},
  };
};

[[nodiscard]] inline LinearFormatRegistry& linear_format_registry() {
  static LinearFormatRegistry r;
  return r;
}

}  // namespace detail

/// Adds a format. Throws sparq::error on an empty name, a null loader, a name the library reserves
/// ("f32", "lowrank") or one already registered.
inline void register_linear_format(LinearFormat f) {
  SPARQ_CHECK(!f.name.empty() && f.load != nullptr, "register_linear_format: format '", f.name,
              "' needs a name and a loader");
  SPARQ_CHECK(f.name != "f32" && f.name != "lowrank", "register_linear_format: '", f.name,
              "' is reserved (the model's float weights and low-rank factors)");
  auto& r = detail::linear_format_registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& g : r.formats)
    SPARQ_CHECK(g.name != f.name, "register_linear_format: format '", f.name, "' is already registered");
  r.formats.push_back(std::move(f));
}

/// The loader registered for `name`, or nullptr.
[[nodiscard]] inline LinearLoader find_linear_format(std::string_view name) {
  auto& r = detail::linear_format_registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& g : r.formats)
    if (g.name == name) return g.load;
  return nullptr;
}

/// Names of every registered format, in registration order.
[[nodiscard]] inline std::vector<std::string> linear_format_names() {
  auto& r = detail::linear_format_registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& g : r.formats) names.push_back(g.name);
  return names;
}

}  // namespace sparq::model
