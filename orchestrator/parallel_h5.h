#pragma once
// Parallel HDF5: MPI-IO file access and collective transfers. Lives on the orchestrator side so that
// common/ (plain HDF5) never needs MPI.
#include <mpi.h>

#include <string>

#include "common/hdf5.h"

namespace sdm::orchestrator {

/// File-access property list using the MPI-IO driver on `comm` (every rank of comm opens the file).
h5::PlistId mpio_file_access(MPI_Comm comm);

/// Data-transfer property list asking for collective MPI-IO.
h5::PlistId collective_transfer();

/// What HDF5 actually did for the last transfer with `dxpl`: "contiguous-collective", "independent", ...
std::string actual_io_mode(hid_t dxpl);

}  // namespace sdm::orchestrator
