#include "common/hdf5_direct.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>
#include <optional>
#include <vector>

#include "common/hdf5.h"

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
  EXPECT_FALSE(direct(write(ramp(5'000), stored(1)), 0, 5'000)) << "more chunks than lookups are worth";
  // the written part of a partly written dataset is fine
  EXPECT_EQ(direct(write(values, stored(100, false, 0, 1'000)), 0, 1'000), slice(values, 0, 1'000));
}

TEST_F(Hdf5DirectTest, ThresholdKeepsSmallReadsWithHdf5) {
  const auto file = write(ramp(1'000), stored(100));
  auto f = File::open(file);
  DatasetId ds(H5Dopen2(f.id(), "x", H5P_DEFAULT));
  std::vector<float> out(1'000);
  EXPECT_FALSE(read_range_direct(f.id(), ds.get(), H5T_NATIVE_FLOAT, sizeof(float), 0, 1'000, out.data(), file, "/x"));
}

TEST_F(Hdf5DirectTest, ReadThreadsDefaultIsBounded) {
  const auto threads = default_read_threads();
  EXPECT_GE(threads, 1u);
  EXPECT_LE(threads, 256u);
}

}  // namespace
}  // namespace sdm::h5
