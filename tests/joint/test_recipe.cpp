// Run-time recipes: the grammar, its errors, canonical strings, named recipes, order checks.
#include <string>
#include <variant>

#include "sparq/joint/named_recipes.hpp"
#include "sparq/joint/recipe.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {
template <class T>
const T& stage(const RecipeSpec& r, std::size_t i) {
  REQUIRE(i < r.stages.size());
  REQUIRE(std::holds_alternative<T>(r.stages[i]));
  return std::get<T>(r.stages[i]);
}
std::string error_of(std::string_view s) {
  try {
    (void)parse_recipe(s);
  } catch (const sparq::error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("parse_recipe: JSQ, Wanda+SmoothQuant 2:4, SparseGPT+GPTQ, W4A8, magnitude", "[joint][recipe]") {
  const auto jsq = parse_recipe("edit:5e-5,sar:0.5,smooth:0.5,w8a8");
  REQUIRE(jsq.stages.size() == 4);
  CHECK(stage<EditStageSpec>(jsq, 0).options.strength == 5e-5);
  CHECK(stage<EditStageSpec>(jsq, 0).options.mode == EditMode::MinMaxTensor);
  CHECK(stage<PruneStageSpec>(jsq, 1).metric == PruneMetricKind::sar);
  CHECK(stage<PruneStageSpec>(jsq, 1).options.sparsity == 0.5);
  CHECK(stage<PruneStageSpec>(jsq, 1).options.lambda == jsq_paper_lambda);
  CHECK(stage<SmoothStageSpec>(jsq, 2).options.alpha == 0.5f);
  CHECK(stage<QuantStageSpec>(jsq, 3).config.bits == 8);
  CHECK(stage<QuantStageSpec>(jsq, 3).config.granularity == GranularityKind::per_channel);
  CHECK(jsq.activation_bits == 8);
  CHECK(jsq.has_edit());
  CHECK(jsq.weight_bits() == 8);

  const auto w24 = parse_recipe(" wanda:2:4 , smooth , w8a8 ");
  CHECK(stage<PruneStageSpec>(w24, 0).pattern == PrunePatternKind::nm);
  CHECK(stage<PruneStageSpec>(w24, 0).n == 2);
  CHECK(stage<PruneStageSpec>(w24, 0).m == 4);
  CHECK(w24.sparsity() == 0.5);

  const auto sg = parse_recipe("sparsegpt:0.6,gptq:w4g128");
  CHECK(stage<PruneStageSpec>(sg, 0).options.sparsity == 0.6);
  CHECK(stage<GptqStageSpec>(sg, 1).spec.bits == 4);
  CHECK(stage<GptqStageSpec>(sg, 1).spec.group_size == 128);
  CHECK_FALSE(stage<GptqStageSpec>(sg, 1).spec.symmetric);
  CHECK_FALSE(sg.activation_bits.has_value());

  const auto w4a8 = parse_recipe("w4a8");
  CHECK(stage<QuantStageSpec>(w4a8, 0).config.bits == 4);
  CHECK(w4a8.activation_bits == 8);
  CHECK(w4a8.sparsity() == 0.0);

  const auto mag = parse_recipe("magnitude:0.5");
  CHECK(stage<PruneStageSpec>(mag, 0).metric == PruneMetricKind::magnitude);
  CHECK(mag.weight_bits() == 32);

  const auto more = parse_recipe("edit:pct:0.02,sar:0.4:lambda=2.1,w4g64:asym,a6");
  CHECK(stage<EditStageSpec>(more, 0).options.mode == EditMode::PercentileCompat);
  CHECK(stage<EditStageSpec>(more, 0).options.clip_h == 0.02);
  CHECK(stage<PruneStageSpec>(more, 1).options.lambda == 2.1f);
  CHECK(stage<QuantStageSpec>(more, 2).config.scheme == SchemeKind::asymmetric);
  CHECK(stage<QuantStageSpec>(more, 2).config.group_size == 64);
  CHECK(more.activation_bits == 6);
  CHECK(stage<PruneStageSpec>(parse_recipe("magnitude:0.3:layer"), 0).pattern == PrunePatternKind::unstructured_layer);
  CHECK(stage<EditStageSpec>(parse_recipe("edit:1e-4:channel"), 0).options.mode == EditMode::MinMaxChannel);

  // 'embed' is no block stage: it sets the int8 embedding and classifier (CompressOptions::embedding_bits).
  const auto emb = parse_recipe("wanda:0.5,embed,w8a8");
  CHECK(emb.stages.size() == 2);
  CHECK(emb.embedding_bits == 8);
  CHECK(options_for(emb, CompressOptions{}).embedding_bits == 8);
  CompressOptions keep;
  keep.embedding_bits = 32;
  CHECK(options_for(emb, keep).embedding_bits == 32);  // the caller's options win, as for activation bits
  CHECK_FALSE(jsq.embedding_bits.has_value());
  CHECK(to_string(parse_recipe("embed")) == "embed:w8");
}

TEST_CASE("to_string gives a canonical string that parses back to the same stages", "[joint][recipe]") {
  for (const char* s : {"edit:5e-05,sar:0.5,smooth:0.5,w8,a8", "wanda:2:4,smooth:0.5,w4g128,a8",
                        "sparsegpt:0.6,gptq:w4g128", "magnitude:0.5:layer", "edit:pct:0.01,wanda:0.5:inch,w8:asym",
                        "sar:4:8:lambda=2.1,gptq:w8:sym,a8", "sparsegpt:0.5,smooth:0.5,w8,a8,embed:w8"}) {
    const auto r = parse_recipe(s);
    CHECK(to_string(r) == s);
    CHECK(to_string(parse_recipe(to_string(r))) == to_string(r));
  }
}

TEST_CASE("parse_recipe rejects bad strings and names the token", "[joint][recipe]") {
  struct Bad {
    const char* recipe;
    const char* token;
  };
  for (const Bad b : {Bad{"wanda:1.5", "wanda:1.5"}, Bad{"wanda:3:4", "wanda:3:4"}, Bad{"prune:0.5", "prune:0.5"},
                      Bad{"w7a8", "w7a8"}, Bad{"w8a1", "w8a1"}, Bad{"w4g0", "w4g0"}, Bad{"w8x", "w8x"},
                      Bad{"smooth:2", "smooth:2"}, Bad{"edit:0.9", "edit:0.9"}, Bad{"edit:5e-5:cols", "edit:5e-5:cols"},
                      Bad{"sparsegpt:0.5:layer", "sparsegpt:0.5:layer"}, Bad{"wanda:0.5,,w8a8", ""},
                      Bad{"sar:0.5:lambda=-1", "sar:0.5:lambda=-1"}, Bad{"gptq:q4", "gptq:q4"}, Bad{"a1", "a1"},
                      Bad{"w8a8,embed:w4", "embed:w4"}, Bad{"embed:w8:x", "embed:w8:x"}}) {
    const std::string e = error_of(b.recipe);
    INFO(b.recipe << " -> " << e);
    CHECK(e.find("parse_recipe: bad token '" + std::string(b.token) + "': expected") != std::string::npos);
  }
  CHECK(error_of("").find("empty recipe") != std::string::npos);
  // Order rules, as Compressor's static_asserts.
  CHECK(error_of("w8a8,gptq:w4").find("two quantizers") != std::string::npos);
  CHECK(error_of("w8a8,wanda:0.5").find("needs float weights") != std::string::npos);
  CHECK(error_of("wanda:0.5,w8a8,smooth").find("smoothing after quantization") != std::string::npos);
  CHECK(error_of("sar:0.5,edit,w8a8").find("must be the first stage") != std::string::npos);
  CHECK(error_of("smooth,smooth:0.8,w8a8").find("two smoothing stages") != std::string::npos);
}

TEST_CASE("named recipes: the paper's comparison and its ablations", "[joint][recipe]") {
  for (const auto& n : named_recipe_names()) CHECK_NOTHROW(named_recipe(n));
  CHECK(named_recipe("dense").stages.empty());
  CHECK(to_string(named_recipe("jsq")) == "edit:5e-05,sar:0.5,smooth:0.5,w8,a8");
  CHECK(named_recipe("jsq").search);
  CHECK(to_string(named_recipe("jsq-nosar")) == "edit:5e-05,wanda:0.5,smooth:0.5,w8,a8");
  CHECK(named_recipe("jsq-nosar").search);
  CHECK(to_string(named_recipe("jsq-noedit")) == "sar:0.5,smooth:0.5,w8,a8");
  CHECK_FALSE(named_recipe("jsq-noedit").search);
  CHECK(to_string(named_recipe("jsq-nosearch")) == "edit:5e-05,sar:0.5,smooth:0.5,w8,a8");
  CHECK_FALSE(named_recipe("jsq-nosearch").search);
  CHECK(to_string(named_recipe("wanda")) == "wanda:0.5");
  CHECK(to_string(named_recipe("smoothquant")) == "smooth:0.5,w8,a8");
  CHECK(to_string(named_recipe("w8a8")) == "w8,a8");
  CHECK(to_string(named_recipe("sparsegpt+smoothquant-2:4")) == "sparsegpt:2:4,smooth:0.5,w8,a8");
  CHECK(to_string(named_recipe("jsq-4:8")) == "edit:5e-05,sar:4:8:fallback,smooth:0.5,w8,a8");

  NamedRecipeOptions o;
  o.sparsity = 0.6;
  o.weight_bits = 4;
  o.group_size = 128;
  o.activation_bits = 0;
  o.gptq = true;
  CHECK(to_string(named_recipe("wanda+smoothquant", o)) == "wanda:0.6,smooth:0.5,gptq:w4g128,a0");
  o.gptq = false;
  o.activation_bits = 8;
  CHECK(to_string(named_recipe("jsq", o)) == "edit:5e-05,sar:0.6,smooth:0.5,w4g128,a8");

  CHECK_THROWS_WITH(named_recipe("jsq2"), Catch::Contains("unknown recipe 'jsq2'"));
  CHECK_THROWS_WITH(named_recipe("smoothquant-2:4"), Catch::Contains("no pruning stage"));
  o.weight_bits = 7;
  CHECK_THROWS_WITH(named_recipe("w8a8", o), Catch::Contains("weight_bits = 7"));
}
