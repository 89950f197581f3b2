#include "common/hash.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace sdm {

// Test vectors from FIPS 180-4 / NIST CAVS examples.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 37);
  Sha256 h;
  for (std::size_t i = 0; i < data.size(); i += 63) h.update(data.substr(i, 63));
  EXPECT_EQ(h.hex_digest(), sha256_hex(data));
}

TEST(Sha256, FileHashMatchesContentHash) {
  const auto path = std::filesystem::temp_directory_path() / "sdm_hash_test.bin";
  const std::string content(3 << 20, 'x');  // spans several 1 MiB read blocks
  std::ofstream(path, std::ios::binary) << content;
  EXPECT_EQ(sha256_file_hex(path.string()), sha256_hex(content));
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_file_hex(path.string()), IoError);
}

TEST(ContentId, IndependentOfKeyOrderAndSensitiveToValues) {
  const auto a = nlohmann::json::parse(R"({"model": "scgpt", "seed": 0, "train": {"lr": 0.0001, "epochs": 10}})");
  const auto b = nlohmann::json::parse(R"({"train": {"epochs": 10, "lr": 0.0001}, "seed": 0, "model": "scgpt"})");
  EXPECT_EQ(canonical_json(a), R"({"model":"scgpt","seed":0,"train":{"epochs":10,"lr":0.0001}})");
  EXPECT_EQ(content_id(a), content_id(b));
  auto c = a;
  c["seed"] = 1;
  EXPECT_NE(content_id(a), content_id(c));
  EXPECT_EQ(content_id(a).size(), 64u);
}

}  // namespace sdm
