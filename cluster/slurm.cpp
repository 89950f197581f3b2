#include "cluster/slurm.h"

#include <algorithm>
#include <map>
#include <regex>

#include "common/error.h"
#include "common/yaml.h"

namespace sdm::cluster {

namespace {

/// A shell word, single-quoted when it needs quoting.
std::string quoted(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@%+,") ==
                           std::string::npos) {
    return word;
  }
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string lines(const std::vector<std::string>& items, const std::string& prefix) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : "\n") + prefix + item;
  return out;
}

}  // namespace

SiteProfile SiteProfile::load(const std::string& path) {
  const auto y = YamlView::load_file(path, "site");
  y.expect_keys({"launcher", "srun_mpi", "mpirun_args", "setup", "sbatch", "grace_s"});
  SiteProfile s;
  s.name = path;
  s.launcher = y.get<std::string>("launcher", s.launcher);
  y["launcher"].expect_one_of(s.launcher, {"srun", "mpirun"});
  s.srun_mpi = y.get<std::string>("srun_mpi", s.srun_mpi);
  s.mpirun_args = y.get<std::vector<std::string>>("mpirun_args", {});
  s.setup = y.get<std::vector<std::string>>("setup", {});
  s.sbatch = y.get<std::vector<std::string>>("sbatch", {});
  s.grace_s = y.get<int>("grace_s", s.grace_s);
  if (s.grace_s < 10) y["grace_s"].fail("at least 10 seconds (the sweep needs time to drain and consolidate)");
  return s;
}

long slurm_time_seconds(const std::string& text, const std::string& field) {
  // Slurm's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
  static const std::regex kForm(R"(^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$)");
  std::smatch m;
  if (!std::regex_match(text, m, kForm)) {
    throw ConfigError({"<cli>", field, text}, "expected a Slurm time limit: MM, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]");
  }
  const auto n = [&](int i) { return m[i].matched ? std::stol(m[i].str()) : 0L; };
  long s = 0;
  if (m[1].matched) {
    s = n(1) * 86400 + n(2) * 3600 + n(3) * 60 + n(4);  // D-H[:M[:S]]
  } else if (m[4].matched) {
    s = n(2) * 3600 + n(3) * 60 + n(4);  // H:M:S
  } else if (m[3].matched) {
    s = n(2) * 60 + n(3);  // M:S
  } else {
    s = n(2) * 60;  // M
  }
  if (s <= 0) throw ConfigError({"<cli>", field, text}, "the time limit must be positive");
  return s;
}

std::string render_sbatch(const std::string& template_text, const SubmitRequest& r, const SiteProfile& site) {
  if (r.nodes < 1) throw ConfigError({"<cli>", "--nodes", std::to_string(r.nodes)}, "at least 1");
  if (r.ntasks_per_node < 1) throw ConfigError({"<cli>", "--ntasks-per-node", std::to_string(r.ntasks_per_node)}, "at least 1");
  if (r.gpus_per_node < 0) throw ConfigError({"<cli>", "--gpus-per-node", std::to_string(r.gpus_per_node)}, "0 or more");
  const long limit = slurm_time_seconds(r.time, "--time");
  const int grace = r.grace_s >= 0 ? r.grace_s : site.grace_s;
  if (grace < 10 || grace * 2 > limit) {
    throw ConfigError({"<cli>", "--grace", std::to_string(grace)},
                      "the pre-timeout grace must be at least 10 s and at most half the time limit (" + std::to_string(limit) + " s)");
  }
  // Running cells get most of the grace; the rest is for consolidation and the requeue.
  const int drain_grace = std::max(5, grace - std::min(60, grace / 3));
  std::vector<std::string> sbatch;
  if (r.gpus_per_node > 0) sbatch.push_back("--gpus-per-node=" + std::to_string(r.gpus_per_node));
  if (!r.partition.empty()) sbatch.push_back("--partition=" + r.partition);
  if (!r.account.empty()) sbatch.push_back("--account=" + r.account);
  sbatch.insert(sbatch.end(), site.sbatch.begin(), site.sbatch.end());
  std::string launch = site.launcher == "srun" ? "srun --mpi=" + quoted(site.srun_mpi) : "mpirun";
  if (site.launcher == "mpirun") {
    for (const auto& a : site.mpirun_args) launch += " " + quoted(a);
  }
  const std::map<std::string, std::string> values{
      {"site", site.name},
      {"job_name", quoted(r.job_name)},
      {"nodes", std::to_string(r.nodes)},
      // one node: --ntasks (with --overcommit a single node may take more ranks than cores, which Slurm refuses
      // for --ntasks-per-node); several: --ntasks-per-node spreads the ranks evenly
      {"tasks", r.nodes == 1 ? "--ntasks=" + std::to_string(r.ntasks_per_node)
                             : "--ntasks-per-node=" + std::to_string(r.ntasks_per_node)},
      {"time", r.time},
      {"time_s", std::to_string(limit)},
      {"log_dir", quoted(r.log_dir)},
      {"grace", std::to_string(grace)},
      {"drain_grace", std::to_string(drain_grace)},
      {"sbatch_lines", lines(sbatch, "#SBATCH ")},
      {"setup_lines", lines(site.setup, "")},
      {"workdir", quoted(r.workdir)},
      {"launch", launch},
      {"sdm", quoted(r.sdm)},
      {"spec", quoted(r.spec)},
  };
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const auto open = template_text.find("{{", pos);
    if (open == std::string::npos) break;
    const auto close = template_text.find("}}", open);
    if (close == std::string::npos) throw ConfigError({"", "template", template_text.substr(open, 20)}, "unclosed {{");
    const auto key = template_text.substr(open + 2, close - open - 2);
    const auto it = values.find(key);
    if (it == values.end()) throw ConfigError({"", "template", key}, "unknown placeholder in the batch script template");
    out += template_text.substr(pos, open - pos) + it->second;
    pos = close + 2;
  }
  return out + template_text.substr(pos);
}

}  // namespace sdm::cluster
