#include "orchestrator/cd_diagram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

namespace sdm::orchestrator {
namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int digits = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

std::vector<std::pair<std::size_t, std::size_t>> cd_cliques(const std::vector<double>& sorted_ranks, double cd) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (std::isnan(cd)) return out;
  std::size_t reach = 0;
  for (std::size_t i = 0; i < sorted_ranks.size(); ++i) {
    std::size_t j = i;
    while (j + 1 < sorted_ranks.size() && sorted_ranks[j + 1] - sorted_ranks[i] < cd) ++j;
    if (j > i && (out.empty() || j > reach)) out.emplace_back(i, j);
    reach = std::max(reach, j);
  }
  return out;
}

std::string cd_diagram_svg(const std::vector<std::string>& names, const std::vector<double>& mean_ranks, double cd,
                           const std::string& title) {
  const std::size_t k = names.size();
  std::vector<std::size_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return mean_ranks[a] < mean_ranks[b]; });
  std::vector<double> sorted;
  for (auto i : order) sorted.push_back(mean_ranks[i]);
  const auto cliques = cd_cliques(sorted, cd);

  const double width = 760, left = 190, right = width - 190, axis_y = 70;
  const double lo = 1, hi = std::max<double>(2, static_cast<double>(k));
  const auto x_of = [&](double rank) { return left + (rank - lo) / (hi - lo) * (right - left); };
  const std::size_t left_count = (k + 1) / 2;
  const double row = 22, clique_gap = 9;
  const double labels_top = axis_y + 28 + clique_gap * static_cast<double>(cliques.size());
  const double height = labels_top + row * static_cast<double>(std::max(left_count, k - left_count)) + 20;

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"cd-diagram\" width=\"" << fixed(width, 0) << "\" height=\""
    << fixed(height, 0) << "\" viewBox=\"0 0 " << fixed(width, 0) << " " << fixed(height, 0)
    << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
  s << "<title>" << xml_escape(title) << "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text class=\"title\" x=\"" << fixed(width / 2) << "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">"
    << xml_escape(title) << "</text>\n";
  s << "<g class=\"axis\" stroke=\"black\">\n<line x1=\"" << fixed(x_of(lo)) << "\" y1=\"" << fixed(axis_y) << "\" x2=\""
    << fixed(x_of(hi)) << "\" y2=\"" << fixed(axis_y) << "\"/>\n";
  for (int r = 1; r <= static_cast<int>(hi); ++r) {
    s << "<line x1=\"" << fixed(x_of(r)) << "\" y1=\"" << fixed(axis_y - 6) << "\" x2=\"" << fixed(x_of(r)) << "\" y2=\""
      << fixed(axis_y) << "\"/>\n<text x=\"" << fixed(x_of(r)) << "\" y=\"" << fixed(axis_y - 10)
      << "\" text-anchor=\"middle\" stroke=\"none\">" << r << "</text>\n";
  }
  s << "</g>\n";
  if (!std::isnan(cd)) {
    s << "<g class=\"cd\" stroke=\"black\"><line x1=\"" << fixed(x_of(lo)) << "\" y1=\"32\" x2=\"" << fixed(x_of(lo + cd))
      << "\" y2=\"32\" stroke-width=\"2\"/><text x=\"" << fixed(x_of(lo + cd) + 6) << "\" y=\"36\" stroke=\"none\">CD = "
      << fixed(cd, 3) << "</text></g>\n";
  }
  for (std::size_t c = 0; c < cliques.size(); ++c) {
    const double y = axis_y + 14 + clique_gap * static_cast<double>(c);
    s << "<line class=\"clique\" x1=\"" << fixed(x_of(sorted[cliques[c].first]) - 4) << "\" y1=\"" << fixed(y) << "\" x2=\""
      << fixed(x_of(sorted[cliques[c].second]) + 4) << "\" y2=\"" << fixed(y) << "\" stroke=\"black\" stroke-width=\"4\"/>\n";
  }
  for (std::size_t p = 0; p < k; ++p) {
    const bool on_left = p < left_count;
    const std::size_t slot = on_left ? p : k - 1 - p;
    const double y = labels_top + row * static_cast<double>(slot);
    const double x = x_of(sorted[p]);
    const double end = on_left ? left - 10 : right + 10;
    const std::string& name = names[order[p]];
    s << "<g class=\"model mark\" data-name=\"" << xml_escape(name) << "\" data-rank=\"" << fixed(sorted[p], 3)
      << "\"><polyline fill=\"none\" stroke=\"black\" points=\"" << fixed(x) << "," << fixed(axis_y) << " " << fixed(x) << ","
      << fixed(y) << " " << fixed(end) << "," << fixed(y) << "\"/><text x=\"" << fixed(on_left ? end - 4 : end + 4)
      << "\" y=\"" << fixed(y + 4) << "\" text-anchor=\"" << (on_left ? "end" : "start") << "\">" << xml_escape(name) << " ("
      << fixed(sorted[p], 2) << ")</text></g>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace sdm::orchestrator
