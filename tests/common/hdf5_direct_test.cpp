#include "common/hdf5_direct.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <optional>
#include <vector>

#include "common/hdf5.h"
#include "common/hdf5_chunk_index.h"

namespace sdm::h5 {
namespace {

/// How a test dataset is stored.
struct Layout {
  hsize_t chunk = 0;               ///< 0: contiguous
  bool gzip = false;
  hsize_t userblock = 0;
  hsize_t written = 0;             ///< > 0: write only the first elements (the rest of the chunks stay unallocated)
};

Layout stored(hsize_t chunk, bool gzip = false, hsize_t userblock = 0, hsize_t written = 0) {
  return Layout{chunk, gzip, userblock, written};
}

class Hdf5DirectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sdm_hdf5_direct_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// Writes `values` as float32 dataset "x" of a new file in `layout`; returns the path.
  std::string write(const std::vector<float>& values, const Layout& layout) {
    const auto file = (dir_ / "x.h5").string();
    PlistId fcpl(H5Pcreate(H5P_FILE_CREATE));
    if (layout.userblock) H5Pset_userblock(fcpl.get(), layout.userblock);
    FileId f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT));
    const hsize_t n = values.size();
    SpaceId space(H5Screate_simple(1, &n, nullptr));
    PlistId dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (layout.chunk) H5Pset_chunk(dcpl.get(), 1, &layout.chunk);
    if (layout.gzip) H5Pset_deflate(dcpl.get(), 1);
    if (!layout.chunk) H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
    DatasetId ds(H5Dcreate2(f.get(), "x", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    const hsize_t count = layout.written ? layout.written : n, start = 0;
    SpaceId fspace(H5Dget_space(ds.get()));
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
    SpaceId mspace(H5Screate_simple(1, &count, nullptr));
    EXPECT_GE(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, mspace.get(), fspace.get(), H5P_DEFAULT, values.data()), 0);
    return file;
  }

  /// Direct read of [start, start + count) as `mem_type`; nullopt when the reader declined.
  static std::optional<std::vector<float>> direct(const std::string& file, hsize_t start, hsize_t count,
                                                  hid_t mem_type = H5T_NATIVE_FLOAT, unsigned threads = 3) {
    auto f = File::open(file);
    DatasetId ds(H5Dopen2(f.id(), "x", H5P_DEFAULT));
    std::vector<float> out(count, -7.0f);
    if (!read_range_direct(f.id(), ds.get(), mem_type, sizeof(float), start, count, out.data(), file, "/x",
                           {.min_bytes = 0, .threads = threads}))
      return std::nullopt;
    return out;
  }

  std::filesystem::path dir_;
};

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.5f);
  return v;
}

std::vector<float> slice(const std::vector<float>& v, std::size_t start, std::size_t count) {
  return {v.begin() + static_cast<std::ptrdiff_t>(start), v.begin() + static_cast<std::ptrdiff_t>(start + count)};
}

TEST_F(Hdf5DirectTest, ChunkedRangesMatchTheValuesAtEveryAlignment) {
  const auto values = ramp(10'000);
  const auto file = write(values, stored(333));
  for (const auto& [start, count] : std::vector<std::pair<hsize_t, hsize_t>>{
           {0, 10'000}, {0, 333}, {1, 332}, {332, 2}, {4'000, 5'999}, {9'999, 1}, {17, 9'000}}) {
    for (const unsigned threads : {1u, 2u, 5u}) {
      const auto got = direct(file, start, count, H5T_NATIVE_FLOAT, threads);
      ASSERT_TRUE(got) << start << "+" << count;
      EXPECT_EQ(*got, slice(values, start, count)) << start << "+" << count << " threads " << threads;
    }
  }
}

TEST_F(Hdf5DirectTest, ContiguousRangesMatch) {
  const auto values = ramp(5'000);
  const auto file = write(values, stored(0));
  for (const auto& [start, count] : std::vector<std::pair<hsize_t, hsize_t>>{{0, 5'000}, {123, 4'000}, {4'999, 1}}) {
    const auto got = direct(file, start, count);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, slice(values, start, count));
  }
}

TEST_F(Hdf5DirectTest, TheLocationReaderGivesTheSameValuesAsHdf5) {
  // above the default 8 MiB threshold, so read_range_into takes the direct path; compare with a hyperslab read
  // that stays below it
  const auto values = ramp(3'000'000);
  const auto file = write(values, stored(40'000));
  const auto f = File::open(file);
  EXPECT_EQ(f.read_range<float>("x", 5, 2'999'990), slice(values, 5, 2'999'990));
  EXPECT_EQ(f.read_range<float>("x", 1'000'000, 1'000), slice(values, 1'000'000, 1'000));
}

TEST_F(Hdf5DirectTest, DeclinesWhatOnlyHdf5CanRead) {
  const auto values = ramp(4'000);
  EXPECT_FALSE(direct(write(values, stored(100, true)), 0, 4'000)) << "filtered";
  EXPECT_FALSE(direct(write(values, stored(100, false, 0, 1'000)), 0, 4'000)) << "unallocated chunks";
  EXPECT_FALSE(direct(write(values, stored(100, false, 512)), 0, 4'000)) << "user block";
  EXPECT_FALSE(direct(write(values, stored(0, false, 1024)), 0, 4'000)) << "contiguous with a user block";
  EXPECT_FALSE(direct(write(values, stored(100)), 0, 4'000, H5T_NATIVE_INT)) << "type conversion";
  // the written part of a partly written dataset is fine
  EXPECT_EQ(direct(write(values, stored(100, false, 0, 1'000)), 0, 1'000), slice(values, 0, 1'000));
}

/// HDF5's own address of every chunk of "x" (H5Dget_chunk_info_by_coord).
std::vector<ChunkLocation> hdf5_chunks(hid_t ds, hsize_t n, hsize_t chunk) {
  std::vector<ChunkLocation> out;
  for (hsize_t first = 0; first < n; first += chunk) {
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    EXPECT_GE(H5Dget_chunk_info_by_coord(ds, &first, &mask, &addr, &size), 0);
    out.push_back({first, addr, static_cast<std::uint32_t>(size), mask});
  }
  return out;
}

/// The chunk index as read_v1_chunk_index sees it.
std::optional<std::vector<ChunkLocation>> walk(const std::string& file, hsize_t chunk) {
  auto f = File::open(file);
  DatasetId ds(H5Dopen2(f.id(), "x", H5P_DEFAULT));
  const int fd = ::open(file.c_str(), O_RDONLY);
  const auto size = static_cast<std::uint64_t>(std::filesystem::file_size(file));
  auto index = read_v1_chunk_index(fd, size, f.id(), ds.get(), chunk, sizeof(float));
  ::close(fd);
  return index;
}

bool same(const std::vector<ChunkLocation>& a, const std::vector<ChunkLocation>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].first_element != b[i].first_element || a[i].address != b[i].address || a[i].bytes != b[i].bytes ||
        a[i].filter_mask != b[i].filter_mask)
      return false;
  return true;
}

TEST_F(Hdf5DirectTest, ChunkIndexWalkAgreesWithHdf5OnEveryChunk) {
  // one chunk per element: 5,000 chunks, a B-tree several levels deep (and beyond the lookup cap, so the
  // direct read works only through the walk)
  const auto values = ramp(5'000);
  const auto file = write(values, stored(1));
  const auto index = walk(file, 1);
  ASSERT_TRUE(index);
  {
    auto f = File::open(file);
    DatasetId ds(H5Dopen2(f.id(), "x", H5P_DEFAULT));
    EXPECT_TRUE(same(*index, hdf5_chunks(ds.get(), 5'000, 1)));
  }
  EXPECT_EQ(direct(file, 0, 5'000), values);
  EXPECT_EQ(direct(file, 1'234, 2'000), slice(values, 1'234, 2'000));
  EXPECT_FALSE(walk(file, 2)) << "a chunk shape other than the layout's";
}

TEST_F(Hdf5DirectTest, ChunkIndexWalkFollowsHeaderContinuations) {
  // attributes written after the dataset (as anndata writes encoding-type) push messages into continuation blocks
  const auto values = ramp(3'000);
  const auto file = write(values, stored(100));
  {
    FileId f(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    DatasetId ds(H5Dopen2(f.get(), "x", H5P_DEFAULT));
    const std::vector<double> big(200, 1.5);
    const hsize_t n = big.size();
    for (int a = 0; a < 12; ++a) {
      SpaceId space(H5Screate_simple(1, &n, nullptr));
      AttrId attr(H5Acreate2(ds.get(), ("attr" + std::to_string(a)).c_str(), H5T_NATIVE_DOUBLE, space.get(),
                             H5P_DEFAULT, H5P_DEFAULT));
      H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, big.data());
    }
  }
  const auto index = walk(file, 100);
  ASSERT_TRUE(index);
  auto f = File::open(file);
  DatasetId ds(H5Dopen2(f.id(), "x", H5P_DEFAULT));
  EXPECT_TRUE(same(*index, hdf5_chunks(ds.get(), 3'000, 100)));
  EXPECT_EQ(direct(file, 5, 2'990), slice(values, 5, 2'990));
}

TEST_F(Hdf5DirectTest, ChunkIndexWalkDeclinesOtherFormatsAndDamage) {
  const auto values = ramp(5'000);
  {
    // the newest format: a version-2 object header and another chunk index; the direct read then needs one
    // lookup per chunk, and declines beyond the cap
    const auto file = (dir_ / "latest.h5").string();
    PlistId fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    {
      FileId f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
      const hsize_t n = values.size(), chunk = 1;
      SpaceId space(H5Screate_simple(1, &n, nullptr));
      PlistId dcpl(H5Pcreate(H5P_DATASET_CREATE));
      H5Pset_chunk(dcpl.get(), 1, &chunk);
      DatasetId ds(H5Dcreate2(f.get(), "x", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
      H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    }
    EXPECT_FALSE(walk(file, 1));
    EXPECT_FALSE(direct(file, 0, 5'000)) << "5,000 lookups: more than they are worth";
    EXPECT_EQ(direct(file, 0, 1'000), slice(values, 0, 1'000)) << "1,000 lookups";
  }
  {
    // a damaged raw-data B-tree node: the walk gives nothing instead of wrong addresses
    const auto file = write(values, stored(1));
    std::string bytes;
    {
      std::ifstream in(file, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const auto node = bytes.find(std::string("TREE\x01", 5));
    ASSERT_NE(node, std::string::npos);
    bytes[node] = 'X';
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    EXPECT_FALSE(walk(file, 1));
  }
}

TEST(ChunkIndexSeeds, TheFuzzSeedsReachAParse) {
  // tests/fuzz/corpus/chunk_index: a 24-byte query + a file h5py wrote; a seed the walk rejects would start the
  // fuzzer from nothing
  const std::map<std::string, std::size_t> expected{
      {"one_level.bin", 30}, {"deep.bin", 400}, {"continued.bin", 4}, {"partly_written.bin", 3}};
  for (const auto& [name, chunks] : expected) {
    std::ifstream in(std::string(SDM_TEST_DIR) + "/../fuzz/corpus/chunk_index/" + name, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    ASSERT_GT(bytes.size(), 24u) << name;
    ChunkIndexQuery query;
    std::uint32_t chunk = 0, element = 0;
    std::memcpy(&query.header, bytes.data(), 8);
    std::memcpy(&query.elements, bytes.data() + 8, 8);
    std::memcpy(&chunk, bytes.data() + 16, 4);
    std::memcpy(&element, bytes.data() + 20, 4);
    query.chunk_elements = chunk;
    query.element_bytes = element;
    const std::string file = bytes.substr(24);
    const ReadBytes read = [&](std::uint64_t offset, std::uint64_t n) -> std::optional<std::vector<unsigned char>> {
      if (offset > file.size() || n > file.size() - offset) return std::nullopt;
      return std::vector<unsigned char>(file.begin() + static_cast<std::ptrdiff_t>(offset),
                                        file.begin() + static_cast<std::ptrdiff_t>(offset + n));
    };
    const auto index = walk_v1_chunk_index(read, query);
    ASSERT_TRUE(index) << name;
    EXPECT_EQ(index->size(), chunks) << name;
  }
}

TEST_F(Hdf5DirectTest, ThresholdKeepsSmallReadsWithHdf5) {
  const auto file = write(ramp(1'000), stored(100));
  auto f = File::open(file);
  DatasetId ds(H5Dopen2(f.id(), "x", H5P_DEFAULT));
  std::vector<float> out(1'000);
  EXPECT_FALSE(read_range_direct(f.id(), ds.get(), H5T_NATIVE_FLOAT, sizeof(float), 0, 1'000, out.data(), file, "/x"));
}

TEST_F(Hdf5DirectTest, ReadThreadsFollowTheRanksSetting) {
  if (std::getenv("SDM_READ_THREADS")) GTEST_SKIP() << "SDM_READ_THREADS overrides";
  const auto unset = default_read_threads();
  EXPECT_GE(unset, 1u);
  EXPECT_LE(unset, 4u);
  set_read_threads(3);
  EXPECT_EQ(default_read_threads(), 3u);
  set_read_threads(0);
  EXPECT_EQ(default_read_threads(), unset);
}

}  // namespace
}  // namespace sdm::h5
