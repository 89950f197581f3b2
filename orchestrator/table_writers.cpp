#include "orchestrator/table_writers.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/text.h"

namespace sdm::orchestrator {
namespace {

// ---- machine formats ----------------------------------------------------------------------------------------

std::string csv_scalar(const Scalar& s) {
  if (const auto* t = std::get_if<std::string>(&s)) return csv_field(*t);
  if (const auto* n = std::get_if<std::int64_t>(&s)) return std::to_string(*n);
  if (const auto* x = std::get_if<double>(&s)) return shortest_text(*x);
  return "";
}

std::string write_csv(const Table& table, const RenderOptions&) {
  const MachineTable m = machine_columns(table);
  std::ostringstream out;
  for (std::size_t i = 0; i < m.names.size(); ++i) out << (i ? "," : "") << csv_field(m.names[i]);
  out << "\n";
  for (const auto& row : m.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << csv_scalar(row[i]);
    out << "\n";
  }
  return out.str();
}

std::string write_json(const Table& table, const RenderOptions&) {
  const MachineTable m = machine_columns(table);
  // ordered: the keys of a row keep the columns' order. nlohmann writes a double as the shortest text that reads
  // back to it, and NaN / Inf as null.
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : m.rows) {
    nlohmann::ordered_json r = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Scalar& s = row[i];
      if (const auto* t = std::get_if<std::string>(&s)) {
        r[m.names[i]] = *t;
      } else if (const auto* n = std::get_if<std::int64_t>(&s)) {
        r[m.names[i]] = *n;
      } else if (const auto* x = std::get_if<double>(&s)) {
        r[m.names[i]] = *x;
      } else {
        r[m.names[i]] = nullptr;
      }
    }
    rows.push_back(std::move(r));
  }
  return rows.dump(1) + "\n";
}

// ---- display formats ----------------------------------------------------------------------------------------

std::string latex_cell(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "\u00b1") == 0) {  // ± (UTF-8)
      out += "$\\pm$";
      ++i;
      continue;
    }
    if (s.compare(i, 2, "\u00b7") == 0) {  // · (UTF-8), the settings' separator
      out += "$\\cdot$";
      ++i;
      continue;
    }
    if (std::string("&%$#_{}").find(s[i]) != std::string::npos) out += '\\';
    out += s[i];
  }
  return out;
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

std::string write_md(const Table& table, const RenderOptions& options) {
  const DisplayTable d = display_cells(table, options.digits);
  std::ostringstream out;
  out << "|";
  for (const auto& h : d.header) out << " " << md_cell(h) << " |";
  out << "\n|";
  for (bool numeric : d.numeric) out << (numeric ? "---:|" : "---|");
  out << "\n";
  for (std::size_t r = 0; r < d.rows.size(); ++r) {
    out << "|";
    for (std::size_t i = 0; i < d.rows[r].size(); ++i) {
      const std::string cell = md_cell(d.rows[r][i]);
      out << " " << (d.bold[r][i] ? "**" + cell + "**" : cell) << " |";
    }
    out << "\n";
  }
  return out.str();
}

std::string write_latex(const Table& table, const RenderOptions& options) {
  // booktabs; number columns right-aligned, the best of each score column in bold
  const DisplayTable d = display_cells(table, options.digits);
  std::ostringstream out;
  std::string align;
  for (bool numeric : d.numeric) align += numeric ? 'r' : 'l';
  out << "\\begin{tabular}{" << align << "}\n\\toprule\n";
  for (std::size_t i = 0; i < d.header.size(); ++i) out << (i ? " & " : "") << latex_cell(d.header[i]);
  out << " \\\\\n\\midrule\n";
  for (std::size_t r = 0; r < d.rows.size(); ++r) {
    for (std::size_t i = 0; i < d.rows[r].size(); ++i) {
      const std::string cell = latex_cell(d.rows[r][i]);
      out << (i ? " & " : "") << (d.bold[r][i] ? "\\textbf{" + cell + "}" : cell);
    }
    out << " \\\\\n";
  }
  out << "\\bottomrule\n\\end{tabular}\n";
  return out.str();
}

std::string write_html(const Table& table, const RenderOptions& options) {
  // a bare <table> (a report or page wraps it); each column's best score in <strong>, as LaTeX bolds it
  const DisplayTable d = display_cells(table, options.digits);
  std::ostringstream out;
  out << "<table class=\"sortable\">\n<thead><tr>";
  for (const auto& h : d.header) out << "<th scope=\"col\">" << html_escape(h) << "</th>";
  out << "</tr></thead>\n<tbody>\n";
  for (std::size_t r = 0; r < d.rows.size(); ++r) {
    out << "<tr>";
    for (std::size_t i = 0; i < d.rows[r].size(); ++i) {
      const std::string cell = html_escape(d.rows[r][i]);
      out << "<td>" << (d.bold[r][i] ? "<strong>" + cell + "</strong>" : cell) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
  return out.str();
}

/// Characters on screen (UTF-8 continuation bytes do not count), for the text table's alignment.
std::size_t display_width(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string write_text(const Table& table, const RenderOptions& options) {
  const DisplayTable d = display_cells(table, options.digits);
  std::vector<std::size_t> width(d.header.size(), 0);
  for (std::size_t i = 0; i < d.header.size(); ++i) width[i] = display_width(d.header[i]);
  for (const auto& row : d.rows) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out << cells[i] << (i + 1 < cells.size() ? std::string(width[i] - display_width(cells[i]) + 2, ' ') : "");
    }
    out << "\n";
  };
  line(d.header);
  for (const auto& row : d.rows) line(row);
  return out.str();
}

struct Format {
  std::string name;
  bool machine;
  std::function<std::string(const Table&, const RenderOptions&)> write;
};

const std::vector<Format>& formats() {
  static const std::vector<Format> kFormats{{"text", false, write_text}, {"csv", true, write_csv},
                                            {"md", false, write_md},     {"latex", false, write_latex},
                                            {"json", true, write_json},  {"html", false, write_html}};
  return kFormats;
}

const Format& format_named(const std::string& name) {
  for (const auto& f : formats()) {
    if (f.name == name) return f;
  }
  throw ConfigError({"<cli>", "--format", name}, "unknown format; " + suggest(name, export_formats()));
}

}  // namespace

const std::vector<std::string>& export_formats() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& f : formats()) names.push_back(f.name);
    return names;
  }();
  return kNames;
}

void check_export_format(const std::string& format) { format_named(format); }

bool is_machine_format(const std::string& format) { return format_named(format).machine; }

void check_digits(int digits) {
  if (digits < 0 || digits > 17) throw ConfigError({"<cli>", "--digits", std::to_string(digits)}, "expected 0 to 17");
}

std::string render(const Table& table, const std::string& format, const RenderOptions& options) {
  check_digits(options.digits);
  return format_named(format).write(table, options);
}

void write_output(const std::string& text, const std::string& path) {
  if (path.empty()) {
    std::cout << text;
    return;
  }
  std::ofstream out(path);
  out << text;
  out.flush();
  if (!out) throw IoError({path, "", ""}, "cannot write");
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace sdm::orchestrator
