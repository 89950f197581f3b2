#pragma once
// Demšar's critical-difference diagram as a standalone SVG: the models on an axis of mean rank (1 = best on the
// left), a bar as long as the critical difference, and thick lines joining groups of models whose mean ranks
// differ by less than it (no significant difference by the Nemenyi test). Drawn here because no plotting library
// has this chart; classes name its parts (axis, cd, clique, and "model mark" per model, what the report counts).
#include <string>
#include <utility>
#include <vector>

namespace sdm::orchestrator {

/// Maximal runs [first, last] of rank-sorted positions whose mean ranks differ by less than `cd` (2+ members).
std::vector<std::pair<std::size_t, std::size_t>> cd_cliques(const std::vector<double>& sorted_ranks, double cd);

std::string cd_diagram_svg(const std::vector<std::string>& names, const std::vector<double>& mean_ranks, double cd,
                           const std::string& title);

}  // namespace sdm::orchestrator
