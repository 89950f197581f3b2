#pragma once
// Small string helpers shared by every "unknown name" message (YAML keys, registries, CLI values).
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sdm {

/// Levenshtein distance (insert, delete, substitute, and adjacent transposition cost 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` if it is plausibly a typo of it (distance ≤ max(1, len/3)), else none.
std::optional<std::string> closest_match(std::string_view word, std::span<const std::string> candidates);

/// "did you mean 'x'?" or "expected one of: a, b, c".
std::string suggest(std::string_view word, std::span<const std::string> candidates);

/// Joins with a separator: join({"a","b"}, ", ") == "a, b".
std::string join(std::span<const std::string> parts, std::string_view sep);

/// printf-free human sizes: 1536 -> "1.5 KiB".
std::string human_bytes(double bytes);

/// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view text);
/// Offset of the first byte that starts an ill-formed sequence, or npos when `text` is well-formed UTF-8.
std::size_t first_invalid_utf8(std::string_view text);

}  // namespace sdm
