#include "orchestrator/verify.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "common/cell_record.h"
#include "common/hash.h"
#include "common/hdf5.h"
#include "orchestrator/results_table.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
namespace {

bool is_cell_id(const std::string& id) {
  return id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool same_number(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

std::string short_id(const std::string& id) { return id.substr(0, 12); }

/// Every column of each group present, one length per group; returns the row count of each group (-1 = broken).
std::map<std::string, std::int64_t> check_layout(const h5::File& file, VerifyReport& r) {
  const std::vector<std::pair<std::string, const std::vector<FieldSpec>*>> groups{
      {"cells", &cell_fields()}, {"predictions", &prediction_fields()}, {"breakdown", &breakdown_fields()}};
  std::map<std::string, std::int64_t> rows;
  for (const auto& [group, fields] : groups) {
    std::int64_t n = -2;
    for (const auto& f : *fields) {
      const std::string path = group + "/" + f.name;
      if (!file.exists(path)) {
        r.problems.push_back("/" + path + " is missing");
        n = -1;
        continue;
      }
      const auto shape = file.shape(path);
      const auto len = shape.empty() ? 0 : static_cast<std::int64_t>(shape[0]);
      if (n == -2) n = len;
      if (n >= 0 && len != n) {
        r.problems.push_back("/" + path + " has " + std::to_string(len) + " rows, the other /" + group + " columns " + std::to_string(n));
        n = -1;
      }
    }
    rows[group] = n;
  }
  return rows;
}

}  // namespace

nlohmann::json VerifyReport::to_json() const {
  return {{"ok", problems.empty()}, {"problems", problems}, {"notes", notes}, {"cells", cells}, {"records", records},
          {"predictions", predictions}, {"breakdown", breakdown}};
}

VerifyReport verify_store(const StorePaths& paths) {
  VerifyReport r;
  std::error_code ec;
  std::set<std::string> record_ids;
  if (fs::is_directory(paths.records, ec)) {
    for (const auto& entry : fs::directory_iterator(paths.records)) {
      const auto name = entry.path().filename().string();
      if (entry.path().extension() == ".h5" && name.find(".tmp") == std::string::npos) record_ids.insert(entry.path().stem().string());
    }
  }
  r.records = static_cast<std::int64_t>(record_ids.size());
  if (!fs::exists(paths.store, ec)) {
    r.problems.push_back(paths.store + " does not exist" + (record_ids.empty() ? "" : " (" + std::to_string(record_ids.size()) +
                                                                                    " records: run `sdm consolidate`)"));
    return r;
  }
  h5::init();
  std::map<std::string, std::int64_t> rows;
  try {
    const h5::File file = h5::File::open(paths.store);
    if (!file.has_attr("sdm_schema_version")) {
      r.problems.push_back("no sdm_schema_version attribute: not an sdm store");
      return r;
    }
    if (file.attr_int("sdm_schema_version") != kStoreSchemaVersion) {
      r.problems.push_back("schema version " + std::to_string(file.attr_int("sdm_schema_version")) + ", this sdm reads " +
                           std::to_string(kStoreSchemaVersion));
      return r;
    }
    rows = check_layout(file, r);
  } catch (const std::exception& e) {
    r.problems.push_back(std::string("cannot read the store: ") + e.what());
    return r;
  }
  if (!r.problems.empty()) return r;

  const auto cells = read_store_cells(paths.store);
  r.cells = static_cast<std::int64_t>(cells.size());
  std::map<std::string, const CellRecord*> by_id;
  for (const auto& c : cells) {
    const std::string id = c.text("cell_id");
    if (!is_cell_id(id)) r.problems.push_back("cell id '" + id + "' is not a SHA-256 in hex");
    if (!by_id.emplace(id, &c).second) r.problems.push_back("cell " + short_id(id) + " appears twice in /cells");
    const std::string status = c.text("status");
    if (status != "done" && status != "failed" && status != "interrupted") {
      r.problems.push_back("cell " + short_id(id) + ": status '" + status + "'");
    }
  }
  std::map<std::string, std::int64_t> n_pred, n_break;
  const h5::File file = h5::File::open(paths.store);
  const auto count_rows = [&](const std::string& group, std::map<std::string, std::int64_t>& n) {
    const auto ids = file.read_strings(group + "/cell_id");  // the only column the counts need
    for (const auto& id : ids) {
      ++n[id];
      if (!by_id.count(id)) r.problems.push_back("/" + group + " has rows of cell " + short_id(id) + ", which /cells lacks");
    }
    return static_cast<std::int64_t>(ids.size());
  };
  r.predictions = count_rows("predictions", n_pred);
  r.breakdown = count_rows("breakdown", n_break);

  std::map<std::string, std::string> committed_sha;  // last non-empty record_sha256 per cell
  try {
    for (const auto& e : Journal::read(paths.journal)) {
      const std::string sha = e.value("record_sha256", std::string());
      if (!sha.empty()) committed_sha[e.value("cell_id", std::string())] = sha;
    }
  } catch (const std::exception& e) {
    r.problems.push_back(std::string("journal: ") + e.what());
  }

  for (const auto& [id, cell] : by_id) {
    const std::string status = cell->text("status");
    if (status == "done" && n_pred[id] != cell->integer("n_test")) {
      r.problems.push_back("cell " + short_id(id) + ": " + std::to_string(n_pred[id]) + " prediction rows, n_test " +
                           std::to_string(cell->integer("n_test")));
    }
    if (status == "interrupted") continue;
    const std::string path = paths.record(id);
    if (!record_ids.count(id)) {
      r.problems.push_back("cell " + short_id(id) + " (" + status + "): no record file " + path);
      continue;
    }
    const auto sha = committed_sha.find(id);
    const std::string have = sha256_file_hex(path);
    if (sha == committed_sha.end()) {
      r.notes.push_back("cell " + short_id(id) + ": the journal has no checksum for its record");
    } else if (sha->second != have) {
      r.problems.push_back("cell " + short_id(id) + ": record " + path + " changed since it was committed (sha256 " +
                           have.substr(0, 12) + ", journal " + sha->second.substr(0, 12) + ")");
    }
    CellRecord rec;
    try {
      rec = read_record(path, true);
    } catch (const std::exception& e) {
      r.problems.push_back("cell " + short_id(id) + ": unreadable record: " + e.what());
      continue;
    }
    std::vector<std::string> differ;
    if (rec.text("status") != status) differ.push_back("status");
    if (rec.integer("n_test") != cell->integer("n_test")) differ.push_back("n_test");
    for (const auto& m : metric_names()) {
      if (!same_number(rec.real(m), cell->real(m))) differ.push_back(m);
    }
    if (static_cast<std::int64_t>(rec.predictions.size()) != n_pred[id]) differ.push_back("predictions");
    if (static_cast<std::int64_t>(rec.breakdown.size()) != n_break[id]) differ.push_back("breakdown");
    if (!differ.empty()) {
      std::string list;
      for (const auto& d : differ) list += (list.empty() ? "" : ", ") + d;
      r.problems.push_back("cell " + short_id(id) + ": the store and its record differ in " + list);
    }
  }
  std::set<std::string> expected;
  if (fs::exists(paths.expected, ec)) {
    // (the parsed document must outlive the loop: a range-for over `parse(...).at(...)` would walk freed memory)
    const auto doc = nlohmann::json::parse(read_text_file(paths.expected));
    for (const auto& id : doc.at("cells")) expected.insert(id.get<std::string>());
  }
  std::int64_t pending = 0;
  for (const auto& id : record_ids) {
    if (by_id.count(id)) continue;
    if (expected.empty() || expected.count(id)) {
      r.problems.push_back("record " + short_id(id) + " is not in the store (run `sdm consolidate`)");
    } else {
      r.notes.push_back("record " + short_id(id) + " belongs to no cell of the current spec (kept, not consolidated)");
    }
  }
  for (const auto& id : expected) pending += !by_id.count(id) && !record_ids.count(id);
  if (pending > 0) r.notes.push_back(std::to_string(pending) + " cells of the spec have not run yet");
  return r;
}

}  // namespace sdm::orchestrator
