#include "common/hdf5.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/hash.h"

namespace sdm::h5 {
namespace {

class Hdf5Test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sdm_hdf5_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

void write_sample(const std::string& file) {
  auto f = File::create(file);
  f.write<double>("cells/f1", std::vector<double>{0.5, 0.25, -1.0});
  f.write<std::int64_t>("cells/seed", std::vector<std::int64_t>{0, 1, 2});
  f.write_strings("cells/model", {"logreg", "mlp", "scgpt"});
  f.set_attr("sdm_schema_version", std::int64_t{1});
  f.set_attr("sdm_version", std::string("0.1.0"));
  f.open_group("cells").set_attr("rows", 3.0);
}

}  // namespace

TEST_F(Hdf5Test, RoundTripsNumbersStringsAndAttributes) {
  write_sample(path("a.h5"));
  auto f = File::open(path("a.h5"));
  EXPECT_EQ(f.read<double>("cells/f1"), (std::vector<double>{0.5, 0.25, -1.0}));
  EXPECT_EQ(f.read<float>("cells/f1"), (std::vector<float>{0.5f, 0.25f, -1.0f}));  // converted by HDF5
  EXPECT_EQ(f.read<std::int64_t>("cells/seed"), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(f.read_strings("cells/model"), (std::vector<std::string>{"logreg", "mlp", "scgpt"}));
  EXPECT_EQ(f.shape("cells/f1"), (std::vector<hsize_t>{3}));
  EXPECT_EQ(f.attr_int("sdm_schema_version"), 1);
  EXPECT_EQ(f.attr_string("sdm_version"), "0.1.0");
  EXPECT_DOUBLE_EQ(f.open_group("cells").attr_double("rows"), 3.0);
  EXPECT_TRUE(f.exists("cells/f1"));
  EXPECT_FALSE(f.exists("cells/auroc"));
  EXPECT_FALSE(f.exists("nope/deeper/still"));
}

TEST_F(Hdf5Test, IdenticalContentGivesIdenticalBytes) {
  write_sample(path("a.h5"));
  write_sample(path("b.h5"));
  EXPECT_EQ(sha256_file_hex(path("a.h5")), sha256_file_hex(path("b.h5")));
}

TEST_F(Hdf5Test, MissingTruncatedAndForeignFilesGiveOneClearError) {
  try {
    File::open(path("missing.h5"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), path("missing.h5") + ": no such file");
  }
  std::ofstream(path("text.h5")) << "this is not hdf5\n";
  try {
    File::open(path("text.h5"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos) << e.what();
  }
  write_sample(path("full.h5"));
  std::filesystem::resize_file(path("full.h5"), std::filesystem::file_size(path("full.h5")) / 2);
  try {
    auto f = File::open(path("full.h5"));
    f.read<double>("cells/f1");
    FAIL() << "truncated file read without error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path("full.h5")), std::string::npos) << e.what();
  }
}

TEST_F(Hdf5Test, MissingDatasetNamesTheObject) {
  write_sample(path("a.h5"));
  auto f = File::open(path("a.h5"));
  try {
    f.read<double>("cells/auroc");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path("a.h5") + ": /cells/auroc: cannot open dataset"), std::string::npos)
        << e.what();
  }
}

// An independent reader (h5py) sees exactly what we wrote, strings included.
TEST_F(Hdf5Test, PythonH5pyReadsOurFile) {
  write_sample(path("a.h5"));
  const std::string script = path("read.py");
  std::ofstream(script) << "import h5py, sys\n"
                           "f = h5py.File(sys.argv[1], 'r')\n"
                           "print(list(f['cells/f1'][:]), [s.decode() for s in f['cells/model'][:]],\n"
                           "      int(f.attrs['sdm_schema_version']), f.attrs['sdm_version'])\n";
  const std::string out_file = path("out.txt");
  const std::string cmd = std::string(SDM_PYTHON) + " " + script + " " + path("a.h5") + " > " + out_file + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "python3/h5py failed; see " << out_file;
  std::ifstream in(out_file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "[0.5, 0.25, -1.0] ['logreg', 'mlp', 'scgpt'] 1 0.1.0");
}

}  // namespace sdm::h5
