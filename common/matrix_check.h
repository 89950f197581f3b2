#pragma once
// Structural checks of stored matrices for `sdm inspect` (FileInfo::problems).
#include <cstdint>
#include <string>
#include <vector>

#include "common/hdf5.h"

namespace sdm {

/// A compressed sparse matrix stored as `group`/{indptr, indices, data} with `major` rows (CSR) or columns (CSC):
/// all three present and 1-D, indices as long as data, indptr of major + 1 entries from 0, never decreasing, ending
/// at the number of values, and the values within what one read may allocate. Each problem one sentence; empty
/// when the structure is sound.
std::vector<std::string> compressed_matrix_problems(const h5::File& f, const std::string& group, std::int64_t major,
                                                    const std::string& major_name);

}  // namespace sdm
