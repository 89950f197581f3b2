#pragma once
// Positional reads of a whole range, for the readers that bypass a library's own I/O (common/hdf5_direct.cpp,
// common/hdf5_chunk_index.cpp).
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace sdm {

/// Reads `n` bytes at `offset` into `buf`, retrying short reads and EINTR. Returns the bytes read: `n`, or fewer when
/// the file ends first; -1 with errno set on an error. pread leaves the descriptor's offset alone, so threads may
/// share one descriptor.
inline std::int64_t pread_full(int fd, void* buf, std::uint64_t n, std::uint64_t offset) {
  auto* out = static_cast<char*>(buf);
  std::uint64_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -1;
    if (got == 0) break;
    done += static_cast<std::uint64_t>(got);
  }
  return static_cast<std::int64_t>(done);
}

}  // namespace sdm
