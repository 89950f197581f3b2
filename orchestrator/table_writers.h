#pragma once
// The export formats, one registry: machine formats (csv, json) write a Table's machine view at full precision,
// display formats (text, md, latex, html) its display view rounded to `digits` (table_model.h).
#include <string>
#include <vector>

#include "orchestrator/table_model.h"

namespace sdm::orchestrator {

struct RenderOptions {
  int digits = 4;  ///< display formats: decimals (significant digits in `significant` columns)
};

/// text csv md latex json html.
const std::vector<std::string>& export_formats();
/// Throws a ConfigError listing the formats for an unknown one (so a command can check before reading anything).
void check_export_format(const std::string& format);
/// csv and json: lossless, one table per file.
bool is_machine_format(const std::string& format);
/// Throws a ConfigError unless 0 <= digits <= 17.
void check_digits(int digits);

std::string render(const Table& table, const std::string& format, const RenderOptions& options = {});

/// `text` to the file `path` (an IoError naming it when it cannot be written), or to stdout when `path` is empty.
void write_output(const std::string& text, const std::string& path);

/// & < > " as HTML entities (table cells, report text).
std::string html_escape(const std::string& s);
/// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF.
std::string csv_field(const std::string& s);

}  // namespace sdm::orchestrator
