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

namespace sdm {
namespace {

TEST(Utf8, AcceptsTextAndRejectsMalformedBytes) {
  EXPECT_TRUE(is_valid_utf8("AAACCTGAGAAACCAT-1"));
  EXPECT_TRUE(is_valid_utf8("c\xC3\xA9llule \xE2\x82\xAC \xF0\x9F\xA7\xAC"));  // é € and a 4-byte emoji
  EXPECT_FALSE(is_valid_utf8("cell\xFF\xFE"));
  EXPECT_EQ(first_invalid_utf8("cell\xFF\xFE"), 4U);
  EXPECT_EQ(first_invalid_utf8("c\xC3\xA9l\xC3"), 4U);  // a sequence cut short at the end
  EXPECT_EQ(first_invalid_utf8("c\xC3\xA9llule"), std::string_view::npos);
  EXPECT_FALSE(is_valid_utf8("\xC3"));              // truncated sequence
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // a UTF-16 surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

}  // namespace
}  // namespace sdm
