#pragma once
// Where every chunk of a 1-D chunked dataset lies in its file, read from the dataset's chunk index directly.
// HDF5 1.10 offers only H5Dget_chunk_info(_by_coord), each call walking the index from its start: O(n^2) for n
// chunks (0.06-0.1 s at 4,096 chunks, minutes at 100,000). The layout this reads is what h5py and anndata
// write by default (libver "earliest"): a version-1 object header, a version-3 data layout message and a
// version-1 B-tree of raw data chunks (HDF5 File Format Specification, III.A.1, IV.A.1.a, IV.A.2.i). Anything
// else (version-2 headers, newer chunk indexes, other address sizes) gives nothing and the caller asks HDF5.
//
// The bytes come from a file that may be corrupt or hostile: every read is bounds-checked against the file
// size, node levels must descend, a node is visited once, and the total work is bounded. The caller still
// checks the result against HDF5 (common/hdf5_direct.cpp).
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace sdm::h5 {

struct ChunkLocation {
  std::uint64_t first_element = 0;  ///< the chunk's offset in the dataset, in elements
  std::uint64_t address = 0;        ///< file offset of its bytes
  std::uint32_t bytes = 0;          ///< stored size
  std::uint32_t filter_mask = 0;    ///< filters skipped for this chunk
};

/// Bytes [offset, offset + n) of the file, or nothing when they are not all there.
using ReadBytes = std::function<std::optional<std::vector<unsigned char>>(std::uint64_t offset, std::uint64_t n)>;

/// What the walk needs to know: the dataset's object header address and shape.
struct ChunkIndexQuery {
  std::uint64_t header = 0;          ///< object header address
  std::uint64_t elements = 0;        ///< elements in the 1-D dataset
  std::uint64_t chunk_elements = 0;  ///< elements per chunk
  std::uint64_t element_bytes = 0;
};

/// The parse alone, on any byte source (the fuzz target feeds it arbitrary bytes): the allocated chunks sorted by
/// first_element, each on a chunk boundary inside the dataset and listed once; or nothing.
std::optional<std::vector<ChunkLocation>> walk_v1_chunk_index(const ReadBytes& read, const ChunkIndexQuery& query);

/// Every allocated chunk of the 1-D dataset `ds` (whose file is open on descriptor `fd`, `file_size` bytes,
/// no user block), sorted by first_element; nothing when the dataset's header or index is not the layout above
/// or does not describe `chunk_elements` x `element_bytes` chunks.
std::optional<std::vector<ChunkLocation>> read_v1_chunk_index(int fd, std::uint64_t file_size, hid_t file_id,
                                                              hid_t ds, std::uint64_t chunk_elements,
                                                              std::uint64_t element_bytes);

}  // namespace sdm::h5
