#include "common/hdf5_chunk_index.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "common/file_io.h"
#include "common/hdf5.h"

namespace sdm::h5 {
namespace {

using Bytes = std::vector<unsigned char>;

constexpr std::uint16_t kContinuationMessage = 0x0010;
constexpr std::uint16_t kLayoutMessage = 0x0008;
constexpr std::size_t kMaxHeaderBlocks = 64;
constexpr std::uint64_t kMaxHeaderBlockBytes = std::uint64_t{1} << 20;
constexpr int kMaxTreeLevel = 64;
constexpr std::uint64_t kUndefinedAddress = ~std::uint64_t{0};
/// Work bounds whatever the file claims: 4 Mi chunks (~100 MB of locations; a dataset with more falls back to
/// HDF5, as it would anyway beyond the lookup cap) and as many nodes and queued children.
constexpr std::uint64_t kMaxChunks = std::uint64_t{1} << 22;

std::uint64_t le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// The B-tree address in a version-3 layout message of a chunked dataset with the expected chunk shape.
std::optional<std::uint64_t> chunked_layout_btree(const unsigned char* data, std::uint64_t size,
                                                  std::uint64_t chunk_elements, std::uint64_t element_bytes) {
  // version 3, class 2 (chunked), dimensionality (rank + 1), B-tree address, one 4-byte size per dimension
  // (the last is the element size)
  if (size < 3 || data[0] != 3 || data[1] != 2 || data[2] != 2) return std::nullopt;
  if (size < 3 + 8 + 2 * 4) return std::nullopt;
  const auto btree = le(data + 3, 8);
  if (le(data + 11, 4) != chunk_elements || le(data + 15, 4) != element_bytes) return std::nullopt;
  return btree;
}

/// The B-tree address from the dataset's version-1 object header at `header`.
std::optional<std::uint64_t> find_btree(const ReadBytes& read_at, std::uint64_t header,
                                        std::uint64_t chunk_elements, std::uint64_t element_bytes) {
  // version 1 prefix: version, reserved, message count (2), reference count (4), header size (4), padding (4)
  if (header > kUndefinedAddress - 16) return std::nullopt;
  const auto prefix = read_at(header, 16);
  if (!prefix || (*prefix)[0] != 1) return std::nullopt;  // version-2 headers start with "OHDR"
  std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks{{header + 16, le(prefix->data() + 8, 4)}};
  for (std::size_t b = 0; b < blocks.size() && b < kMaxHeaderBlocks; ++b) {
    const auto [offset, size] = blocks[b];
    if (size > kMaxHeaderBlockBytes) return std::nullopt;
    const auto block = read_at(offset, size);
    if (!block) return std::nullopt;
    // messages: type (2), data size (2), flags (1), reserved (3), data
    for (std::uint64_t pos = 0; pos + 8 <= size;) {
      const auto type = static_cast<std::uint16_t>(le(block->data() + pos, 2));
      const auto data_size = le(block->data() + pos + 2, 2);
      const unsigned char* data = block->data() + pos + 8;
      if (data_size > size - pos - 8) return std::nullopt;
      if (type == kLayoutMessage) return chunked_layout_btree(data, data_size, chunk_elements, element_bytes);
      if (type == kContinuationMessage) {
        if (data_size < 16) return std::nullopt;
        blocks.emplace_back(le(data, 8), le(data + 8, 8));
      }
      pos += 8 + data_size;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<ChunkLocation>> walk_v1_chunk_index(const ReadBytes& read_at, const ChunkIndexQuery& query) {
  const auto chunk_elements = query.chunk_elements, elements = query.elements;
  if (chunk_elements == 0 || query.element_bytes == 0) return std::nullopt;
  const std::uint64_t max_chunks = std::min(elements / chunk_elements + 1, kMaxChunks);
  const auto root = find_btree(read_at, query.header, chunk_elements, query.element_bytes);
  if (!root) return std::nullopt;
  std::vector<ChunkLocation> chunks;
  if (*root == kUndefinedAddress) return chunks;  // no chunk written yet

  // raw-data-chunk node: "TREE", type 1, level, entries used (2), left and right siblings (8 each), then
  // key 0, child 0, ..., key n; a key is chunk size (4), filter mask (4), offset per dimension (8 each)
  constexpr std::uint64_t kNodeHeader = 24, kKey = 4 + 4 + 2 * 8, kEntry = kKey + 8;
  std::vector<std::pair<std::uint64_t, int>> pending{{*root, -1}};
  std::unordered_set<std::uint64_t> visited;
  std::uint64_t nodes = 0;
  while (!pending.empty()) {
    const auto [address, expected_level] = pending.back();
    pending.pop_back();
    if (!visited.insert(address).second || ++nodes > 2 * max_chunks + 64) return std::nullopt;
    const auto head = read_at(address, kNodeHeader);
    if (!head || std::memcmp(head->data(), "TREE", 4) != 0 || (*head)[4] != 1) return std::nullopt;
    const int level = (*head)[5];
    const auto entries = le(head->data() + 6, 2);
    if (level > kMaxTreeLevel || (expected_level >= 0 && level != expected_level)) return std::nullopt;
    if (address > kUndefinedAddress - kNodeHeader) return std::nullopt;
    const auto body = read_at(address + kNodeHeader, entries * kEntry + kKey);
    if (!body) return std::nullopt;
    for (std::uint64_t i = 0; i < entries; ++i) {
      const unsigned char* key = body->data() + i * kEntry;
      const auto child = le(key + kKey, 8);
      if (level > 0) {
        if (pending.size() >= max_chunks + 64) return std::nullopt;
        pending.emplace_back(child, level - 1);
        continue;
      }
      const auto first = le(key + 8, 8);
      if (le(key + 16, 8) != 0 || first % chunk_elements != 0 || first >= elements || chunks.size() >= max_chunks)
        return std::nullopt;
      chunks.push_back({first, child, static_cast<std::uint32_t>(le(key, 4)), static_cast<std::uint32_t>(le(key + 4, 4))});
    }
  }
  std::sort(chunks.begin(), chunks.end(), [](const auto& a, const auto& b) { return a.first_element < b.first_element; });
  for (std::size_t i = 1; i < chunks.size(); ++i)
    if (chunks[i].first_element == chunks[i - 1].first_element) return std::nullopt;  // one chunk listed twice
  return chunks;
}

std::optional<std::vector<ChunkLocation>> read_v1_chunk_index(int fd, std::uint64_t file_size, hid_t file_id,
                                                              hid_t ds, std::uint64_t chunk_elements,
                                                              std::uint64_t element_bytes) {
  PlistId fcpl(H5Fget_create_plist(file_id));
  std::size_t address_bytes = 0, length_bytes = 0;
  if (fcpl.get() < 0 || H5Pget_sizes(fcpl.get(), &address_bytes, &length_bytes) < 0 || address_bytes != 8 ||
      length_bytes != 8)
    return std::nullopt;
  H5O_info_t info{};
  if (H5Oget_info2(ds, &info, H5O_INFO_BASIC) < 0) return std::nullopt;
  SpaceId space(H5Dget_space(ds));
  const ReadBytes read_at = [&](std::uint64_t offset, std::uint64_t n) -> std::optional<Bytes> {
    if (offset > file_size || n > file_size - offset) return std::nullopt;
    Bytes buf(n);
    if (pread_full(fd, buf.data(), n, offset) != static_cast<std::int64_t>(n)) return std::nullopt;
    return buf;
  };
  return walk_v1_chunk_index(read_at, {info.addr, element_count(space.get()), chunk_elements, element_bytes});
}

}  // namespace sdm::h5
