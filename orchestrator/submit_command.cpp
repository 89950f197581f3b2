// `sdm submit SPEC`: renders the Slurm batch script for a sweep (cluster/slurm.h), writes it beside the store and
// submits it with sbatch (or prints it with --dry-run).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cluster/slurm.h"
#include "common/error.h"
#include "jobs/sweep_spec.h"
#include "orchestrator/command.h"

namespace sdm::orchestrator {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError({path.string(), "", ""}, "cannot read");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A file of this source tree (templates, site profiles): beside the executable's tree, or where it was built from.
fs::path tree_file(const std::string& relative) {
  for (const fs::path& root : {fs::read_symlink("/proc/self/exe").parent_path().parent_path(), fs::path(SDM_SOURCE_DIR)}) {
    if (fs::exists(root / relative)) return root / relative;
  }
  return fs::path(SDM_SOURCE_DIR) / relative;
}

class SubmitCommand final : public Command {
 public:
  const char* name() const override { return "submit"; }
  const char* summary() const override {
    return "Submit a sweep to Slurm: batch script with pre-timeout drain and automatic requeue (--dry-run prints it)";
  }
  void configure(CLI::App& app) override {
    app.add_option("spec", spec_, "Sweep spec (YAML)")->required()->check(CLI::ExistingFile);
    app.add_option("--nodes", request_.nodes, "Nodes")->capture_default_str();
    app.add_option("--ntasks-per-node", request_.ntasks_per_node, "MPI ranks per node (rank 0 of the job schedules)")
        ->capture_default_str();
    app.add_option("--gpus-per-node", request_.gpus_per_node, "GPUs per node (each rank binds local rank mod GPUs)")
        ->capture_default_str();
    app.add_option("--time", request_.time, "Time limit (HH:MM:SS, MM, D-HH:MM...)")->required();
    app.add_option("--partition", request_.partition, "Partition");
    app.add_option("--account", request_.account, "Account");
    app.add_option("--site", site_, "Site profile: a name in cluster/sites/ or a YAML path")->capture_default_str();
    app.add_option("--grace", request_.grace_s, "Seconds between the pre-timeout signal and the limit (default: the site's)");
    app.add_option("--job-name", request_.job_name, "Job name (default: sdm-<sweep name>)");
    app.add_flag("--dry-run", dry_run_, "Print the batch script; write and submit nothing");
  }
  int run(const RunContext&) override {
    const auto spec = jobs::SweepSpec::load(spec_);
    const fs::path store = fs::absolute(spec.store);
    request_.spec = fs::absolute(spec_).string();
    request_.sdm = fs::read_symlink("/proc/self/exe").string();
    request_.workdir = fs::current_path().string();
    request_.log_dir = (store.parent_path() / "slurm").string();
    if (request_.job_name.empty()) request_.job_name = "sdm-" + spec.name;
    const fs::path site_path = site_.find('/') != std::string::npos || site_.ends_with(".yaml")
                                   ? fs::path(site_) : tree_file("cluster/sites/" + site_ + ".yaml");
    const auto site = cluster::SiteProfile::load(site_path.string());
    const auto script = cluster::render_sbatch(read_all(tree_file("cluster/slurm/sweep.sbatch.in")), request_, site);
    if (dry_run_) {
      std::cout << script << std::flush;
      return 0;
    }
    fs::create_directories(request_.log_dir);
    const fs::path path = fs::path(request_.log_dir) / (spec.name + ".sbatch");
    std::ofstream(path) << script;
    const std::string command = "sbatch --parsable " + path.string() + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) throw IoError({path.string(), "sbatch", ""}, "cannot run sbatch");
    std::string output;
    char buf[256];
    while (std::fgets(buf, sizeof buf, pipe)) output += buf;
    const int rc = ::pclose(pipe);
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
    if (rc != 0) {
      std::cerr << "sdm submit: error: sbatch failed (" << output << "); the script is " << path.string() << std::endl;
      return 1;
    }
    const std::string job = output.substr(0, output.find(';'));  // --parsable: "id[;cluster]"
    std::cout << "submitted job " << job << ": " << path.string() << " (log " << request_.log_dir << "/slurm-" << job
              << ".out)" << std::endl;
    return 0;
  }

 private:
  std::string spec_;
  std::string site_ = "default";
  bool dry_run_ = false;
  cluster::SubmitRequest request_;
};

}  // namespace

std::unique_ptr<Command> make_submit_command() { return std::make_unique<SubmitCommand>(); }

}  // namespace sdm::orchestrator
