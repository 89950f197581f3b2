#include "orchestrator/consolidate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <variant>

#include "cluster/mpi.h"
#include "common/cell_record.h"
#include "common/error.h"
#include "common/hdf5.h"
#include "orchestrator/parallel_h5.h"
#include "orchestrator/version.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// One column, as this rank holds it.
struct LocalColumn {
  std::string name;
  FieldKind kind;
  std::vector<std::string> text;
  std::vector<std::int64_t> ints;
  std::vector<double> reals;
  void add_text(std::string v) { text.push_back(std::move(v)); }
};

struct LocalTable {
  std::vector<LocalColumn> columns;
  std::int64_t rows = 0;
  explicit LocalTable(const std::vector<FieldSpec>& fields) {
    for (const auto& f : fields) columns.push_back({f.name, f.kind, {}, {}, {}});
  }
  LocalColumn& at(const std::string& name) {
    for (auto& c : columns) {
      if (c.name == name) return c;
    }
    throw Error("no column " + name);
  }
};

std::string bcast_string(std::string text, MPI_Comm comm) {
  long long n = static_cast<long long>(text.size());
  cluster::check_mpi(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  text.resize(static_cast<std::size_t>(n));
  if (n > 0) cluster::check_mpi(MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, 0, comm), "MPI_Bcast");
  return text;
}

/// Rank 0's list of rows: [{id, record: path or ""}].
nlohmann::json list_rows(const StorePaths& paths, std::int64_t& stale) {
  std::set<std::string> on_disk;
  std::error_code ec;
  if (fs::exists(paths.records, ec)) {
    for (const auto& entry : fs::directory_iterator(paths.records)) {
      const auto name = entry.path().filename().string();
      if (entry.path().extension() == ".h5" && name.find(".tmp") == std::string::npos) on_disk.insert(entry.path().stem().string());
    }
  }
  std::vector<std::string> ids;
  if (fs::exists(paths.expected, ec)) {
    ids = nlohmann::json::parse(read_text_file(paths.expected)).at("cells").get<std::vector<std::string>>();
    std::set<std::string> wanted(ids.begin(), ids.end());
    for (const auto& id : on_disk) stale += wanted.count(id) == 0;
  } else {
    ids.assign(on_disk.begin(), on_disk.end());
  }
  std::map<std::string, std::string> last_status;
  for (const auto& e : Journal::read(paths.journal)) last_status[e.value("cell_id", std::string())] = e.value("status", std::string());
  std::sort(ids.begin(), ids.end());
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& id : ids) {
    if (on_disk.count(id)) {
      rows.push_back({{"id", id}, {"record", paths.record(id)}});
    } else if (last_status.count(id) && last_status[id] == "running") {
      rows.push_back({{"id", id}, {"record", ""}});
    }
  }
  return rows;
}

struct Offsets {
  std::int64_t offset = 0;
  std::int64_t total = 0;
};

Offsets offsets(std::int64_t local, MPI_Comm comm) {
  int size = 0, rank = 0;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  std::vector<long long> all(static_cast<std::size_t>(size));
  long long mine = local;
  cluster::check_mpi(MPI_Allgather(&mine, 1, MPI_LONG_LONG, all.data(), 1, MPI_LONG_LONG, comm), "MPI_Allgather");
  Offsets o;
  for (int r = 0; r < size; ++r) {
    if (r < rank) o.offset += all[static_cast<std::size_t>(r)];
    o.total += all[static_cast<std::size_t>(r)];
  }
  return o;
}

/// Writes one column: every rank calls this with the same name/kind; each writes its own slab collectively.
void write_column(hid_t group, const std::string& file, const LocalColumn& c, const Offsets& o, hid_t dxpl, MPI_Comm comm) {
  const hsize_t total = static_cast<hsize_t>(o.total);
  h5::SpaceId fspace(H5Screate_simple(1, &total, nullptr));
  h5::TypeId file_type;
  hid_t mem_type = H5T_NATIVE_DOUBLE;
  std::vector<char> text_buf;
  std::size_t width = 1;
  const void* data = nullptr;
  const auto n = static_cast<hsize_t>(c.kind == FieldKind::kText ? c.text.size()
                                      : c.kind == FieldKind::kInt ? c.ints.size()
                                                                  : c.reals.size());
  if (c.kind == FieldKind::kText) {
    unsigned long long local_max = 0, global_max = 0;
    for (const auto& s : c.text) local_max = std::max<unsigned long long>(local_max, s.size());
    cluster::check_mpi(MPI_Allreduce(&local_max, &global_max, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
    width = static_cast<std::size_t>(global_max) + 1;  // NUL-terminated fixed-width UTF-8 (parallel HDF5 cannot write vlen)
    file_type = h5::TypeId(H5Tcopy(H5T_C_S1));
    H5Tset_size(file_type.get(), width);
    H5Tset_strpad(file_type.get(), H5T_STR_NULLTERM);
    H5Tset_cset(file_type.get(), H5T_CSET_UTF8);
    mem_type = file_type.get();
    text_buf.assign(width * c.text.size(), '\0');
    for (std::size_t i = 0; i < c.text.size(); ++i) std::copy(c.text[i].begin(), c.text[i].end(), text_buf.begin() + static_cast<long>(i * width));
    data = text_buf.data();
  } else if (c.kind == FieldKind::kInt) {
    file_type = h5::TypeId(H5Tcopy(H5T_STD_I64LE));
    mem_type = H5T_NATIVE_INT64;
    data = c.ints.data();
  } else {
    file_type = h5::TypeId(H5Tcopy(H5T_IEEE_F64LE));
    data = c.reals.data();
  }
  const h5::PlistId dcpl = h5::reproducible_dataset_plist();
  h5::DatasetId ds(h5::check(H5Dcreate2(group, c.name.c_str(), file_type.get(), fspace.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                             file, c.name, "cannot create dataset"));
  if (total == 0) return;  // nothing to write anywhere (and HDF5 rejects a collective write to an empty dataset)
  const hsize_t start = static_cast<hsize_t>(o.offset);
  h5::SpaceId mspace(H5Screate_simple(1, &n, nullptr));
  if (n > 0) {
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &n, nullptr);
  } else {
    H5Sselect_none(fspace.get());
    H5Sselect_none(mspace.get());
  }
  static const char kEmpty[1] = {0};
  h5::check(H5Dwrite(ds.get(), mem_type, mspace.get(), fspace.get(), dxpl, data ? data : kEmpty), file, c.name,
            "cannot write (collective)");
}

void write_table(const h5::File& file, const std::string& group_name, const LocalTable& table, hid_t dxpl, MPI_Comm comm) {
  const h5::Group group = file.create_group(group_name);
  const Offsets o = offsets(table.rows, comm);
  for (const auto& c : table.columns) write_column(group.id(), file.file(), c, o, dxpl, comm);
}

void add_record(const CellRecord& r, LocalTable& cells, LocalTable& preds, LocalTable& breakdown) {
  for (auto& c : cells.columns) {
    switch (c.kind) {
      case FieldKind::kText: c.text.push_back(r.text(c.name)); break;
      case FieldKind::kInt: c.ints.push_back(r.integer(c.name)); break;
      case FieldKind::kReal: c.reals.push_back(r.real(c.name)); break;
    }
  }
  ++cells.rows;
  const std::string id = r.text("cell_id");
  const auto& p = r.predictions;
  for (std::size_t i = 0; i < p.size(); ++i) {
    preds.at("cell_id").add_text(id);
    preds.at("obs_name").add_text(p.obs_name[i]);
    preds.at("dataset").add_text(p.dataset[i]);
    preds.at("y_true").ints.push_back(p.y_true[i]);
    preds.at("y_pred").ints.push_back(p.y_pred[i]);
    preds.at("y_score").reals.push_back(p.y_score[i]);
  }
  preds.rows += static_cast<std::int64_t>(p.size());
  for (const auto& row : r.breakdown) {
    for (auto& c : breakdown.columns) {
      if (c.name == "cell_id") {
        c.add_text(id);
      } else if (c.name == "dataset") {
        c.add_text(row.dataset);
      } else {
        auto it = row.metrics.find(c.name);
        const double v = it == row.metrics.end() ? kNaN : it->second;
        if (c.kind == FieldKind::kInt) {
          c.ints.push_back(std::isfinite(v) ? static_cast<std::int64_t>(v) : -1);
        } else {
          c.reals.push_back(v);
        }
      }
    }
    ++breakdown.rows;
  }
}

}  // namespace

ConsolidateStats consolidate(const StorePaths& paths, MPI_Comm comm) {
  const auto t0 = std::chrono::steady_clock::now();
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  ConsolidateStats stats;
  std::string listing, header;
  if (rank == 0) {
    nlohmann::json rows = list_rows(paths, stats.stale_records);
    std::string sweep_yaml;
    std::error_code ec;
    if (fs::exists(paths.sweep_yaml, ec)) sweep_yaml = read_text_file(paths.sweep_yaml);
    listing = rows.dump();
    header = nlohmann::json{{"sweep_yaml", sweep_yaml}, {"created_utc", utc_now()}, {"stale", stats.stale_records}}.dump();
  }
  const auto rows = nlohmann::json::parse(bcast_string(listing, comm));
  const auto head = nlohmann::json::parse(bcast_string(header, comm));
  stats.stale_records = head.at("stale").get<std::int64_t>();

  // This rank's slab of rows.
  const auto n = static_cast<std::int64_t>(rows.size());
  const std::int64_t begin = n * rank / size, end = n * (rank + 1) / size;
  LocalTable cells(cell_fields()), preds(prediction_fields()), breakdown(breakdown_fields());
  LocalTable config({{"config_json", FieldKind::kText}});
  std::string error;
  for (std::int64_t i = begin; i < end; ++i) {
    const auto& row = rows[static_cast<std::size_t>(i)];
    CellRecord r;
    const std::string record = row.at("record");
    try {
      if (record.empty()) throw Error("no record");
      r = read_record(record);
    } catch (const std::exception& e) {
      r = CellRecord{};
      r.set("cell_id", row.at("id").get<std::string>());
      r.set("status", std::string(record.empty() ? "interrupted" : "failed"));
      r.set("error", record.empty() ? std::string("started but never committed (the sweep stopped)")
                                    : std::string("unreadable record: ") + e.what());
      for (const char* name : {"wall_s", "cpu_s", "peak_rss_mb", "gpu_s", "f1", "auroc", "auprc", "precision", "recall",
                               "accuracy", "balanced_accuracy", "mcc"}) {
        r.set(name, kNaN);
      }
    }
    add_record(r, cells, preds, breakdown);
    config.columns[0].text.push_back(r.config_json);
    ++config.rows;
  }

  const std::string tmp = paths.store + ".tmp";
  {
    h5::init();
    const h5::PlistId fapl = mpio_file_access(comm);
    h5::File file = h5::File::create(tmp, fapl.get());
    const h5::PlistId dxpl = collective_transfer();
    file.set_attr("sdm_schema_version", std::int64_t{kStoreSchemaVersion});
    file.set_attr("sweep_yaml", head.at("sweep_yaml").get<std::string>());
    file.set_attr("created_utc", head.at("created_utc").get<std::string>());
    file.set_attr("sdm_version", std::string(version_string()));
    file.set_attr("git_sha", std::string(git_sha()));
    write_table(file, "cells", cells, dxpl.get(), comm);
    write_table(file, "predictions", preds, dxpl.get(), comm);
    write_table(file, "breakdown", breakdown, dxpl.get(), comm);
    write_table(file, "provenance", config, dxpl.get(), comm);
    stats.io_mode = actual_io_mode(dxpl.get());
    file.close();
  }
  cluster::check_mpi(MPI_Barrier(comm), "MPI_Barrier");
  if (rank == 0) {
    fsync_path(tmp);
    std::error_code ec;
    fs::rename(tmp, paths.store, ec);
    if (ec) throw IoError({paths.store, "", ""}, "cannot move the consolidated store into place: " + ec.message());
  }
  long long local[3] = {cells.rows, preds.rows, breakdown.rows}, total[3] = {0, 0, 0};
  cluster::check_mpi(MPI_Allreduce(local, total, 3, MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
  stats.cells = total[0];
  stats.predictions = total[1];
  stats.breakdown = total[2];
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace sdm::orchestrator
