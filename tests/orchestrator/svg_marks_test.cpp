// Marks of a gnuplot SVG (the structure gnuplot 5.4's svg terminal writes) and id prefixes for inlining.
#include "orchestrator/svg_marks.h"

#include <gtest/gtest.h>

#include "orchestrator/figures.h"

namespace sdm::orchestrator {
namespace {

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// two data elements (3 bars + 1 bar, each with its error-bar path), then a keyentry element whose legend box is a
// polygon too: only the data elements' polygons are marks
const char* kSvg = R"(<?xml version="1.0" encoding="utf-8"  standalone="no"?>
<svg viewBox="0 0 600 400" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
<g id="gnuplot_canvas">
<defs><path id='gpPt1' d='M-1,-1 L1,1'/></defs>
	<g id="gnuplot_plot_1" ><title>gnuplot_plot_1</title>
<g fill="none"><g stroke='none'>
		<polygon fill = 'rgb( 27, 158, 119)' points = '1,2 3,4'/>
		<polygon fill = 'rgb( 27, 158, 119)' points = '1,2 3,4'/>
		<polygon fill = '#FFFFFF' points = '1,2 3,4'/>
	</g><path d='M1,1 L2,2'/></g>
	</g>
	<g id="gnuplot_plot_2" ><title>gnuplot_plot_2</title>
<g fill="none"><g stroke='none'><polygon points = '1,2'/></g><use xlink:href='#gpPt1' x='3' y='4'/></g>
	</g>
	<g id="gnuplot_plot_3" ><title>gnuplot_plot_3</title>
<g><text>logreg</text></g><g><polygon points = '5,6'/></g>
	</g>
</g>
</svg>
)";

TEST(SvgMarks, ShapesOfTheDataElementsOnly) {
  const auto m = mark_svg(kSvg, 2, MarkKind::kShapes, "");
  EXPECT_EQ(m.marks, 4U);
  EXPECT_EQ(count(m.svg, "class=\"mark\""), 4U);
  EXPECT_EQ(m.svg.rfind("<svg", 0), 0U) << "the XML prolog is dropped for inlining";
  // nothing drawn for a data element: fewer marks, which the report's test catches
  EXPECT_EQ(mark_svg(kSvg, 0, MarkKind::kShapes, "").marks, 0U);
}

TEST(SvgMarks, CurvesAreWholeElements) {
  const auto m = mark_svg(kSvg, 3, MarkKind::kCurves, "");
  EXPECT_EQ(m.marks, 3U);
  EXPECT_NE(m.svg.find("<g class=\"mark\" id=\"gnuplot_plot_2\""), std::string::npos);
  EXPECT_EQ(mark_svg(kSvg, 5, MarkKind::kCurves, "").marks, 3U) << "only elements gnuplot wrote";
}

TEST(SvgMarks, PrefixesIdsAndTheirReferencesButNotColours) {
  const auto m = mark_svg(kSvg, 1, MarkKind::kShapes, "p-roc");
  EXPECT_NE(m.svg.find("id=\"p-roc-gnuplot_plot_1\""), std::string::npos);
  EXPECT_NE(m.svg.find("id='p-roc-gpPt1'"), std::string::npos);
  EXPECT_NE(m.svg.find("xlink:href='#p-roc-gpPt1'"), std::string::npos);
  EXPECT_NE(m.svg.find("fill = '#FFFFFF'"), std::string::npos);
  EXPECT_EQ(m.svg.find("\"gnuplot_plot_"), std::string::npos);
  EXPECT_EQ(m.svg.find("<title>"), std::string::npos) << "gnuplot's titles would be tooltips in the page";
  EXPECT_NE(mark_svg(kSvg, 1, MarkKind::kShapes, "").svg.find("<title>"), std::string::npos) << "a file keeps them";
}

TEST(GnuplotQuote, LabelsFromTheStoreStayLiteral) {
  EXPECT_EQ(gnuplot_quote("it's"), "'it''s'");
  EXPECT_EQ(gnuplot_quote("a\"b\\n`x`"), "'a\"b\\n`x`'");
  EXPECT_EQ(gnuplot_quote("two\nlines"), "'two lines'");
}

}  // namespace
}  // namespace sdm::orchestrator
