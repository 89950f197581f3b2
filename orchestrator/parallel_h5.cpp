#include "orchestrator/parallel_h5.h"

namespace sdm::orchestrator {

h5::PlistId mpio_file_access(MPI_Comm comm) {
  h5::init();
  h5::PlistId fapl(h5::check(H5Pcreate(H5P_FILE_ACCESS), "", "", "H5Pcreate(file access)"));
  h5::check(H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL), "", "", "H5Pset_fapl_mpio");
  return fapl;
}

h5::PlistId collective_transfer() {
  h5::PlistId dxpl(h5::check(H5Pcreate(H5P_DATASET_XFER), "", "", "H5Pcreate(transfer)"));
  h5::check(H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE), "", "", "H5Pset_dxpl_mpio");
  return dxpl;
}

std::string actual_io_mode(hid_t dxpl) {
  H5D_mpio_actual_io_mode_t mode{};
  if (H5Pget_mpio_actual_io_mode(dxpl, &mode) < 0) return "unknown";
  switch (mode) {
    case H5D_MPIO_NO_COLLECTIVE: return "independent";
    case H5D_MPIO_CHUNK_INDEPENDENT: return "chunk-independent";
    case H5D_MPIO_CHUNK_COLLECTIVE: return "chunk-collective";
    case H5D_MPIO_CHUNK_MIXED: return "chunk-mixed";
    case H5D_MPIO_CONTIGUOUS_COLLECTIVE: return "contiguous-collective";
  }
  return "unknown";
}

}  // namespace sdm::orchestrator
