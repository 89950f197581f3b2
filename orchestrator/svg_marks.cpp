#include "orchestrator/svg_marks.h"

#include <set>

namespace sdm::orchestrator {
namespace {

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/// Where the element opened at `open` (a "<g" tag) is closed: just past its matching "</g>" (or the end).
std::size_t group_end(const std::string& s, std::size_t open) {
  int depth = 0;
  std::size_t i = open;
  while (i < s.size()) {
    const auto lt = s.find('<', i);
    if (lt == std::string::npos) break;
    const auto gt = s.find('>', lt);
    if (gt == std::string::npos) break;
    if (s.compare(lt, 3, "</g") == 0 && (lt + 3 == s.size() || !id_char(s[lt + 3]))) {
      if (--depth == 0) return gt + 1;
    } else if (s.compare(lt, 2, "<g") == 0 &&
               (s[lt + 2] == ' ' || s[lt + 2] == '>' || s[lt + 2] == '\n' || s[lt + 2] == '\t') && s[gt - 1] != '/') {
      ++depth;
    }
    i = gt + 1;
  }
  return s.size();
}

std::string prefix_ids(const std::string& s, const std::string& prefix) {
  // pass 1: the ids the document defines (only references to those are rewritten: "#FFFFFF" is a colour)
  std::set<std::string> ids;
  for (std::size_t i = s.find("id="); i != std::string::npos; i = s.find("id=", i + 3)) {
    if (i == 0 || !(s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\n') || i + 3 >= s.size()) continue;
    const char q = s[i + 3];
    if (q != '"' && q != '\'') continue;
    const auto close = s.find(q, i + 4);
    if (close != std::string::npos) ids.insert(s.substr(i + 4, close - i - 4));
  }
  // pass 2: rewrite definitions and references
  std::string out;
  out.reserve(s.size() + ids.size() * (prefix.size() + 1) * 2);
  for (std::size_t i = 0; i < s.size();) {
    const bool def = s.compare(i, 3, "id=") == 0 && i > 0 &&
                     (s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\n') && i + 3 < s.size() &&
                     (s[i + 3] == '"' || s[i + 3] == '\'');
    if (def) {
      const char q = s[i + 3];
      const auto close = s.find(q, i + 4);
      if (close != std::string::npos && ids.count(s.substr(i + 4, close - i - 4))) {
        out += "id=";
        out += q;
        out += prefix + "-" + s.substr(i + 4, close - i - 4);
        i = close;  // the closing quote is copied next
        continue;
      }
    }
    if (s[i] == '#') {
      std::size_t j = i + 1;
      while (j < s.size() && id_char(s[j])) ++j;
      if (j < s.size() && (s[j] == '"' || s[j] == '\'' || s[j] == ')') && ids.count(s.substr(i + 1, j - i - 1))) {
        out += "#" + prefix + "-" + s.substr(i + 1, j - i - 1);
        i = j;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

}  // namespace

MarkedSvg mark_svg(const std::string& svg, int data_plots, MarkKind kind, const std::string& prefix) {
  MarkedSvg result;
  const auto root = svg.find("<svg");
  std::string s = root == std::string::npos ? svg : svg.substr(root);
  const std::string mark = " class=\"mark\"";
  for (int k = 1; k <= data_plots; ++k) {
    const std::string tag = "<g id=\"gnuplot_plot_" + std::to_string(k) + "\"";
    const auto open = s.find(tag);
    if (open == std::string::npos) continue;  // gnuplot drew nothing for it
    if (kind == MarkKind::kCurves) {
      s.insert(open + 2, mark);
      ++result.marks;
      continue;
    }
    const auto end = group_end(s, open);
    std::string body = s.substr(open, end - open);
    std::string marked;
    std::size_t from = 0;
    for (auto at = body.find("<polygon"); at != std::string::npos; at = body.find("<polygon", at + 8)) {
      marked += body.substr(from, at + 8 - from) + mark;
      from = at + 8;
      ++result.marks;
    }
    marked += body.substr(from);
    s.replace(open, end - open, marked);
  }
  if (prefix.empty()) {
    result.svg = s;
    return result;
  }
  // inlined into a page, gnuplot's <title>s ("Gnuplot", "gnuplot_plot_3") would be hover tooltips: drop them
  for (auto at = s.find("<title>"); at != std::string::npos; at = s.find("<title>", at)) {
    const auto end = s.find("</title>", at);
    if (end == std::string::npos) break;
    s.erase(at, end + 8 - at);
  }
  result.svg = prefix_ids(s, prefix);
  return result;
}

}  // namespace sdm::orchestrator
