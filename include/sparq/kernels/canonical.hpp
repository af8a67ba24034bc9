// Canonical float arithmetic: the one summation order and exp that every SIMD target computes bit
// for bit (sse2, avx2, fma3<avx2>, avx512bw, neon64), so that compression gives the same codes on
// every CPU (docs/kernels.md, "Same results on every target").
//
// The canonical order of a reduction Σ_j p_j over n terms (dot products: p_j = a_j·b_j):
//   * 16 independent lanes: lane l receives p_j for j ≡ l (mod 16), in increasing j, starting
//     from +0. A tail shorter than 16 is added as if the input were zero-padded to a multiple of
//     16 (padding adds +0, which leaves a lane unchanged: a lane that starts at +0 is never −0).
//   * every product is rounded to T before it is added: no fused multiply-add anywhere.
//   * the 16 lanes are combined by one fixed pairwise tree (reduce16): l[i] + l[i+8], then
//     [i] + [i+4], then [i] + [i+2], then [0] + [1].
// A target holds the 16 lanes in 16/W registers of W lanes (AVX-512: one, AVX2: two, SSE2 and
// NEON: four), so the lane sums are the same whatever W is.
//
// Fusion: g++ contracts a*b + c into an FMA under -ffp-contract=fast (its default in GNU mode) on
// every target that has one (-mfma, and always on aarch64), also for vector intrinsics and scalar
// code. `opaque(v)` is an empty asm statement that claims to modify v in a register: the compiler
// cannot see through it, so a product passed through it cannot be fused with the add that uses it.
// It emits no instruction. `mul(a, b)` = the rounded product behind that barrier.
//
// exp: `exp_canonical` is a Cephes-style expf (range reduction by n = round(x·log2 e) with a
// two-part ln 2, degree-5 polynomial, scaling by 2^n through the exponent bits), every product
// rounded separately, identical in vector and scalar form. Arguments are clamped to [−87, 88];
// below −87 the result is +0 (exp(−87) ≈ 1.6e−38 is the smallest value it keeps). Error ≤ 2 ulp
// over that range; it is not std::exp (glibc picks FMA or non-FMA code at run time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "sparq/simd/arch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace canonical {

/// Lanes of every canonical reduction.
inline constexpr std::size_t lanes = 16;

/// Optimisation barrier: v is kept in a register and treated as modified (no instruction).
template <class V>
inline void opaque(V& v) noexcept {
#if defined(__x86_64__) || defined(__i386__)
#if defined(__AVX512F__)
  asm("" : "+v"(v));  // any of xmm/ymm/zmm 0-31
#else
  asm("" : "+x"(v));
#endif
#elif defined(__aarch64__) || defined(__arm__)
  asm("" : "+w"(v));
#else
  volatile V t = v;  // portable fallback: a store and a load the compiler must keep
  v = t;
#endif
}

/// a·b rounded to float/double, never fused with a following add or subtract.
template <class T>
[[nodiscard]] inline T mul(T a, T b) noexcept {
  T p = a * b;
  opaque(p);
  return p;
}

template <class T, class A>
[[nodiscard]] inline xsimd::batch<T, A> mul(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
  auto p = (a * b).data;
  opaque(p);
  return xsimd::batch<T, A>(p);
}

/// c + a·b with the product rounded first (two roundings on every target).
template <class T>
[[nodiscard]] inline T mul_add(T a, T b, T c) noexcept {
  return c + mul(a, b);
}

/// The fixed pairwise tree over 16 lanes.
template <class T>
[[nodiscard]] inline T reduce16(const T* l) noexcept {
  T a[8], b[4];
  for (std::size_t i = 0; i < 8; ++i) a[i] = l[i] + l[i + 8];
  for (std::size_t i = 0; i < 4; ++i) b[i] = a[i] + a[i + 4];
  const T c0 = b[0] + b[2], c1 = b[1] + b[3];
  return c0 + c1;
}

#if defined(__SSE2__)
/// reduce16's last three levels on the 8 values of a: (a[i] + a[i+4]), then [i] + [i+2], then [0] + [1].
[[nodiscard]] inline float reduce8_tail(__m128 lo, __m128 hi) noexcept {
  __m128 b = _mm_add_ps(lo, hi);           // b[i] = a[i] + a[i+4]
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));  // [0] = b0 + b2, [1] = b1 + b3
  return _mm_cvtss_f32(_mm_add_ss(b, _mm_shuffle_ps(b, b, 1)));
}
#endif

/// reduce16 of the 16 float lanes held in v[0..R) (lane l at position l mod W of register l / W),
/// computed in registers: the same additions on the same pairs as reduce16, so the same bits. Other
/// element types and targets go through memory and reduce16.
template <class T, class Arch, std::size_t R>
[[nodiscard]] inline T reduce_lanes(const xsimd::batch<T, Arch> (&v)[R]) noexcept {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  if constexpr (std::is_same_v<T, float>) {
#if defined(__AVX512F__)
    if constexpr (W == 16) {
      const __m512 z = v[0];
      const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(z),  // a[i] = l[i] + l[i+8]
                                     _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z), 1)));
      return reduce8_tail(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    }
#endif
#if defined(__AVX__)
    if constexpr (W == 8) {
      const __m256 a = _mm256_add_ps(v[0], v[1]);  // a[i] = l[i] + l[i+8]
      return reduce8_tail(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    }
#endif
#if defined(__SSE2__)
    if constexpr (W == 4) {  // a[0..3] = v0 + v2, a[4..7] = v1 + v3
      return reduce8_tail(_mm_add_ps(v[0], v[2]), _mm_add_ps(v[1], v[3]));
    }
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
    if constexpr (W == 4) {
      const float32x4_t b = vaddq_f32(vaddq_f32(v[0], v[2]), vaddq_f32(v[1], v[3]));  // b[i] = a[i] + a[i+4]
      const float32x2_t c = vadd_f32(vget_low_f32(b), vget_high_f32(b));             // b0 + b2, b1 + b3
      return vget_lane_f32(c, 0) + vget_lane_f32(c, 1);
    }
#endif
  }
  alignas(64) T l[lanes];
  #pragma GCC unroll 16
  for (std::size_t r = 0; r < R; ++r) v[r].store_aligned(l + r * W);
  return reduce16(l);
}

/// 16 canonical lanes held in 16/W registers of Arch.
template <class T, class Arch>
struct Lanes {
  using B = xsimd::batch<T, Arch>;
  static constexpr std::size_t W = B::size;
  static constexpr std::size_t R = lanes / W;
  static_assert(lanes % W == 0, "canonical: the batch width must divide 16");
  B v[R];

  Lanes() noexcept {
    #pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r) v[r] = B(T(0));
  }
  /// lane l += a[l]·b[l] for l < 16 (unaligned, 16 values each).
  void add_products(const T* a, const T* b) noexcept {
    #pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r) v[r] = v[r] + mul(B::load_unaligned(a + r * W), B::load_unaligned(b + r * W));
  }
  /// lane l += a[l] for l < 16.
  void add(const T* a) noexcept {
    #pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r) v[r] = v[r] + B::load_unaligned(a + r * W);
  }
  [[nodiscard]] T reduce() const noexcept { return reduce_lanes<T, Arch, R>(v); }
};

/// Σ_j a[j]·b[j] in the canonical order (see the file comment). Reads exactly n values of each.
template <class Arch, class T>
[[nodiscard]] inline T dot(const T* a, const T* b, std::size_t n) noexcept {
  Lanes<T, Arch> acc;
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) acc.add_products(a + j, b + j);
  if (j < n) {
    alignas(64) T pa[lanes] = {}, pb[lanes] = {};
    std::memcpy(pa, a + j, (n - j) * sizeof(T));
    std::memcpy(pb, b + j, (n - j) * sizeof(T));
    acc.add_products(pa, pb);
  }
  return acc.reduce();
}

/// Canonical exp (see the file comment), W lanes of Arch at once.
template <class Arch>
[[nodiscard]] inline xsimd::batch<float, Arch> exp(xsimd::batch<float, Arch> x) noexcept {
  using B = xsimd::batch<float, Arch>;
  using I = xsimd::batch<std::int32_t, Arch>;
  const B lo(-87.0f), hi(88.0f);
  const auto under = x < lo;
  x = xsimd::select(x > hi, hi, xsimd::select(under, lo, x));
  const B magic(12582912.0f);  // 1.5·2^23: (t + magic) − magic rounds t half to even (|t| < 2^22)
  const B n = (mul(x, B(1.44269504088896341f)) + magic) - magic;
  B r = x - mul(n, B(0.693359375f));  // n·C1 is exact (C1 has 9 significant bits)
  r = r - mul(n, B(-2.12194440e-4f));
  const B z = mul(r, r);
  B p(1.9875691500e-4f);
  p = mul(p, r) + B(1.3981999507e-3f);
  p = mul(p, r) + B(8.3334519073e-3f);
  p = mul(p, r) + B(4.1665795894e-2f);
  p = mul(p, r) + B(1.6666665459e-1f);
  p = mul(p, r) + B(5.0000001201e-1f);
  const B y = (mul(p, z) + r) + B(1.0f);
  const I e = (xsimd::to_int(n) + I(127)) << 23;  // n in [−126, 127]: 2^n is a normal float
  const B s = xsimd::bitwise_cast<B>(e);
  return xsimd::select(under, B(0.0f), mul(y, s));
}

/// Scalar form of exp<Arch>: the same operations on one value.
[[nodiscard]] inline float exp(float x) noexcept {
  const bool under = x < -87.0f;
  x = x > 88.0f ? 88.0f : (under ? -87.0f : x);
  const float magic = 12582912.0f;
  float t = mul(x, 1.44269504088896341f) + magic;
  opaque(t);  // keep (t + magic) − magic as written
  const float n = t - magic;
  float r = x - mul(n, 0.693359375f);
  r = r - mul(n, -2.12194440e-4f);
  const float z = mul(r, r);
  float p = 1.9875691500e-4f;
  p = mul(p, r) + 1.3981999507e-3f;
  p = mul(p, r) + 8.3334519073e-3f;
  p = mul(p, r) + 4.1665795894e-2f;
  p = mul(p, r) + 1.6666665459e-1f;
  p = mul(p, r) + 5.0000001201e-1f;
  const float y = (mul(p, z) + r) + 1.0f;
  const auto e = static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &e, sizeof(s));
  return under ? 0.0f : mul(y, s);
}

}  // namespace canonical

SPARQ_TARGET_END

}  // namespace sparq::kernels
