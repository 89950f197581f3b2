#include "orchestrator/version.h"

#include <hdf5.h>

#include <sstream>

#include "cluster/mpi.h"
#include "sdm_build_info.h"
#include "worker/runtime.h"
#ifdef SDM_HAVE_NCCL
#include "cluster/nccl_collective.h"
#endif

namespace sdm::orchestrator {

std::string version_string() { return SDM_VERSION_STRING; }
std::string git_sha() { return SDM_GIT_SHA; }

std::string version_report() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
#ifdef H5_HAVE_PARALLEL
  const char* parallel = "yes";
#else
  const char* parallel = "no";
#endif
  std::ostringstream out;
  out << "sdm " << SDM_VERSION_STRING << " (git " << SDM_GIT_SHA << ")\n"
      << "  LibTorch " << worker::torch_version() << "\n"
      << "  MPI      " << cluster::mpi_library_version() << "\n"
      << "  HDF5     " << major << "." << minor << "." << release << " (parallel: " << parallel << ")\n"
#ifdef SDM_HAVE_NCCL
      << "  NCCL     " << cluster::nccl_version_string() << "\n"
#else
      << "  NCCL     not built (configure with SDM_WITH_CUDA=ON and the CUDA toolkit + NCCL)\n"
#endif
      << "  BLAS     " << worker::blas_summary() << "\n";
  return out.str();
}

}  // namespace sdm::orchestrator
