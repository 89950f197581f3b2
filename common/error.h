#pragma once
// The sdm::Error family. Every domain failure a user can cause (bad file, bad spec, bad value) is one of
// these, and its message names where the problem is: the file, the field inside it, and the offending value.
#include <stdexcept>
#include <string>

namespace sdm {

/// Where a problem sits. Any part may be empty; what() prints only the parts that are set.
struct ErrorSite {
  std::string file;   ///< path of the file (or "<cli>", "<env>") the bad input came from
  std::string field;  ///< dotted path inside it: "sweep.models[2].preset", "obs/condition"
  std::string value;  ///< the offending value as the user wrote it
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& problem) : std::runtime_error(problem) {}
  Error(ErrorSite site, const std::string& problem);

  const ErrorSite& site() const noexcept { return site_; }
  /// The problem text without the site prefix.
  const std::string& problem() const noexcept { return problem_; }

 private:
  ErrorSite site_;
  std::string problem_;
};

/// A sweep spec, a config file or a command-line value is wrong.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A file is missing, unreadable, truncated or corrupt.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A file reads fine but its content is unusable: NaN counts, wrong shape, missing column.
class DataError : public Error {
 public:
  using Error::Error;
};

/// MPI, NCCL or the cluster environment failed or was misused.
class ClusterError : public Error {
 public:
  using Error::Error;
};

/// "file: field = 'value': problem", leaving out the parts that are empty.
std::string format_error(const ErrorSite& site, const std::string& problem);

}  // namespace sdm
