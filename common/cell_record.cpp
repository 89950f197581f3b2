#include "common/cell_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

#include "common/error.h"
#include "common/hash.h"
#include "common/hdf5.h"

namespace sdm {

const std::vector<FieldSpec>& cell_fields() {
  using K = FieldKind;
  static const std::vector<FieldSpec> kFields{
      {"cell_id", K::kText},     {"model", K::kText},          {"preset", K::kText},
      {"weights_sha256", K::kText}, {"strategy", K::kText},     {"protocol", K::kText},
      {"split", K::kText},       {"fold", K::kInt},            {"test_group", K::kText},
      {"train_groups", K::kText}, {"seed", K::kInt},           {"status", K::kText},
      {"error", K::kText},       {"attempts", K::kInt},        {"wall_s", K::kReal},
      {"cpu_s", K::kReal},       {"peak_rss_mb", K::kReal},    {"gpu_s", K::kReal},
      {"device", K::kText},      {"rank", K::kInt},            {"host", K::kText},
      {"started_utc", K::kText}, {"finished_utc", K::kText},   {"n_test", K::kInt},
      {"f1", K::kReal},          {"auroc", K::kReal},          {"auprc", K::kReal},
      {"precision", K::kReal},   {"recall", K::kReal},         {"accuracy", K::kReal},
      {"balanced_accuracy", K::kReal}, {"mcc", K::kReal},      {"metric_notes", K::kText},
      {"artifact_path", K::kText}};
  return kFields;
}

const std::vector<FieldSpec>& breakdown_fields() {
  using K = FieldKind;
  static const std::vector<FieldSpec> kFields{
      {"cell_id", K::kText}, {"dataset", K::kText},  {"n_test", K::kInt},     {"f1", K::kReal},
      {"auroc", K::kReal},   {"auprc", K::kReal},    {"precision", K::kReal}, {"recall", K::kReal},
      {"accuracy", K::kReal}, {"balanced_accuracy", K::kReal}, {"mcc", K::kReal}};
  return kFields;
}

const std::vector<FieldSpec>& prediction_fields() {
  using K = FieldKind;
  static const std::vector<FieldSpec> kFields{{"cell_id", K::kText}, {"obs_name", K::kText}, {"dataset", K::kText},
                                              {"y_true", K::kInt},   {"y_pred", K::kInt},    {"y_score", K::kReal}};
  return kFields;
}

std::string CellRecord::text(const std::string& name) const {
  auto it = fields.find(name);
  if (it == fields.end()) return "";
  if (auto* s = std::get_if<std::string>(&it->second)) return *s;
  if (auto* i = std::get_if<std::int64_t>(&it->second)) return std::to_string(*i);
  return std::to_string(std::get<double>(it->second));
}

std::int64_t CellRecord::integer(const std::string& name) const {
  auto it = fields.find(name);
  if (it == fields.end()) return -1;
  if (auto* i = std::get_if<std::int64_t>(&it->second)) return *i;
  if (auto* d = std::get_if<double>(&it->second)) return std::isfinite(*d) ? static_cast<std::int64_t>(*d) : -1;
  return -1;
}

double CellRecord::real(const std::string& name) const {
  auto it = fields.find(name);
  if (it == fields.end()) return std::numeric_limits<double>::quiet_NaN();
  if (auto* d = std::get_if<double>(&it->second)) return *d;
  if (auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  return std::numeric_limits<double>::quiet_NaN();
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError({path, "", ""}, std::string("cannot open for fsync: ") + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw IoError({path, "", ""}, std::string("fsync failed: ") + std::strerror(err));
}

namespace {

void write_fields(const h5::Location& root, const std::map<std::string, FieldValue>& fields) {
  for (const auto& [name, value] : fields) {
    // (an init-capture: clang before 16 cannot capture a structured binding, and tools/fuzz.sh builds with clang)
    std::visit([&root, &key = name](const auto& v) { root.set_attr(key, v); }, value);
  }
}

}  // namespace

namespace {

/// Test hook for fault injection (tests/e2e `faults`): SDM_FAULT_WRITE_FAILURES=N makes the first N record commits
/// of this process fail as a full disk would. Never set it outside tests.
void maybe_inject_write_failure(const std::string& path) {
  static int remaining = [] {
    const char* v = std::getenv("SDM_FAULT_WRITE_FAILURES");
    return v ? std::atoi(v) : 0;
  }();
  if (remaining > 0) {
    --remaining;
    throw IoError({path, "", ""}, "No space left on device (injected by SDM_FAULT_WRITE_FAILURES)");
  }
}

}  // namespace

std::string write_record(const std::string& path, const CellRecord& record) {
  maybe_inject_write_failure(path);
  h5::init();
  // Built in memory (HDF5 core driver, no backing store), then written with one write() and one fsync: a
  // record costs a handful of syscalls instead of HDF5's many small writes, and its hash comes for free.
  std::vector<char> image;
  {
    h5::PlistId fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_fapl_core(fapl.get(), 64 * 1024, 0);
    h5::File file = h5::File::create(path, fapl.get());
    file.set_attr("sdm_schema_version", std::int64_t{kStoreSchemaVersion});
    file.set_attr("config_json", record.config_json);
    write_fields(file, record.fields);
    const auto& p = record.predictions;
    file.create_group("predictions");
    file.write_strings("predictions/obs_name", p.obs_name);
    file.write_strings("predictions/dataset", p.dataset);
    file.write("predictions/y_true", p.y_true);
    file.write("predictions/y_pred", p.y_pred);
    file.write("predictions/y_score", p.y_score);
    file.create_group("breakdown");
    std::vector<std::string> datasets;
    for (const auto& row : record.breakdown) datasets.push_back(row.dataset);
    file.write_strings("breakdown/dataset", datasets);
    for (const auto& spec : breakdown_fields()) {
      if (spec.kind == FieldKind::kText) continue;
      std::vector<double> values;
      for (const auto& row : record.breakdown) {
        auto it = row.metrics.find(spec.name);
        values.push_back(it == row.metrics.end() ? std::numeric_limits<double>::quiet_NaN() : it->second);
      }
      file.write("breakdown/" + spec.name, values);
    }
    file.flush();
    const ssize_t size = H5Fget_file_image(file.id(), nullptr, 0);
    if (size <= 0) throw IoError({path, "", ""}, "cannot serialize the record: " + h5::take_error_stack());
    image.resize(static_cast<std::size_t>(size));
    if (H5Fget_file_image(file.id(), image.data(), image.size()) != size) {
      throw IoError({path, "", ""}, "cannot serialize the record: " + h5::take_error_stack());
    }
    file.close();
  }
  const std::filesystem::path final_path(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError({tmp, "", ""}, std::string("cannot create: ") + std::strerror(errno));
  std::size_t written = 0;
  while (written < image.size()) {
    const ssize_t n = ::write(fd, image.data() + written, image.size() - written);
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw IoError({tmp, "", ""}, std::string("cannot write: ") + std::strerror(err));
    }
    written += static_cast<std::size_t>(n);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw IoError({tmp, "", ""}, std::string("fsync failed: ") + std::strerror(err));
  std::error_code ec;
  std::filesystem::rename(tmp, final_path, ec);
  if (ec) throw IoError({path, "", ""}, "cannot commit record: " + ec.message());
  fsync_path(final_path.parent_path().empty() ? "." : final_path.parent_path().string());
  return sha256_hex(std::string_view(image.data(), image.size()));
}

CellRecord read_record(const std::string& path, bool with_predictions) {
  h5::init();
  const h5::File file = h5::File::open(path);
  CellRecord record;
  if (!file.has_attr("sdm_schema_version") || file.attr_int("sdm_schema_version") != kStoreSchemaVersion) {
    throw IoError({path, "sdm_schema_version", ""}, "not a schema-1 sdm cell record");
  }
  record.config_json = file.attr_string("config_json");
  for (const auto& spec : cell_fields()) {
    if (!file.has_attr(spec.name)) continue;
    switch (spec.kind) {
      case FieldKind::kText: record.set(spec.name, file.attr_string(spec.name)); break;
      case FieldKind::kInt: record.set(spec.name, file.attr_int(spec.name)); break;
      case FieldKind::kReal: record.set(spec.name, file.attr_double(spec.name)); break;
    }
  }
  if (!with_predictions) return record;
  auto& p = record.predictions;
  p.obs_name = file.read_strings("predictions/obs_name");
  p.dataset = file.read_strings("predictions/dataset");
  p.y_true = file.read<std::int8_t>("predictions/y_true");
  p.y_pred = file.read<std::int8_t>("predictions/y_pred");
  p.y_score = file.read<double>("predictions/y_score");
  const auto datasets = file.read_strings("breakdown/dataset");
  record.breakdown.resize(datasets.size());
  for (std::size_t i = 0; i < datasets.size(); ++i) record.breakdown[i].dataset = datasets[i];
  for (const auto& spec : breakdown_fields()) {
    if (spec.kind == FieldKind::kText) continue;
    const auto values = file.read<double>("breakdown/" + spec.name);
    for (std::size_t i = 0; i < values.size() && i < datasets.size(); ++i) record.breakdown[i].metrics[spec.name] = values[i];
  }
  return record;
}

}  // namespace sdm
