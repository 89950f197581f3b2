#pragma once
// Storage for large numeric arrays (a CSR matrix's values and indices). Two differences from std::allocator,
// both about kernel time, which dominates reading a 1 GB matrix: elements are default-initialised (no zeroing
// pass before HDF5 fills them), and big blocks are 2 MiB-aligned with MADV_HUGEPAGE (where huge_pages_help()),
// so the kernel faults them in as huge pages instead of ~270,000 separate 4 KiB pages.
#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <vector>

namespace sdm {

/// Whether big buffers ask for transparent huge pages. SDM_HUGEPAGES=1 / 0 decides; by default yes, except in
/// a virtual machine whose balloon reports free pages to the host (VIRTIO_BALLOON_F_REPORTING): it hands free
/// 2 MiB blocks back to the hypervisor, so a fresh huge page faults in from the host first. Measured on such a
/// VM, reading a 1 GB matrix took 0.4 to 2.7 s run to run with huge pages and a steady 0.57 s without.
bool huge_pages_help();

template <class T>
class BigBufferAllocator {
 public:
  using value_type = T;
  BigBufferAllocator() noexcept = default;
  template <class U>
  BigBufferAllocator(const BigBufferAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugeThreshold) {
      if (void* p = std::malloc(bytes ? bytes : 1)) return static_cast<T*>(p);
      throw std::bad_alloc();
    }
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (!p) throw std::bad_alloc();
    if (huge_pages_help()) madvise(p, rounded, MADV_HUGEPAGE);  // advisory: harmless where THP is off
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }

  /// Default-initialise (leave trivially constructible values unset); value-initialise when given args.
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }

  template <class U>
  bool operator==(const BigBufferAllocator<U>&) const noexcept { return true; }

 private:
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;
  static constexpr std::size_t kHugeThreshold = std::size_t{4} << 20;
};

template <class T>
using BigVector = std::vector<T, BigBufferAllocator<T>>;

}  // namespace sdm
