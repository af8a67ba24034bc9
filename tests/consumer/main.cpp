// Consumer of the installed package: includes the umbrella header, uses a few public names, and
// runs a kernel through the dispatch tables that sparq_add_dispatch compiled into it.
#include <cstdio>

#include <sparq/kernels/dispatch.hpp>
#include <sparq/sparq.hpp>

int main() {
  float data[6] = {1, 2, 3, 4, 5, 6};
  sparq::MatrixView<const float> v(data, 2, 3);
  sparq::ColumnAbsMax am(3);
  am.add(v);
  bool ok = am.values()[2] == 6.0f && sparq::fp16_to_float(sparq::float_to_fp16(0.5f)) == 0.5f;
  const float x[3] = {1, 1, 1};
  float y[2] = {0, 0};
  sparq::kernels::gemv_f32(data, 2, 3, x, y);  // dispatched
  ok = ok && y[0] == 6.0f && y[1] == 15.0f && sparq::kernels::dispatch_enabled();
  std::printf("sparq consumer: %s, kernels %s\n", ok ? "ok" : "FAILED", sparq::kernels::dispatch_summary().c_str());
  return ok ? 0 : 1;
}
