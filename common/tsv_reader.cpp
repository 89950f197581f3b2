// The scDrugMap text layout: tab-separated, optionally gzipped. Header: Cell_barcode, Condition, then one
// column per gene; each row: barcode, condition label, expression values.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/dataset_io.h"
#include "common/error.h"

namespace sdm {
namespace {

/// Reads lines of any length from a plain or gzipped file (zlib reads both transparently).
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw IoError({path, "", ""}, std::filesystem::exists(path) ? "cannot open" : "no such file");
    gzbuffer(file_, 1 << 18);
  }
  ~LineReader() {
    if (file_) gzclose(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool next(std::string& line) {
    line.clear();
    char buf[1 << 16];
    while (gzgets(file_, buf, sizeof buf)) {
      line += buf;
      if (!line.empty() && line.back() == '\n') {
        line.pop_back();
        if (!line.empty() && line.back() == '\r') line.pop_back();
        ++number_;
        return true;
      }
    }
    int err = 0;
    const char* msg = gzerror(file_, &err);
    if (err != Z_OK && err != Z_STREAM_END) throw IoError({path_, "line " + std::to_string(number_ + 1), ""}, std::string("read error: ") + msg);
    if (!line.empty()) {
      ++number_;
      return true;
    }
    return false;
  }
  std::int64_t line_number() const { return number_; }

 private:
  std::string path_;
  gzFile file_;
  std::int64_t number_ = 0;
};

std::vector<std::string_view> split_tabs(const std::string& line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t tab = line.find('\t', start);
    out.emplace_back(line.data() + start, (tab == std::string::npos ? line.size() : tab) - start);
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return out;
}

struct TsvHeader {
  std::vector<std::string> genes;
};

TsvHeader read_header(LineReader& in, const std::string& path) {
  std::string line;
  if (!in.next(line)) throw DataError({path, "header", ""}, "empty file");
  auto fields = split_tabs(line);
  if (fields.size() < 3)
    throw DataError({path, "header", line.substr(0, 80)},
                    "expected tab-separated Cell_barcode, Condition and at least one gene column");
  TsvHeader h;
  for (std::size_t i = 2; i < fields.size(); ++i) h.genes.emplace_back(fields[i]);
  return h;
}

}  // namespace

CellMatrix read_tsv(const std::string& path, const ReadOptions& options) {
  LineReader in(path);
  const TsvHeader header = read_header(in, path);
  CellMatrix out;
  out.source = path;
  out.var.index = header.genes;
  out.X.cols = static_cast<std::int64_t>(header.genes.size());
  Column condition{"condition", ColumnType::kString, {}, {}, {}, {}, {}, false};

  std::string line;
  std::int64_t row = -1;
  while (in.next(line)) {
    if (line.empty()) continue;
    ++row;
    if (row < options.row_begin) continue;
    if (options.row_end >= 0 && row >= options.row_end) break;
    const auto fields = split_tabs(line);
    if (fields.size() != header.genes.size() + 2)
      throw DataError({path, "line " + std::to_string(in.line_number()), ""},
                      "has " + std::to_string(fields.size()) + " fields; the header has " + std::to_string(header.genes.size() + 2));
    out.obs.index.emplace_back(fields[0]);
    condition.strings.emplace_back(fields[1]);
    for (std::size_t g = 0; g < header.genes.size(); ++g) {
      const std::string_view f = fields[g + 2];
      if (f == "0") continue;  // the common case in sparse data, without strtof
      std::string text(f);
      char* end = nullptr;
      errno = 0;
      const float v = std::strtof(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE)
        throw DataError({path, "line " + std::to_string(in.line_number()) + ", gene " + header.genes[g], text},
                        "not a number");
      if (v != 0.0f) {
        out.X.indices.push_back(static_cast<std::int32_t>(g));
        out.X.data.push_back(v);
      }
    }
    out.X.indptr.push_back(static_cast<std::int64_t>(out.X.data.size()));
  }
  out.X.rows = static_cast<std::int64_t>(out.obs.index.size());
  // Condition labels become a categorical (sorted categories, as pandas would make them).
  Column cat{"condition", ColumnType::kCategorical, {}, {}, {}, {}, {}, false};
  std::map<std::string, std::int64_t> codes;
  for (const auto& s : condition.strings) codes.emplace(s, 0);
  for (auto& [label, code] : codes) {
    code = static_cast<std::int64_t>(cat.categories.size());
    cat.categories.push_back(label);
  }
  for (const auto& s : condition.strings) cat.ints.push_back(codes[s]);
  out.obs.columns.push_back(std::move(cat));
  return out;
}

FileInfo inspect_tsv(const std::string& path) {
  const CellMatrix m = read_tsv(path, {});
  FileInfo info;
  info.format = "tsv";
  info.n_obs = m.n_obs();
  info.n_vars = m.n_vars();
  info.x_encoding = "dense";
  info.x_dtype = "float32";
  info.nnz = m.X.nnz();
  info.obs_columns = describe_columns(m.obs);
  return info;
}

}  // namespace sdm
