// Structural checks of a stored matrix for `sdm inspect`: what every reading command would refuse, found
// without reading the values, each as one sentence naming the object and the number that is wrong.
#include <cstdio>

#include "common/matrix_check.h"

#include "common/error.h"

namespace sdm {
namespace {

std::string with_size(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

std::vector<std::string> compressed_matrix_problems(const h5::File& f, const std::string& group, std::int64_t major,
                                                    const std::string& major_name) {
  std::vector<std::string> problems;
  for (const char* part : {"indptr", "indices", "data"}) {
    if (!f.exists(group + "/" + part)) problems.push_back(group + "/" + part + " is missing");
  }
  if (!problems.empty()) return problems;
  const auto dims = [&](const std::string& name) { return f.shape(group + "/" + name); };
  for (const char* part : {"indptr", "indices", "data"}) {
    if (dims(part).size() != 1) problems.push_back(group + "/" + part + " is not 1-D");
  }
  if (!problems.empty()) return problems;
  const auto nnz = static_cast<std::int64_t>(dims("data").at(0));
  const auto n_indices = static_cast<std::int64_t>(dims("indices").at(0));
  const auto n_indptr = static_cast<std::int64_t>(dims("indptr").at(0));
  if (n_indices != nnz) {
    problems.push_back(group + "/indices has " + std::to_string(n_indices) + " entries, data has " + std::to_string(nnz));
  }
  // what a read would allocate for the values and their indices (h5::checked_elements refuses the same)
  const auto bytes = static_cast<std::uint64_t>(nnz) * (sizeof(float) + sizeof(std::int32_t));
  if (bytes > h5::max_read_bytes()) {
    problems.push_back(group + "/data holds " + std::to_string(nnz) + " nonzeros (" + with_size(bytes) +
                       "), more than one read may allocate (" + with_size(h5::max_read_bytes()) + "; SDM_MAX_READ_MB)");
  }
  if (n_indptr != major + 1) {
    problems.push_back(group + "/indptr has " + std::to_string(n_indptr) + " entries; " + std::to_string(major) + " " +
                       major_name + " need " + std::to_string(major + 1));
    return problems;
  }
  std::vector<std::int64_t> indptr;
  try {
    indptr = f.read<std::int64_t>(group + "/indptr");
  } catch (const Error& e) {
    problems.push_back(group + "/indptr cannot be read: " + e.problem());
    return problems;
  }
  for (std::size_t i = 0; i < indptr.size(); ++i) {
    if ((i == 0 && indptr[i] != 0) || (i > 0 && indptr[i] < indptr[i - 1])) {
      problems.push_back(group + "/indptr entry " + std::to_string(i) + " = " + std::to_string(indptr[i]) +
                         " breaks 0 = indptr[0] <= indptr[1] <= ... (not monotone)");
      return problems;
    }
  }
  if (!indptr.empty() && indptr.back() != nnz) {
    problems.push_back(group + "/indptr ends at " + std::to_string(indptr.back()) + ", data has " + std::to_string(nnz) +
                       " entries");
  }
  return problems;
}

}  // namespace sdm
