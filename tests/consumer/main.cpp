// Consumer of the installed package: includes the umbrella header and uses a few public names.
#include <cstdio>

#include <sparq/sparq.hpp>

int main() {
  float data[6] = {1, 2, 3, 4, 5, 6};
  sparq::MatrixView<const float> v(data, 2, 3);
  sparq::ColumnAbsMax am(3);
  am.add(v);
  const bool ok = am.values()[2] == 6.0f && sparq::fp16_to_float(sparq::float_to_fp16(0.5f)) == 0.5f;
  std::printf("sparq consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
