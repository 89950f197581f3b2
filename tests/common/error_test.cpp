#include "common/error.h"

#include <gtest/gtest.h>

namespace sdm {

TEST(Error, NamesFileFieldAndValue) {
  const DataError e({"data/P01.h5ad", "obs/condition", "maybe"}, "not a sensitive or resistant label");
  EXPECT_STREQ(e.what(), "data/P01.h5ad: obs/condition = 'maybe': not a sensitive or resistant label");
  EXPECT_EQ(e.site().file, "data/P01.h5ad");
  EXPECT_EQ(e.problem(), "not a sensitive or resistant label");
}

TEST(Error, LeavesOutMissingParts) {
  EXPECT_STREQ(IoError({"x.h5", "", ""}, "truncated").what(), "x.h5: truncated");
  EXPECT_STREQ(ConfigError({"", "train.lr", ""}, "must be > 0").what(), "train.lr: must be > 0");
  EXPECT_STREQ(ConfigError({"", "", "-3"}, "negative").what(), "'-3': negative");
  EXPECT_STREQ(Error("plain").what(), "plain");
}

TEST(Error, FamilyIsCatchableAsBase) {
  try {
    throw ClusterError("rank 3 is gone");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "rank 3 is gone");
    return;
  }
  FAIL() << "ClusterError not caught as sdm::Error";
}

}  // namespace sdm
