#include "cluster/slurm.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace sdm::cluster {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(Slurm, TimeLimitsInEverySlurmForm) {
  EXPECT_EQ(slurm_time_seconds("30", "--time"), 1800);        // minutes
  EXPECT_EQ(slurm_time_seconds("30:15", "--time"), 1815);     // minutes:seconds
  EXPECT_EQ(slurm_time_seconds("04:00:00", "--time"), 14400);
  EXPECT_EQ(slurm_time_seconds("1-02", "--time"), 93600);     // days-hours
  EXPECT_EQ(slurm_time_seconds("1-02:30", "--time"), 95400);
  EXPECT_EQ(slurm_time_seconds("2-00:00:10", "--time"), 172810);
  EXPECT_THROW(slurm_time_seconds("4h", "--time"), ConfigError);
  EXPECT_THROW(slurm_time_seconds("00:00:00", "--time"), ConfigError);
}

TEST(Slurm, ScriptCarriesTheSignalRequeueAndLauncher) {
  SiteProfile site;
  site.name = "test";
  site.launcher = "srun";
  site.setup = {"module load openmpi"};
  site.grace_s = 120;
  SubmitRequest r;
  r.spec = "/s/spec.yaml";
  r.job_name = "sdm-x";
  r.sdm = "/b/sdm";
  r.workdir = "/w d";  // quoted in the script
  r.log_dir = "/l";
  r.nodes = 2;
  r.ntasks_per_node = 5;
  r.gpus_per_node = 4;
  r.time = "01:00:00";
  r.partition = "gpu";
  const std::string t =
      "{{job_name}} {{tasks}} {{sbatch_lines}} {{setup_lines}} {{workdir}} {{launch}} {{sdm}} {{spec}} {{grace}} "
      "{{drain_grace}} {{time_s}}";
  const auto s = render_sbatch(t, r, site);
  EXPECT_EQ(s, "sdm-x --ntasks-per-node=5 #SBATCH --gpus-per-node=4\n#SBATCH --partition=gpu module load openmpi "
               "'/w d' srun --mpi=pmix /b/sdm /s/spec.yaml 120 80 3600");
  r.nodes = 1;
  site.launcher = "mpirun";
  site.mpirun_args = {"--bind-to", "none"};
  EXPECT_EQ(render_sbatch("{{tasks}} {{launch}}", r, site), "--ntasks=5 mpirun --bind-to none");
  r.grace_s = 3000;  // more than half the limit
  EXPECT_THROW(render_sbatch(t, r, site), ConfigError);
  r.grace_s = -1;
  EXPECT_THROW(render_sbatch("{{nonsense}}", r, site), ConfigError);
  r.ntasks_per_node = 0;
  EXPECT_THROW(render_sbatch(t, r, site), ConfigError);
}

TEST(Slurm, SiteProfilesAreValidated) {
  const auto site = SiteProfile::load(write("sdm_site.yaml", "launcher: mpirun\nmpirun_args: [--oversubscribe]\ngrace_s: 60\n"));
  EXPECT_EQ(site.launcher, "mpirun");
  EXPECT_EQ(site.grace_s, 60);
  EXPECT_THROW(SiteProfile::load(write("sdm_site_bad.yaml", "launcher: mpiexec\n")), ConfigError);
  EXPECT_THROW(SiteProfile::load(write("sdm_site_key.yaml", "lancher: srun\n")), ConfigError);
  EXPECT_THROW(SiteProfile::load(write("sdm_site_grace.yaml", "grace_s: 2\n")), ConfigError);
}

}  // namespace
}  // namespace sdm::cluster
