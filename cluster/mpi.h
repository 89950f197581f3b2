#pragma once
// RAII over MPI: process-wide init/finalize, owned communicators, error checking.
#include <mpi.h>

#include <string>

namespace sdm::cluster {

/// Throws ClusterError("what: MPI's error string") when rc != MPI_SUCCESS.
void check_mpi(int rc, const char* what);

/// Initialises MPI for the process (requesting MPI_THREAD_MULTIPLE; falling back to what the library
/// provides, in which case callers keep all MPI calls on one thread) and finalises it on destruction.
/// If MPI is already initialised (a test main did it), it neither re-initialises nor finalises.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  ~MpiSession();

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// MPI_THREAD_SINGLE .. MPI_THREAD_MULTIPLE as provided.
  int thread_level() const { return thread_level_; }
  static std::string thread_level_name(int level);

 private:
  bool owns_ = false;
  int rank_ = 0;
  int size_ = 1;
  int thread_level_ = MPI_THREAD_SINGLE;
};

/// Owns a communicator (from MPI_Comm_dup / MPI_Comm_split) and frees it on destruction.
class MpiComm {
 public:
  MpiComm() = default;
  /// Duplicates `parent` so traffic on the copy never matches messages on the original.
  static MpiComm dup(MPI_Comm parent);
  static MpiComm split(MPI_Comm parent, int color, int key);
  /// Ranks that share memory (one node).
  static MpiComm split_shared(MPI_Comm parent);
  MpiComm(MpiComm&& other) noexcept : comm_(other.comm_) { other.comm_ = MPI_COMM_NULL; }
  MpiComm& operator=(MpiComm&& other) noexcept;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  ~MpiComm();

  MPI_Comm get() const { return comm_; }
  int rank() const;
  int size() const;

 private:
  explicit MpiComm(MPI_Comm comm) : comm_(comm) {}
  MPI_Comm comm_ = MPI_COMM_NULL;
};

/// The MPI library's own version line (MPI_Get_library_version), first line only.
std::string mpi_library_version();

}  // namespace sdm::cluster
