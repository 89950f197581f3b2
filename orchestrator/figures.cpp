#include "orchestrator/figures.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/hdf5.h"
#include "common/metrics.h"
#include "common/text.h"
#include "orchestrator/curves.h"
#include "orchestrator/gnuplot.h"
#include "orchestrator/results_table.h"
#include "orchestrator/store_files.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;

FigureInputs read_figure_inputs(const std::string& store, const std::string& catalog_override) {
  FigureInputs in;
  in.cells = read_store_cells(store);
  in.breakdown = read_store_breakdown(store);
  try {
    in.catalog = store_catalog(store, catalog_override);
    if (!in.catalog) in.no_catalog = "the sweep used no dataset catalog (bring-your-own files); pass --catalog";
  } catch (const IoError& e) {
    if (!catalog_override.empty()) throw;
    in.no_catalog = e.what();
    spdlog::warn("{}", e.what());
  }
  h5::init();
  const h5::File file = h5::File::open(store);
  if (file.exists("predictions/cell_id")) {
    in.prediction_cell = file.read_strings("predictions/cell_id");
    in.y_true = file.read<std::int8_t>("predictions/y_true");
    in.y_score = file.read<double>("predictions/y_score");
  }
  return in;
}

const std::vector<std::string>& figure_formats() {
  static const std::vector<std::string> kFormats{"svg", "pdf"};
  return kFormats;
}

std::vector<std::string> parse_figure_formats(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string f; std::getline(in, f, ',');) {
    if (f.empty()) continue;
    if (std::find(figure_formats().begin(), figure_formats().end(), f) == figure_formats().end()) {
      throw ConfigError({"<cli>", "--format", f}, "unknown figure format; " + suggest(f, figure_formats()));
    }
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  if (out.empty()) throw ConfigError({"<cli>", "--format", list}, "name at least one of: svg, pdf");
  return out;
}

std::string gnuplot_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out + "'";
}

namespace {

// Colour-blind-safe qualitative colours (Okabe-Ito, then Tableau's), cycled for more series.
const std::vector<std::string> kColours{"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
                                        "#F0E442", "#000000", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF"};

std::string colour(std::size_t i) { return kColours[i % kColours.size()]; }

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// "set xtics ('a' 0, 'b' 1)": axis labels from the store (dataset ids, model names) stay literal strings.
std::string tics(const std::string& axis, const std::vector<std::string>& labels, const std::string& extra) {
  std::string out = "set " + axis + "tics (";
  for (std::size_t i = 0; i < labels.size(); ++i)
    out += (i ? ", " : "") + gnuplot_quote(labels[i]) + " " + std::to_string(i);
  return out + ")" + extra + "\n";
}

/// Names series by model, adding the setting only when the figure's observations have more than one.
struct SeriesNamer {
  bool with_setting = false;
  explicit SeriesNamer(const std::vector<Observation>& obs) {
    std::set<std::string> settings;
    for (const auto& o : obs) settings.insert(setting_label(o.fields));
    with_setting = settings.size() > 1;
  }
  std::string operator()(const Observation& o) const {
    return with_setting ? model_label(o.fields) + " \u00b7 " + setting_label(o.fields) : model_label(o.fields);
  }
};

Figure skipped(const std::string& name, const std::string& title, const std::string& why) {
  Figure f;
  f.name = name;
  f.title = title;
  f.skipped = why;
  return f;
}

/// Score-axis lower end: 0, or below it for a metric that goes negative (MCC).
double axis_floor(double lowest) { return lowest < 0 ? std::floor(lowest * 10) / 10 : 0.0; }

/// Clustered bars with s.e.m. error bars: one block (and plot element) per series with at least one bar, then the
/// error bars, then a keyentry per series for the legend, so the first elements hold nothing but bars.
Figure bar_figure(const std::string& name, const std::string& title, const std::string& metric,
                  const std::vector<std::string>& groups, const std::vector<std::string>& series,
                  const std::map<std::pair<std::string, std::string>, Aggregate>& values) {
  Figure f;
  f.name = name;
  f.title = title;
  const double slot = 0.8 / static_cast<double>(series.size());
  std::string plots, errors, keys;
  double lowest = 0;
  int block = 0;
  for (std::size_t s = 0; s < series.size(); ++s) {
    std::string rows;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const auto it = values.find({series[s], groups[g]});
      if (it == values.end() || it->second.n == 0 || std::isnan(it->second.mean)) continue;
      const Aggregate& a = it->second;
      const double sem = std::isnan(a.sem) ? 0.0 : a.sem;
      const double x = static_cast<double>(g) - 0.4 + slot * (static_cast<double>(s) + 0.5);
      rows += num(x) + "\t" + num(a.mean) + "\t" + num(sem) + "\t" + std::to_string(a.n) + "\n";
      lowest = std::min(lowest, a.mean - sem);
      ++f.expected_marks;
    }
    if (rows.empty()) continue;
    f.data += (block ? "\n\n" : "") + std::string("# ") + series[s] + "\n" + rows;
    plots += (block ? ", \\\n     " : "") + gnuplot_quote(name + ".dat") + " index " + std::to_string(block) +
             " using 1:2 with boxes lc rgb " + gnuplot_quote(colour(s)) + " notitle";
    // error bars as dark grey segments over every bar (in the bar's own colour they vanish inside it; gnuplot's
    // errorbar styles draw a point marker too), as elements after the bars so the bars' elements hold only bars
    errors += ", \\\n     " + gnuplot_quote(name + ".dat") + " index " + std::to_string(block) +
              " using 1:($2-$3):(0):(2*$3) with vectors nohead lw 1.5 lc rgb '#333333' notitle";
    keys += ", \\\n     keyentry with boxes lc rgb " + gnuplot_quote(colour(s)) + " title " + gnuplot_quote(series[s]);
    ++block;
  }
  f.data_plots = block;
  f.marks = MarkKind::kShapes;
  f.width = std::max(640, 260 + static_cast<int>(groups.size() * std::max<std::size_t>(series.size(), 2) * 22));
  f.height = 480;
  std::ostringstream b;
  b << "set title " << gnuplot_quote(title) << "\n"
    << "set style fill solid 1.0 noborder\n"
    << "set boxwidth " << num(slot * 0.9) << " absolute\n"
    << "set xrange [-0.6:" << num(static_cast<double>(groups.size()) - 0.4) << "]\n"
    << "set yrange [" << num(axis_floor(lowest)) << ":1.05]\n"
    << tics("x", groups, " rotate by 30 right") << "set ylabel " << gnuplot_quote(metric + " (mean \u00b1 s.e.m.)")
    << "\n"
    << "set grid ytics lc rgb '#dddddd'\n"
    << "set key outside right top\n"
    << "set bmargin 8\n"
    << "plot " << plots << errors << keys << "\n";
  f.body = b.str();
  return f;
}

Figure heatmap(const FigureInputs& in, const std::string& metric) {
  const std::string title_base = metric + " of each model on each test dataset";
  auto obs = observations(in.cells, in.breakdown, in.catalog ? &*in.catalog : nullptr, {"dataset"});
  const bool cross =
      std::any_of(obs.begin(), obs.end(), [](const Observation& o) { return o.fields.at("protocol") == "cross-data"; });
  if (cross) {
    obs.erase(std::remove_if(obs.begin(), obs.end(),
                             [](const Observation& o) { return o.fields.at("protocol") != "cross-data"; }),
              obs.end());
  }
  if (obs.empty()) return skipped("heatmap", title_base, "no done cells");
  const SeriesNamer namer(obs);
  std::map<std::pair<std::string, std::string>, std::vector<double>> values;
  std::set<std::string> row_set, col_set;
  for (const auto& o : obs) {
    const std::string row = namer(o), col = o.fields.at("dataset");
    row_set.insert(row);
    col_set.insert(col);
    values[{row, col}].push_back(o.metrics.at(metric));
  }
  const std::vector<std::string> rows(row_set.begin(), row_set.end()), cols(col_set.begin(), col_set.end());
  Figure f;
  f.name = "heatmap";
  f.title = title_base + (cross ? " (cross-data: held-out datasets; mean over seeds)"
                                : " (pooled cells' per-dataset breakdown; mean over folds and seeds)");
  double lowest = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t c = 0; c < cols.size(); ++c) {
      const auto it = values.find({rows[r], cols[c]});
      if (it == values.end()) continue;
      const Aggregate a = aggregate(it->second);
      if (a.n == 0) continue;  // NaN everywhere: no cell drawn rather than a misleading colour
      f.data += std::to_string(c) + "\t" + std::to_string(r) + "\t" + num(a.mean) + "\n";
      lowest = std::min(lowest, a.mean);
      ++f.expected_marks;
    }
  }
  if (f.expected_marks == 0) return skipped("heatmap", f.title, "every " + metric + " value is NaN");
  const double lo = axis_floor(lowest);
  f.data_plots = 1;
  f.marks = MarkKind::kShapes;
  f.width = std::max(520, 260 + 42 * static_cast<int>(cols.size()));
  f.height = std::max(320, 200 + 30 * static_cast<int>(rows.size()));
  std::ostringstream b;
  b << "set title " << gnuplot_quote(f.title) << "\n"
    << "unset key\n"
    << "set xrange [-0.5:" << num(static_cast<double>(cols.size()) - 0.5) << "]\n"
    << "set yrange [" << num(static_cast<double>(rows.size()) - 0.5) << ":-0.5]\n"
    << tics("x", cols, " rotate by 45 right") << tics("y", rows, "") << "set tics scale 0\n"
    << "set cbrange [" << num(lo) << ":1]\n"
    << "set cblabel " << gnuplot_quote(metric) << "\n"
    << "set palette defined (0 '#fff7bc', 0.5 '#fd8d3c', 1 '#7f0000')\n"
    << "set style fill solid 1.0 noborder\n"
    << "plot " << gnuplot_quote("heatmap.dat") << " using 1:2:(0.5):(0.5):3 with boxxyerror lc palette notitle, \\\n"
    << "     " << gnuplot_quote("heatmap.dat") << " using 1:2:(sprintf('%.2f', $3)):($3 > " << num(lo + (1 - lo) * 0.6)
    << " ? 0xffffff : 0x000000) with labels tc rgb variable font ',8' notitle\n";
  f.body = b.str();
  return f;
}

Figure subgroup_bars(const FigureInputs& in, const std::string& metric, const std::string& field,
                     const std::string& what) {
  const std::string name = "bars-" + field, title = metric + " by " + what;
  if (!in.catalog) return skipped(name, title, in.no_catalog);
  const auto obs = observations(in.cells, in.breakdown, &*in.catalog, {field});
  if (obs.empty()) return skipped(name, title, "no done cells");
  const SeriesNamer namer(obs);
  std::map<std::pair<std::string, std::string>, std::vector<double>> values;
  std::set<std::string> groups, series;
  for (const auto& o : obs) {
    series.insert(namer(o));
    groups.insert(o.fields.at(field));
    values[{namer(o), o.fields.at(field)}].push_back(o.metrics.at(metric));
  }
  std::map<std::pair<std::string, std::string>, Aggregate> agg;
  for (const auto& [k, v] : values) agg[k] = aggregate(v);
  Figure f = bar_figure(name, title + " (mean \u00b1 s.e.m. over folds, seeds and held-out datasets)", metric,
                        {groups.begin(), groups.end()}, {series.begin(), series.end()}, agg);
  if (f.expected_marks == 0) return skipped(name, title, "every " + metric + " value is NaN");
  return f;
}

Figure leakage(const FigureInputs& in, const std::string& metric) {
  const std::string title = metric + ": cell split vs sample split (the leakage gap)";
  const auto obs = observations(in.cells, in.breakdown, nullptr, {});
  std::map<std::pair<std::string, std::string>, std::vector<double>> values;  // (split, configuration)
  std::map<std::string, std::set<std::string>> splits_of;
  for (const auto& o : obs) {
    const std::string split = o.fields.at("split");
    if (split != "cell" && split != "sample") continue;
    const std::string config =
        model_label(o.fields) + " \u00b7 " + o.fields.at("strategy") + " \u00b7 " + o.fields.at("protocol");
    splits_of[config].insert(split);
    values[{split + " split", config}].push_back(o.metrics.at(metric));
  }
  std::vector<std::string> configs;
  for (const auto& [config, splits] : splits_of) {
    if (splits.size() == 2) configs.push_back(config);
  }
  if (configs.empty()) return skipped("leakage", title, "no configuration ran both a cell split and a sample split");
  std::map<std::pair<std::string, std::string>, Aggregate> agg;
  for (const auto& [k, v] : values) agg[k] = aggregate(v);
  Figure f = bar_figure("leakage", title, metric, configs, {"cell split", "sample split"}, agg);
  if (f.expected_marks == 0) return skipped("leakage", title, "every " + metric + " value is NaN");
  return f;
}

Figure curves(const FigureInputs& in, bool roc) {
  const std::string name = roc ? "roc" : "pr";
  const std::string title = roc ? "ROC curves (predictions pooled over each configuration's cells)"
                                : "Precision-recall curves (predictions pooled over each configuration's cells)";
  if (in.prediction_cell.empty()) return skipped(name, title, "the store has no predictions");
  const auto obs = observations(in.cells, in.breakdown, nullptr, {});
  const SeriesNamer namer(obs);
  std::map<std::string, std::string> series_of;  // cell id -> series
  for (const auto& o : obs) series_of[o.cell_id] = namer(o);
  std::map<std::string, std::pair<std::vector<std::int8_t>, std::vector<double>>> by_series;
  for (std::size_t i = 0; i < in.prediction_cell.size() && i < in.y_true.size() && i < in.y_score.size(); ++i) {
    const auto it = series_of.find(in.prediction_cell[i]);
    if (it == series_of.end()) continue;
    by_series[it->second].first.push_back(in.y_true[i]);
    by_series[it->second].second.push_back(in.y_score[i]);
  }
  Figure f;
  f.name = name;
  f.title = title;
  f.marks = MarkKind::kCurves;
  std::string plots;
  std::size_t s = 0;
  for (const auto& [label, ys] : by_series) {
    const auto points = roc ? roc_curve(ys.first, ys.second) : pr_curve(ys.first, ys.second);
    if (points.empty()) {
      spdlog::info("{}: {} has predictions of one class only; no curve", name, label);
      ++s;
      continue;
    }
    f.data += (f.data_plots ? "\n\n" : "") + std::string("# ") + label + "\n";
    for (const auto& p : thin_curve(points, 0.002)) f.data += num(p.x) + "\t" + num(p.y) + "\n";
    const double area = roc ? roc_auc(ys.first, ys.second) : average_precision(ys.first, ys.second);
    char legend[64];
    std::snprintf(legend, sizeof legend, roc ? " (AUC %.3f)" : " (AP %.3f)", area);
    plots += (f.data_plots ? ", \\\n     " : "") + gnuplot_quote(name + ".dat") + " index " +
             std::to_string(f.data_plots) + " using 1:2 with lines lw 2 lc rgb " + gnuplot_quote(colour(s)) +
             " title " + gnuplot_quote(label + legend);
    ++f.data_plots;
    ++f.expected_marks;
    ++s;
  }
  if (f.data_plots == 0) return skipped(name, title, "no configuration has predictions of both classes");
  f.width = 720;
  f.height = 560;
  std::ostringstream b;
  b << "set title " << gnuplot_quote(title) << "\n"
    << "set xrange [0:1]\nset yrange [0:1.02]\n"
    << "set xlabel " << gnuplot_quote(roc ? "false positive rate" : "recall (sensitive)") << "\n"
    << "set ylabel " << gnuplot_quote(roc ? "true positive rate" : "precision (sensitive)") << "\n"
    << "set grid lc rgb '#dddddd'\n"
    << "set key " << (roc ? "bottom right" : "bottom left") << " font ',9'\n"
    << "plot " << plots;
  if (roc) b << ", \\\n     x with lines dt 2 lc rgb '#999999' notitle";
  b << "\n";
  f.body = b.str();
  return f;
}

}  // namespace

std::vector<Figure> build_figures(const FigureInputs& in, const std::string& metric) {
  std::vector<Figure> figures;
  figures.push_back(heatmap(in, metric));
  figures.push_back(subgroup_bars(in, metric, "tissue", "tissue"));
  figures.push_back(subgroup_bars(in, metric, "therapy", "therapy"));
  figures.push_back(subgroup_bars(in, metric, "cancer_type", "cancer type"));
  figures.push_back(curves(in, true));
  figures.push_back(curves(in, false));
  figures.push_back(leakage(in, metric));
  return figures;
}

std::string figure_script(const Figure& f) {
  std::ostringstream s;
  s << "# " << f.title << "\n"
    << "# Written by `sdm plot`. Rerun in this directory: gnuplot " << f.name << ".gp (SVG), or\n"
    << "# gnuplot -e \"fmt='pdf'\" " << f.name << ".gp (PDF). Data: " << f.name << ".dat (tab-separated).\n"
    << "if (!exists('fmt')) fmt = 'svg'\n"
    << "set encoding utf8\n"
    << "if (fmt eq 'pdf') {\n"
    << "  set terminal pdfcairo size " << num(f.width / 100.0) << "in," << num(f.height / 100.0)
    << "in noenhanced font 'DejaVu Sans,8'\n"
    << "  set output " << gnuplot_quote(f.name + ".pdf") << "\n"
    << "} else {\n"
    // no `mouse` or `standalone`: those reference gnuplot's JavaScript; the figure must be self-contained
    << "  set terminal svg size " << f.width << "," << f.height
    << " dynamic noenhanced font 'DejaVu Sans,10' background '#ffffff'\n"
    << "  set output " << gnuplot_quote(f.name + ".svg") << "\n"
    << "}\n"
    << "set datafile separator tab\n"
    << f.body << "unset output\n";
  return s.str();
}

DrawnFigure draw_figure(const Figure& f, const std::string& gnuplot, const std::string& dir,
                        const std::vector<std::string>& formats) {
  DrawnFigure drawn;
  auto write = [&](const std::string& file, const std::string& text) {
    std::ofstream out(fs::path(dir) / file);
    out << text;
    if (!out) throw IoError({(fs::path(dir) / file).string(), "", ""}, "cannot write");
    drawn.files.push_back(file);
  };
  write(f.name + ".dat", f.data);
  write(f.name + ".gp", figure_script(f));
  for (const auto& format : formats) {
    const std::string warnings = run_gnuplot(gnuplot, dir, f.name + ".gp", format);
    if (!warnings.empty()) spdlog::debug("gnuplot {} ({}): {}", f.name, format, warnings);
    const std::string out = f.name + "." + format;
    std::error_code ec;
    if (!fs::is_regular_file(fs::path(dir) / out, ec) || fs::file_size(fs::path(dir) / out, ec) == 0) {
      throw IoError({(fs::path(dir) / out).string(), "", ""}, "gnuplot wrote no figure: " + warnings);
    }
    drawn.files.push_back(out);
    if (format == "svg") drawn.svg = read_text_file((fs::path(dir) / out).string());
  }
  return drawn;
}

}  // namespace sdm::orchestrator
