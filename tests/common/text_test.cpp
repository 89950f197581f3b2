#include "common/text.h"

#include <gtest/gtest.h>

namespace sdm {

TEST(Text, EditDistance) {
  EXPECT_EQ(edit_distance("preset", "preset"), 0u);
  EXPECT_EQ(edit_distance("presett", "preset"), 1u);
  EXPECT_EQ(edit_distance("lroa", "lora"), 1u);  // transposition
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Text, SuggestsCloseNamesOnly) {
  const std::vector<std::string> keys{"name", "preset", "config", "weights", "vocab"};
  EXPECT_EQ(suggest("presett", keys), "did you mean 'preset'?");
  EXPECT_EQ(suggest("wieghts", keys), "did you mean 'weights'?");
  EXPECT_EQ(suggest("zzzzzz", keys), "expected one of: name, preset, config, weights, vocab");
  EXPECT_FALSE(closest_match("x", keys).has_value());
}

TEST(Text, HumanBytes) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(64.0 * 1024 * 1024), "64.0 MiB");
}

}  // namespace sdm
