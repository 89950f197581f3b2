#include "orchestrator/doctor.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cluster/environment.h"
#include "cluster/mpi.h"
#include "cluster/mpi_collective.h"
#include "common/error.h"
#include "common/hdf5.h"
#include "common/text.h"
#include "orchestrator/parallel_h5.h"
#include "worker/runtime.h"
#ifdef SDM_HAVE_NCCL
#include "cluster/nccl_collective.h"
#endif

namespace sdm::orchestrator {
namespace {

using Clock = std::chrono::steady_clock;
using cluster::ReduceOp;

int comm_rank(MPI_Comm comm) {
  int r = 0;
  MPI_Comm_rank(comm, &r);
  return r;
}
int comm_size(MPI_Comm comm) {
  int s = 1;
  MPI_Comm_size(comm, &s);
  return s;
}

/// Gathers one string per rank on rank 0 (others get an empty vector).
std::vector<std::string> gather_strings(MPI_Comm comm, const std::string& mine) {
  const int size = comm_size(comm), rank = comm_rank(comm);
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(size)), offsets(static_cast<std::size_t>(size));
  cluster::check_mpi(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm), "MPI_Gather");
  int total = 0;
  for (int r = 0; r < size; ++r) {
    offsets[static_cast<std::size_t>(r)] = total;
    total += lens[static_cast<std::size_t>(r)];
  }
  std::string all(static_cast<std::size_t>(rank == 0 ? total : 0), '\0');
  cluster::check_mpi(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, 0, comm),
                     "MPI_Gatherv");
  std::vector<std::string> out;
  if (rank == 0)
    for (int r = 0; r < size; ++r)
      out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                               static_cast<std::size_t>(lens[static_cast<std::size_t>(r)])));
  return out;
}

std::string broadcast_string(MPI_Comm comm, std::string value) {
  long long len = static_cast<long long>(value.size());
  cluster::check_mpi(MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  value.resize(static_cast<std::size_t>(len));
  cluster::check_mpi(MPI_Bcast(value.data(), static_cast<int>(len), MPI_CHAR, 0, comm), "MPI_Bcast");
  return value;
}

/// True on every rank iff `ok` is true on every rank.
bool all_ranks(MPI_Comm comm, bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  cluster::check_mpi(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  return all == 1;
}

std::string format_rate(double bytes_per_s) { return human_bytes(bytes_per_s) + "/s"; }

}  // namespace

nlohmann::json describe_this_rank(MPI_Comm comm) {
  nlohmann::json j;
  j["rank"] = comm_rank(comm);
  j["host"] = cluster::host_name();
  const auto node = cluster::MpiComm::split_shared(comm);
  j["local_rank"] = node.rank();
  j["ranks_on_node"] = node.size();
  if (auto launcher = cluster::launcher_local_rank()) j["launcher_local_rank"] = *launcher;
  const auto visible = cluster::cuda_visible_devices();
  j["cuda_visible_devices"] = visible ? nlohmann::json(*visible) : nlohmann::json(nullptr);
#ifdef SDM_HAVE_NCCL
  std::string reason;
  const int gpus = cluster::cuda_device_count(&reason);
  j["gpus"] = gpus;
  j["gpu_note"] = gpus > 0 ? "" : reason;
  // what a sweep binds this rank to (worker::bind_gpu): the launcher's local rank, else the node-local MPI rank
  j["gpu"] = cluster::gpu_for_local_rank(cluster::launcher_local_rank().value_or(node.rank()), gpus);
#else
  j["gpu"] = -1;
  j["gpus"] = 0;
  j["gpu_note"] = "built without CUDA";
#endif
  j["torch_threads"] = worker::torch_threads();
  const auto blas = worker::blas_info();
  j["blas"] = worker::blas_summary();
  j["blas_library"] = blas.library;
  j["pid"] = static_cast<long long>(getpid());
  return j;
}

CheckResult check_allreduce(MPI_Comm comm, std::size_t bytes, int iterations) {
  CheckResult result;
  result.name = bytes % (1u << 20) == 0 ? "mpi-allreduce-" + std::to_string(bytes >> 20) + "MiB"
                                        : "mpi-allreduce-" + std::to_string(bytes) + "B";
  cluster::MpiCollective coll(comm);
  const int n_ranks = coll.size();
  const std::size_t count = bytes / sizeof(float);
  std::vector<float> buf(count);
  // Small integers: every partial sum is exactly representable, so "exact" means bitwise equal.
  auto fill = [&] {
    for (std::size_t i = 0; i < count; ++i) buf[i] = static_cast<float>(i % 1024 + static_cast<std::size_t>(coll.rank()));
  };
  auto count_wrong = [&] {
    std::int64_t wrong = 0;
    const float offset = static_cast<float>(n_ranks) * static_cast<float>(n_ranks - 1) / 2.0f;
    for (std::size_t i = 0; i < count; ++i)
      if (buf[i] != static_cast<float>(n_ranks) * static_cast<float>(i % 1024) + offset) ++wrong;
    return wrong;
  };

  std::int64_t wrong = 0;
  double seconds = 0;
  fill();
  coll.allreduce(std::span<float>(buf), ReduceOp::kSum);  // warm-up (connection setup), verified too
  wrong += count_wrong();
  for (int it = 0; it < iterations; ++it) {
    fill();
    coll.barrier();
    const auto t0 = Clock::now();
    coll.allreduce(std::span<float>(buf), ReduceOp::kSum);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    wrong += count_wrong();
  }
  coll.allreduce(std::span<std::int64_t>(&wrong, 1), ReduceOp::kSum);
  coll.allreduce(std::span<double>(&seconds, 1), ReduceOp::kMax);  // the slowest rank sets the pace

  const double algbw = seconds > 0 ? static_cast<double>(bytes) * iterations / seconds : 0.0;
  const double busbw = n_ranks > 1 ? algbw * 2.0 * (n_ranks - 1) / n_ranks : algbw;
  result.pass = wrong == 0;
  std::ostringstream d;
  d << (result.pass ? "exact" : "WRONG") << " float32 sum over " << n_ranks << " rank(s)";
  if (!result.pass) d << " (" << wrong << " wrong elements)";
  d << "; " << iterations << " iters, " << std::fixed;
  d.precision(3);
  d << seconds * 1e3 / iterations << " ms each; ";
  if (n_ranks > 1) d << "algbw " << format_rate(algbw) << ", busbw " << format_rate(busbw);
  else d << "bandwidth not measured with one rank";
  result.detail = d.str();
  result.figures = {{"bytes", bytes},        {"iterations", iterations}, {"wrong_elements", wrong},
                    {"seconds_per_iter", seconds / iterations},          {"algbw_bytes_per_s", algbw},
                    {"busbw_bytes_per_s", busbw}};
  return result;
}

CheckResult check_parallel_hdf5(MPI_Comm comm, const std::string& scratch) {
  CheckResult result;
  result.name = "hdf5-parallel-io";
  const int rank = comm_rank(comm), size = comm_size(comm);
  constexpr hsize_t kColumns = 8192;  // 64 KiB of float64 per rank

  // Rank 0 makes a private directory and tells the others; an empty name means it could not.
  std::string dir, error;
  if (rank == 0) {
    const auto path = std::filesystem::path(scratch) /
                      ("sdm-doctor-" + cluster::host_name() + "-" + std::to_string(getpid()));
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) error = "cannot create " + path.string() + ": " + ec.message();
    else dir = path.string();
  }
  dir = broadcast_string(comm, dir);
  if (dir.empty()) {
    result.detail = rank == 0 ? error : "rank 0 could not create the scratch directory";
    return result;
  }
  const std::string file = dir + "/check.h5";

  std::int64_t wrong = 0;
  std::string mode;
  try {
    auto fapl = mpio_file_access(comm);
    {
      auto f = h5::File::create(file, fapl.get());
      hsize_t dims[2] = {static_cast<hsize_t>(size), kColumns};
      h5::SpaceId fspace(h5::check(H5Screate_simple(2, dims, nullptr), file, "rows", "H5Screate_simple"));
      h5::DatasetId ds(h5::check(H5Dcreate2(f.id(), "rows", H5T_NATIVE_DOUBLE, fspace.get(), H5P_DEFAULT,
                                            h5::reproducible_dataset_plist().get(), H5P_DEFAULT),
                                 file, "rows", "cannot create dataset"));
      hsize_t start[2] = {static_cast<hsize_t>(rank), 0}, count[2] = {1, kColumns};
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
      h5::SpaceId mspace(H5Screate_simple(2, count, nullptr));
      std::vector<double> row(kColumns);
      for (hsize_t j = 0; j < kColumns; ++j) row[j] = rank * 1e6 + static_cast<double>(j) + 0.25;
      auto dxpl = collective_transfer();
      h5::check(H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, mspace.get(), fspace.get(), dxpl.get(), row.data()), file,
                "rows", "collective write failed");
      mode = actual_io_mode(dxpl.get());
      f.set_attr("ranks", static_cast<std::int64_t>(size));
      ds.reset();
      f.close();
    }
    {
      // Every rank reads every row back: proves the data reached the shared file, not just a local cache.
      auto f = h5::File::open(file, false, fapl.get());
      const auto all = f.read<double>("rows");
      if (all.size() != static_cast<std::size_t>(size) * kColumns) wrong += static_cast<std::int64_t>(kColumns);
      for (int r = 0; r < size && all.size() == static_cast<std::size_t>(size) * kColumns; ++r)
        for (hsize_t j = 0; j < kColumns; ++j)
          if (all[static_cast<std::size_t>(r) * kColumns + j] != r * 1e6 + static_cast<double>(j) + 0.25) ++wrong;
      if (f.attr_int("ranks") != size) ++wrong;
    }
  } catch (const std::exception& e) {
    error = e.what();
    wrong = -1;
  }
  const bool ok = all_ranks(comm, wrong == 0);
  MPI_Barrier(comm);
  if (rank == 0) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  result.pass = ok && mode == "contiguous-collective";
  std::ostringstream d;
  if (!error.empty()) d << "failed: " << error;
  else if (!ok) d << "read-back differs on some rank(s)";
  else d << "collective write + read-back of " << size << " x " << human_bytes(kColumns * 8.0) << " rows in " << scratch
         << "; io mode " << mode;
  if (ok && mode != "contiguous-collective") d << " (expected contiguous-collective)";
  result.detail = d.str();
  result.figures = {{"io_mode", mode}, {"scratch", scratch}};
  return result;
}

CheckResult check_launch_security(const std::string& munge_socket) {
  CheckResult result;
  result.name = "mpi-launch";
  result.pass = true;
  bool refused = false;
  std::error_code ec;
  if (std::filesystem::exists(munge_socket, ec)) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", munge_socket.c_str());
    refused = fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0;
    if (fd >= 0) ::close(fd);
  }
  result.detail = refused ? "WARNING: " + munge_socket + " refuses connections (munge installed, munged not "
                            "running): PMIx's munge plugin then retries for ~2.3 s at every mpirun start unless "
                            "PMIX_MCA_psec=^munge is set where mpirun runs (tools/mpi_env.sh sets it); on a "
                            "cluster, start munged"
                          : "no munge stall at launch";
  result.figures = {{"warning", refused}};
  return result;
}

int run_doctor(const DoctorOptions& options, MPI_Comm comm) {
  const int rank = comm_rank(comm), size = comm_size(comm);
  std::string scratch = options.scratch;
  if (scratch.empty()) {
    const char* env = std::getenv("SDM_SCRATCH");
    scratch = env && *env ? env : std::filesystem::temp_directory_path().string();
  }

  const auto ranks = gather_strings(comm, describe_this_rank(comm).dump());
  int thread_level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&thread_level);

  std::vector<CheckResult> checks;
  CheckResult threads;
  threads.name = "mpi-thread-level";
  threads.pass = thread_level >= MPI_THREAD_FUNNELED;
  threads.detail = "provided " + cluster::MpiSession::thread_level_name(thread_level) +
                   (thread_level == MPI_THREAD_MULTIPLE ? "" : " (sdm keeps all MPI calls on one thread)");
  checks.push_back(threads);
  checks.push_back(check_allreduce(comm, std::size_t{1} << 20, 20));
  checks.push_back(check_allreduce(comm, std::size_t{64} << 20, 3));
  checks.push_back(check_parallel_hdf5(comm, scratch));
  checks.push_back(check_launch_security());

  bool all_pass = true;
  for (const auto& c : checks) all_pass = all_pass && c.pass;

  if (rank == 0) {
    std::vector<nlohmann::json> rank_info;
    for (const auto& s : ranks) rank_info.push_back(nlohmann::json::parse(s));
    if (options.json) {
      nlohmann::json out;
      out["ranks"] = rank_info;
      out["size"] = size;
      out["pass"] = all_pass;
      for (const auto& c : checks)
        out["checks"].push_back({{"name", c.name}, {"pass", c.pass}, {"detail", c.detail}, {"figures", c.figures}});
      std::cout << out.dump(2) << std::endl;
    } else {
      std::printf("sdm doctor: %d rank(s)\n", size);
      std::printf("%-5s %-20s %-6s %-5s %-5s %-8s %s\n", "rank", "host", "local", "gpus", "gpu", "threads", "blas");
      std::string gpu_note;
      for (const auto& r : rank_info) {
        const int gpu = r["gpu"].get<int>();
        std::printf("%-5d %-20s %-6d %-5d %-5s %-8d %s\n", r["rank"].get<int>(), r["host"].get<std::string>().c_str(),
                    r["local_rank"].get<int>(), r["gpus"].get<int>(), gpu >= 0 ? std::to_string(gpu).c_str() : "-",
                    r["torch_threads"].get<int>(),
                    r["blas"].get<std::string>().c_str());
        if (r["gpus"].get<int>() == 0 && gpu_note.empty()) gpu_note = r["gpu_note"].get<std::string>();
      }
      if (!gpu_note.empty()) std::printf("note: no GPU on some ranks (%s)\n", gpu_note.c_str());
      for (const auto& c : checks)
        std::printf("%s  %-20s %s\n", c.pass ? "PASS" : "FAIL", c.name.c_str(), c.detail.c_str());
      std::printf("doctor: %s\n", all_pass ? "PASS" : "FAIL");
    }
    std::fflush(stdout);
  }
  return all_pass ? 0 : 1;
}

}  // namespace sdm::orchestrator
