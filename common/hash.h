#pragma once
// Content hashing for stable ids: SHA-256 (FIPS 180-4) of bytes, files and canonical JSON.
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sdm {

class Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, std::size_t size);
  Sha256& update(std::string_view bytes) { return update(bytes.data(), bytes.size()); }
  /// Finishes the hash; the object must not be updated afterwards.
  std::array<std::uint8_t, 32> digest();
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);

  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

/// Lower-case hex SHA-256 of a byte string.
std::string sha256_hex(std::string_view bytes);

/// Lower-case hex SHA-256 of a file's content, streamed. Throws IoError naming the file.
std::string sha256_file_hex(const std::string& path);

/// Canonical JSON text: keys sorted, no whitespace. Equal values always give equal text.
std::string canonical_json(const nlohmann::json& value);

/// SHA-256 of canonical_json(value): the id of a resolved configuration.
std::string content_id(const nlohmann::json& value);

}  // namespace sdm
