#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/error.h"
#include "common/hash.h"

namespace sdm {
namespace {

// A header larger than this is not a checkpoint header but a corrupt or hostile file (the format's own
// reference implementation uses the same 100 MB cap).
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

std::uint64_t read_le64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

}  // namespace

std::size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, std::size_t> kSizes{{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},
                                                         {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
                                                         {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}};
  const auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

std::int64_t SafetensorsEntry::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

struct SafetensorsFile::Mapping {
  void* base = MAP_FAILED;
  std::size_t size = 0;
  ~Mapping() {
    if (base != MAP_FAILED && size > 0) munmap(base, size);
  }
};

bool SafetensorsFile::looks_like(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::byte head[9];
  if (!in.read(reinterpret_cast<char*>(head), 9)) return false;
  const auto n = read_le64(head);
  return n >= 2 && n <= kMaxHeaderBytes && static_cast<char>(head[8]) == '{';
}

SafetensorsFile SafetensorsFile::open(const std::string& path, bool copy_on_write) {
  SafetensorsFile f;
  f.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError({path, "", ""}, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw IoError({path, "", ""}, "cannot stat");
  }
  f.map_ = std::make_shared<Mapping>();
  f.map_->size = static_cast<std::size_t>(st.st_size);
  if (f.map_->size < 8) {
    ::close(fd);
    throw IoError({path, "header", std::to_string(f.map_->size) + " bytes"}, "too short for a safetensors file");
  }
  f.map_->base = mmap(nullptr, f.map_->size, copy_on_write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (f.map_->base == MAP_FAILED) throw IoError({path, "", ""}, "cannot map the file");
  const auto* base = static_cast<const std::byte*>(f.map_->base);
  const std::uint64_t header_len = read_le64(base);
  if (header_len > kMaxHeaderBytes || header_len > f.map_->size - 8) {
    throw IoError({path, "header length", std::to_string(header_len)},
                  "larger than the file or the 100 MB limit: not a safetensors file, or truncated");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(base + 8), reinterpret_cast<const char*>(base + 8 + header_len));
  } catch (const std::exception& e) {
    throw IoError({path, "header", ""}, std::string("not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw IoError({path, "header", ""}, "expected a JSON object");
  f.data_ = base + 8 + header_len;
  const std::uint64_t data_size = f.map_->size - 8 - header_len;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      f.metadata_ = value;
      continue;
    }
    // init-captures: clang before 16 cannot capture a structured binding (tools/fuzz.sh builds with clang)
    const auto bad = [&path, &key = name, &entry = value](const std::string& field, const std::string& problem) {
      return IoError({path, key + "." + field, entry.contains(field) ? entry[field].dump() : ""}, problem);
    };
    if (!value.is_object()) throw bad("", "expected {dtype, shape, data_offsets}");
    SafetensorsEntry e;
    e.name = name;
    if (!value.contains("dtype") || !value["dtype"].is_string() || safetensors_dtype_size(value["dtype"]) == 0) {
      throw bad("dtype", "missing or unknown dtype");
    }
    e.dtype = value["dtype"];
    if (!value.contains("shape") || !value["shape"].is_array()) throw bad("shape", "missing shape");
    for (const auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape", "dimensions must be non-negative integers");
      e.shape.push_back(d.get<std::int64_t>());
    }
    const auto& off = value.contains("data_offsets") ? value["data_offsets"] : nlohmann::json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      throw bad("data_offsets", "expected [begin, end]");
    }
    e.begin = off[0];
    e.end = off[1];
    if (e.begin > e.end || e.end > data_size) {
      throw bad("data_offsets", "outside the data section (" + std::to_string(data_size) + " bytes): truncated file?");
    }
    long double bytes = static_cast<long double>(safetensors_dtype_size(e.dtype));
    for (auto d : e.shape) bytes *= static_cast<long double>(d);
    if (bytes != static_cast<long double>(e.end - e.begin)) {
      throw bad("data_offsets", "byte range does not match shape x dtype size");
    }
    f.entries_.push_back(std::move(e));
  }
  std::vector<const SafetensorsEntry*> order;
  for (const auto& e : f.entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (order[i]->begin < order[i - 1]->end) {
      throw IoError({path, order[i]->name, ""}, "overlaps tensor " + order[i - 1]->name);
    }
  }
  return f;
}

std::span<const std::byte> SafetensorsFile::bytes(const SafetensorsEntry& entry) const {
  return {data_ + entry.begin, static_cast<std::size_t>(entry.end - entry.begin)};
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const nlohmann::json& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError({tmp, "", ""}, "cannot create");
    const std::uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
    if (!out) throw IoError({tmp, "", ""}, "write failed");
  }
  std::filesystem::rename(tmp, path);
}

std::string resolve_checkpoint_path(const std::string& path) {
  if (!std::filesystem::is_directory(path)) return path;
  for (const char* name : {"model.safetensors.index.json", "pytorch_model.bin.index.json", "model.safetensors"}) {
    const auto candidate = path + "/" + name;
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw IoError({path, "", ""}, "a weights directory needs model.safetensors.index.json, pytorch_model.bin.index.json "
                                "or model.safetensors");
}

std::vector<std::string> checkpoint_shards(const std::string& index_path) {
  std::ifstream in(index_path);
  if (!in) throw IoError({index_path, "", ""}, "cannot read the shard index");
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw IoError({index_path, "", ""}, std::string("not a JSON shard index: ") + e.what());
  }
  if (!index.contains("weight_map") || !index["weight_map"].is_object() || index["weight_map"].empty()) {
    throw IoError({index_path, "weight_map", ""}, "expected a non-empty {tensor: shard file} map");
  }
  const auto slash = index_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : index_path.substr(0, slash);
  std::set<std::string> shards;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string() || shard.get<std::string>().find('/') != std::string::npos) {
      throw IoError({index_path, "weight_map." + name, shard.dump()}, "expected a shard file name beside the index");
    }
    shards.insert(dir + "/" + shard.get<std::string>());
  }
  return {shards.begin(), shards.end()};
}

std::string checkpoint_content_hash(const std::string& path) {
  const auto file = resolve_checkpoint_path(path);
  const bool sharded = file.size() > 11 && file.compare(file.size() - 11, 11, ".index.json") == 0;
  if (!sharded) return sha256_file_hex(file);
  std::string hashes = sha256_file_hex(file);
  for (const auto& shard : checkpoint_shards(file)) hashes += sha256_file_hex(shard);
  return sha256_hex(hashes);
}

}  // namespace sdm
