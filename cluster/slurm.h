#pragma once
// `sdm submit`: a sweep as a Slurm batch job. The script is rendered from cluster/slurm/sweep.sbatch.in with a site
// profile (cluster/sites/*.yaml: launcher, setup lines, extra #SBATCH lines, grace); it asks Slurm for USR1 `grace`
// seconds before the time limit, forwards it to the sweep (which drains and exits 75) and then requeues itself.
#include <string>
#include <vector>

namespace sdm::cluster {

struct SiteProfile {
  std::string name;                      ///< the file it came from
  std::string launcher = "srun";         ///< srun | mpirun
  std::string srun_mpi = "pmix";
  std::vector<std::string> mpirun_args;
  std::vector<std::string> setup;        ///< shell lines run first (modules, environment)
  std::vector<std::string> sbatch;       ///< extra #SBATCH arguments
  int grace_s = 300;

  /// Reads and validates a profile; unknown keys and bad values are ConfigErrors naming the file and key.
  static SiteProfile load(const std::string& path);
};

struct SubmitRequest {
  std::string spec;       ///< absolute path of the sweep spec
  std::string job_name;
  std::string sdm;        ///< absolute path of the sdm executable
  std::string workdir;    ///< where the job runs (relative paths in the spec resolve from here)
  std::string log_dir;    ///< slurm-%j.out goes here
  int nodes = 1;
  int ntasks_per_node = 1;
  int gpus_per_node = 0;
  std::string time;       ///< Slurm time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
  std::string partition;
  std::string account;
  int grace_s = -1;       ///< pre-timeout signal lead; -1 = the site's
};

/// Seconds of a Slurm time limit; throws ConfigError naming `field` for anything else.
long slurm_time_seconds(const std::string& text, const std::string& field);

/// The batch script for `request` under `site` from `template_text` ({{name}} placeholders). Validates the
/// request (positive counts, a grace shorter than the limit); throws ConfigError naming the option.
std::string render_sbatch(const std::string& template_text, const SubmitRequest& request, const SiteProfile& site);

}  // namespace sdm::cluster
