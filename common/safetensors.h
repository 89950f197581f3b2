#pragma once
// Our own reader and writer of the safetensors format (8-byte little-endian header length, a JSON header of
// {name: {dtype, shape, data_offsets}}, then the raw little-endian tensor bytes). The file is memory-mapped and
// the header is validated before any byte is trusted: size limits, known dtypes, offsets inside the data section,
// byte counts that match the shapes, no overlapping tensors. Torch-free: the worker turns entries into tensors.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace sdm {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;                 ///< F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;           ///< offsets into the data section
  std::uint64_t end = 0;
  std::int64_t numel() const;
};

/// Bytes per element of a safetensors dtype name; 0 for an unknown name.
std::size_t safetensors_dtype_size(const std::string& dtype);

class SafetensorsFile {
 public:
  /// Maps and validates `path`; throws IoError naming the file and the offending tensor or field.
  /// `copy_on_write`: the mapping is writable and private, so views of it may be changed in place (merging LoRA
  /// adapters into mapped weights) without touching the file.
  static SafetensorsFile open(const std::string& path, bool copy_on_write = false);
  /// True if the file starts like a safetensors file (a plausible header length followed by '{').
  static bool looks_like(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const nlohmann::json& metadata() const { return metadata_; }
  /// The entry's bytes (little-endian, as stored).
  std::span<const std::byte> bytes(const SafetensorsEntry& entry) const;
  /// Keeps the mapping alive for as long as the returned handle lives (tensors that view it hold one).
  std::shared_ptr<const void> mapping() const { return map_; }

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> map_;
  const std::byte* data_ = nullptr;
  std::vector<SafetensorsEntry> entries_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

struct SafetensorsTensor {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> bytes;
};

/// A weights path as given by a user: a directory holding a Hugging Face checkpoint resolves to its
/// model.safetensors.index.json, pytorch_model.bin.index.json or model.safetensors (in that order); other paths are
/// returned as they are. Throws IoError for a directory with none of them.
std::string resolve_checkpoint_path(const std::string& path);

/// The shard files a `*.index.json` names in its weight_map (beside the index), sorted; throws IoError naming the
/// index for a malformed one.
std::vector<std::string> checkpoint_shards(const std::string& index_path);

/// Content hash of a checkpoint: a file's SHA-256, or for a sharded one the SHA-256 of the index's and every
/// shard's hashes (so a changed shard changes the cell ids that used it).
std::string checkpoint_content_hash(const std::string& path);

/// Writes tensors in the given order (header padded to 8 bytes), via a temporary file and a rename.
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const nlohmann::json& metadata = nlohmann::json::object());

}  // namespace sdm
