// LargeAllocator: std::allocator for small blocks, transparent huge pages for large ones.
//
// Compression works on n x n buffers of tens to hundreds of MB (a 4096 x 4096 Hessian in double is
// 128 MB) that live for one step. glibc serves every block of more than 32 MB with a fresh mmap, so
// each such buffer is first touched page by page: 32,768 faults of 4 KB for 128 MB. On the virtual
// machines that CI and the benchmarks run on a fault costs about 10 µs, i.e. 0.33 s per 128 MB
// before any arithmetic (measured: touching 128 MB takes 0.33 s, 0.01–0.03 s with huge pages).
// On Linux, blocks of at least kLargeBytes are therefore aligned to 2 MB and marked
// madvise(MADV_HUGEPAGE), so that the kernel maps them with 2 MB pages when transparent huge pages
// are enabled in "always" or "madvise" mode (most distributions); elsewhere, or when the advice is
// refused, they are ordinary pages. Values, alignment guarantees of T and exceptions are those of
// std::allocator: only the page size changes.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace sparq {

template <class T>
struct LargeAllocator {
  using value_type = T;
  /// Blocks of at least this many bytes get 2 MB alignment and the huge-page advice.
  static constexpr std::size_t kLargeBytes = std::size_t{4} << 20;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  LargeAllocator() noexcept = default;
  template <class U>
  constexpr LargeAllocator(const LargeAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (!large(bytes)) return std::allocator<T>{}.allocate(n);
    void* p = ::operator new(bytes, std::align_val_t{kHugePage});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    (void)::madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // whole 2 MB pages inside the block; advice only
#endif
    return static_cast<T*>(p);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    if (!large(n * sizeof(T))) {
      std::allocator<T>{}.deallocate(p, n);
      return;
    }
    ::operator delete(p, std::align_val_t{kHugePage});
  }

  template <class U>
  friend constexpr bool operator==(const LargeAllocator&, const LargeAllocator<U>&) noexcept {
    return true;
  }

 private:
  [[nodiscard]] static constexpr bool large(std::size_t bytes) noexcept {
#if defined(__linux__)
    return bytes >= kLargeBytes;
#else
    (void)bytes;
    return false;
#endif
  }
};

/// A std::vector whose large buffers use huge pages (Matrix's storage, the n x n temporaries).
template <class T>
using LargeVector = std::vector<T, LargeAllocator<T>>;

}  // namespace sparq
