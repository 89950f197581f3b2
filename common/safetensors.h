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
  static SafetensorsFile open(const std::string& path);
  /// True if the file starts like a safetensors file (a plausible header length followed by '{').
  static bool looks_like(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const nlohmann::json& metadata() const { return metadata_; }
  /// The entry's bytes (little-endian, as stored).
  std::span<const std::byte> bytes(const SafetensorsEntry& entry) const;

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

/// Writes tensors in the given order (header padded to 8 bytes), via a temporary file and a rename.
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const nlohmann::json& metadata = nlohmann::json::object());

}  // namespace sdm
