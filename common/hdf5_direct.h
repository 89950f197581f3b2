#pragma once
// Reading a large 1-D numeric range of an .h5ad without HDF5's per-chunk machinery: the chunks' (or the
// contiguous block's) file offsets are looked up once, then the bytes are pread straight into the caller's
// storage by a few threads. Reading a 1 GB CSR matrix is kernel-bound (page-cache copies and first-touch page
// faults), and one thread leaves the other cores idle; HDF5 itself cannot read in parallel.
//
// Only what is safe to bypass: the POSIX (sec2) driver, no user block, no filters, a file type byte-identical
// to the memory type, every chunk allocated and inside the file. Anything else returns false and the caller
// reads through H5Dread. A few elements are then read again through HDF5 and compared, so a wrong offset
// cannot pass silently.
#include <hdf5.h>

#include <cstddef>
#include <string>

namespace sdm::h5 {

struct DirectReadOptions {
  std::size_t min_bytes = std::size_t{8} << 20;  ///< below this, H5Dread is as fast (no threads started)
  unsigned threads = 0;                           ///< 0: SDM_READ_THREADS, else min(4, hardware threads)
};

/// Reads elements [start, start + count) of the 1-D dataset `ds` of file `file_id` into `out` (memory type
/// `mem_type`, `element_bytes` each). Returns false, having read nothing it vouches for, when the dataset is not
/// eligible; throws IoError (naming `file` and `where`) when the file cannot be read.
bool read_range_direct(hid_t file_id, hid_t ds, hid_t mem_type, std::size_t element_bytes, hsize_t start,
                       hsize_t count, void* out, const std::string& file, const std::string& where,
                       const DirectReadOptions& options = {});

/// The threads a direct read uses by default: SDM_READ_THREADS when set (1 turns parallel reading off), else
/// what set_read_threads said (a worker rank: its --threads, so reading stays within the rank's cores), else
/// min(4, hardware threads).
unsigned default_read_threads();
void set_read_threads(unsigned threads);

}  // namespace sdm::h5
