#include "common/hdf5_direct.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/file_io.h"
#include "common/hdf5.h"
#include "common/hdf5_chunk_index.h"

namespace sdm::h5 {
namespace {

/// Bytes [file_offset, file_offset + length) of the file go to out + dest_offset.
struct Extent {
  std::uint64_t file_offset = 0, dest_offset = 0, length = 0;
};

/// Where the chunk index cannot be read directly (common/hdf5_chunk_index.h), HDF5 1.10 finds a chunk's address
/// by walking the index from its start (H5Dget_chunk_info_by_coord is linear in the chunk's position;
/// H5Dchunk_iter arrived in 1.12.3), so looking up n chunks costs O(n^2): ~15 us a chunk at 4,096 chunks.
/// Beyond this many chunks the lookups would cost more than the parallel read saves, and HDF5 reads the range.
constexpr hsize_t kMaxChunkLookups = 4096;

/// Elements compared with HDF5's own read after a direct read, evenly spaced over the range (each costs HDF5
/// one chunk read: ~1 ms in all).
constexpr hsize_t kSpotChecks = 16;

/// MADV_POPULATE_WRITE (Linux 5.14); glibc 2.36's headers may predate it.
#ifdef MADV_POPULATE_WRITE
constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kPopulateWrite = 23;
#endif

/// Work items for the threads: big enough to keep syscalls rare, small enough to balance two to four threads.
constexpr std::uint64_t kItemBytes = std::uint64_t{32} << 20;

/// The POSIX descriptor behind `file_id`, or -1 when HDF5 does not read it through the sec2 driver from offset 0.
int sec2_descriptor(hid_t file_id) {
  PlistId fapl(H5Fget_access_plist(file_id));
  if (fapl.get() < 0 || H5Pget_driver(fapl.get()) != H5FD_SEC2) return -1;
  PlistId fcpl(H5Fget_create_plist(file_id));
  hsize_t userblock = 1;
  if (fcpl.get() < 0 || H5Pget_userblock(fcpl.get(), &userblock) < 0 || userblock != 0) return -1;
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file_id, fapl.get(), &handle) < 0 || !handle) return -1;
  return *static_cast<int*>(handle);
}

/// HDF5's own address of the chunk starting at element `first`, or HADDR_UNDEF.
haddr_t hdf5_chunk_address(hid_t ds, hsize_t first, hsize_t* size) {
  unsigned filter_mask = 0;
  haddr_t addr = HADDR_UNDEF;
  hsize_t coord = first;
  if (H5Dget_chunk_info_by_coord(ds, &coord, &filter_mask, &addr, size) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return HADDR_UNDEF;
  }
  return addr;
}

/// Where elements [start, start + count) lie in the file, or nothing when some of them are not plainly stored.
std::vector<Extent> plan_extents(hid_t file_id, hid_t ds, int fd, std::uint64_t file_size, std::size_t element_bytes,
                                 hsize_t start, hsize_t count) {
  PlistId dcpl(H5Dget_create_plist(ds));
  if (dcpl.get() < 0 || H5Pget_nfilters(dcpl.get()) != 0 || H5Pget_external_count(dcpl.get()) != 0) return {};
  std::vector<Extent> extents;
  const auto add = [&](std::uint64_t file_offset, std::uint64_t first, std::uint64_t n) {
    const Extent e{file_offset, (first - start) * element_bytes, n * element_bytes};
    if (!extents.empty() && extents.back().file_offset + extents.back().length == e.file_offset &&
        extents.back().dest_offset + extents.back().length == e.dest_offset) {
      extents.back().length += e.length;  // consecutive chunks written one after the other: one read
    } else {
      extents.push_back(e);
    }
  };
  switch (H5Pget_layout(dcpl.get())) {
    case H5D_CONTIGUOUS: {
      const haddr_t addr = H5Dget_offset(ds);
      if (addr == HADDR_UNDEF) return {};
      add(addr + start * element_bytes, start, count);
      return extents;
    }
    case H5D_CHUNKED: {
      hsize_t chunk = 0;
      if (H5Pget_chunk(dcpl.get(), 1, &chunk) != 1 || chunk == 0) return {};
      const auto place = [&](hsize_t first, haddr_t addr) {
        const hsize_t lo = std::max(first, start), hi = std::min(first + chunk, start + count);
        add(addr + (lo - first) * element_bytes, lo, hi - lo);
      };
      const hsize_t begin = start / chunk * chunk, chunk_bytes = chunk * element_bytes;
      if (const auto index = read_v1_chunk_index(fd, file_size, file_id, ds, chunk, element_bytes)) {
        if (index->empty()) return {};
        // the parse must agree with HDF5 on the dataset's first chunk (one cheap lookup)
        hsize_t size = 0;
        if (hdf5_chunk_address(ds, index->front().first_element, &size) != index->front().address ||
            size != index->front().bytes)
          return {};
        auto it = std::lower_bound(index->begin(), index->end(), begin,
                                   [](const ChunkLocation& c, hsize_t first) { return c.first_element < first; });
        for (hsize_t first = begin; first < start + count; first += chunk, ++it) {
          if (it == index->end() || it->first_element != first || it->bytes != chunk_bytes || it->filter_mask != 0)
            return {};  // an unallocated chunk (fill values) or one stored otherwise: HDF5 knows what to do
          place(first, it->address);
        }
        return extents;
      }
      if ((start + count - 1) / chunk - start / chunk + 1 > kMaxChunkLookups) return {};
      for (hsize_t first = begin; first < start + count; first += chunk) {
        hsize_t size = 0;
        const haddr_t addr = hdf5_chunk_address(ds, first, &size);
        if (addr == HADDR_UNDEF || size != chunk_bytes) return {};
        place(first, addr);
      }
      return extents;
    }
    default:
      return {};  // compact, virtual
  }
}

/// Splits extents into items of at most kItemBytes.
std::vector<Extent> split_items(const std::vector<Extent>& extents) {
  std::vector<Extent> items;
  for (const auto& e : extents) {
    for (std::uint64_t done = 0; done < e.length; done += kItemBytes) {
      items.push_back({e.file_offset + done, e.dest_offset + done, std::min(kItemBytes, e.length - done)});
    }
  }
  return items;
}

void pread_fully(int fd, const Extent& item, char* out, const std::string& file, const std::string& where) {
  // Fault the destination in with one call before copying into it: the kernel then maps the pages in a batch
  // instead of taking one trap per 4 KiB page inside the copy (measured: ~20 % less kernel time on a 1 GB
  // read). Advisory: kernels before 5.14 refuse it and the copy faults the pages in as before.
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto lo = (reinterpret_cast<std::uintptr_t>(out + item.dest_offset) + page - 1) / page * page;
  const auto hi = reinterpret_cast<std::uintptr_t>(out + item.dest_offset + item.length) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, kPopulateWrite);
  const std::int64_t got = pread_full(fd, out + item.dest_offset, item.length, item.file_offset);
  if (got < 0) throw IoError({file, where, ""}, std::string("cannot read: ") + std::strerror(errno));
  if (static_cast<std::uint64_t>(got) < item.length)
    throw IoError({file, where, ""}, "file ended at byte " + std::to_string(item.file_offset + static_cast<std::uint64_t>(got)) +
                                         " while reading (truncated while open?)");
}

void read_items(int fd, const std::vector<Extent>& items, char* out, unsigned threads, const std::string& file,
                const std::string& where) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const auto work = [&] {
    try {
      for (std::size_t i = next++; i < items.size(); i = next++) pread_fully(fd, items[i], out, file, where);
    } catch (...) {
      const std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = items.size();
    }
  };
  std::vector<std::thread> pool;
  const auto helpers = std::min<std::size_t>(threads, items.size()) - 1;
  for (std::size_t t = 0; t < helpers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

/// Reads element `i` through HDF5 and compares it with what the direct read put at out[i - start].
bool same_as_hdf5(hid_t ds, hid_t mem_type, std::size_t element_bytes, hsize_t start, hsize_t i, const char* out) {
  SpaceId fspace(H5Dget_space(ds));
  const hsize_t one = 1;
  if (H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &i, nullptr, &one, nullptr) < 0) return false;
  SpaceId mspace(H5Screate_simple(1, &one, nullptr));
  char buf[16] = {};
  if (element_bytes > sizeof buf || H5Dread(ds, mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, buf) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  return std::memcmp(buf, out + (i - start) * element_bytes, element_bytes) == 0;
}

}  // namespace

namespace {
std::atomic<unsigned> chosen_read_threads{0};
}  // namespace

void set_read_threads(unsigned threads) { chosen_read_threads = threads; }

unsigned default_read_threads() {
  static const unsigned from_env = [] {
    if (const char* env = std::getenv("SDM_READ_THREADS"); env && *env) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(env, &end, 10);
      if (end && *end == '\0' && v > 0 && v <= 256) return static_cast<unsigned>(v);
      throw ConfigError({"<env>", "SDM_READ_THREADS", env}, "expected a whole number from 1 to 256");
    }
    return 0u;
  }();
  if (from_env) return from_env;
  if (const unsigned chosen = chosen_read_threads) return chosen;
  return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
}

bool read_range_direct(hid_t file_id, hid_t ds, hid_t mem_type, std::size_t element_bytes, hsize_t start,
                       hsize_t count, void* out, const std::string& file, const std::string& where,
                       const DirectReadOptions& options) {
  if (count == 0 || count * element_bytes < options.min_bytes) return false;
  TypeId ftype(H5Dget_type(ds));
  if (ftype.get() < 0 || H5Tequal(ftype.get(), mem_type) <= 0 || H5Tget_size(mem_type) != element_bytes) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  const int fd = sec2_descriptor(file_id);
  H5Eclear2(H5E_DEFAULT);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  const auto extents = plan_extents(file_id, ds, fd, static_cast<std::uint64_t>(st.st_size), element_bytes, start, count);
  if (extents.empty()) return false;
  for (const auto& e : extents) {
    // a truncated file: let HDF5 report it in its words
    if (e.file_offset > static_cast<std::uint64_t>(st.st_size) || e.length > static_cast<std::uint64_t>(st.st_size) - e.file_offset)
      return false;
  }
  auto* bytes = static_cast<char*>(out);
  read_items(fd, split_items(extents), bytes, options.threads ? options.threads : default_read_threads(), file,
             where);
  // check the offsets against HDF5's own reading at both ends and evenly in between
  const hsize_t checks = std::min<hsize_t>(kSpotChecks, count);
  for (hsize_t k = 0; k < checks; ++k) {
    const hsize_t i = checks == 1 ? start : start + (count - 1) * k / (checks - 1);
    if (!same_as_hdf5(ds, mem_type, element_bytes, start, i, bytes)) return false;
  }
  return true;
}

}  // namespace sdm::h5
