# Every dependency comes through find_package (or find_path/find_library where upstream ships no config).

find_package(MPI REQUIRED COMPONENTS C)

# Parallel HDF5 is not optional: the consolidated store is written collectively through MPI-IO.
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${HDF5_INCLUDE_DIRS} ${MPI_C_INCLUDE_DIRS})
set(CMAKE_REQUIRED_DEFINITIONS -DOMPI_SKIP_MPICXX=1)
check_symbol_exists(H5_HAVE_PARALLEL "H5pubconf.h" SDM_HDF5_HAS_PARALLEL)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_DEFINITIONS)
if(NOT HDF5_IS_PARALLEL OR NOT SDM_HDF5_HAS_PARALLEL)
  message(FATAL_ERROR
    "sdm needs a parallel (MPI) build of HDF5, but the HDF5 found at ${HDF5_INCLUDE_DIRS} has "
    "H5_HAVE_PARALLEL off. On Debian: apt-get install libhdf5-openmpi-dev (tools/install-deps.sh); "
    "elsewhere point HDF5_ROOT at an MPI-enabled HDF5 (e.g. 'module load hdf5/parallel').")
endif()
if(NOT TARGET hdf5::hdf5)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  set_target_properties(hdf5::hdf5 PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${HDF5_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "${HDF5_C_LIBRARIES}"
    INTERFACE_COMPILE_DEFINITIONS "${HDF5_DEFINITIONS}")
endif()

find_package(Torch REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)
# The LLM path's tokenizer.json split regexes (\p{L}, lookahead) run on PCRE2 (Debian ships a pkg-config file).
# SentencePiece models are read by our own code: Debian's libsentencepiece exports a private protobuf-lite that
# collides with LibTorch's libprotobuf (the process crashes while loading).
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
if(SDM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# yaml-cpp 0.7 exports the un-namespaced target "yaml-cpp"; later versions add yaml-cpp::yaml-cpp.
if(TARGET yaml-cpp::yaml-cpp)
  set(SDM_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(SDM_YAML_TARGET yaml-cpp)
endif()

# --- CUDA + NCCL (optional). AUTO: on when nvcc and nccl.h are found. ---------------------------
set(SDM_HAVE_NCCL_BACKEND OFF)
if(NOT SDM_WITH_CUDA STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h
            HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME} ${CUDAToolkit_INCLUDE_DIRS}
                  $ENV{CUDA_HOME} /usr/local/cuda
            PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME} ${CUDAToolkit_LIBRARY_DIR}
                     $ENV{CUDA_HOME} /usr/local/cuda
               PATH_SUFFIXES lib64 lib)
  if(CUDAToolkit_FOUND AND CUDAToolkit_NVCC_EXECUTABLE AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    add_library(NCCL::nccl SHARED IMPORTED)
    set_target_properties(NCCL::nccl PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}"
                          INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
    set(SDM_HAVE_NCCL_BACKEND ON)
    message(STATUS "NCCL backend: ${NCCL_LIBRARY} (CUDA ${CUDAToolkit_VERSION})")
  elseif(SDM_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "SDM_WITH_CUDA=ON but CUDA (nvcc) or NCCL (nccl.h/libnccl) was not found: "
                        "set CUDAToolkit_ROOT and NCCL_ROOT, or SDM_WITH_CUDA=OFF.")
  else()
    message(STATUS "NCCL backend: off (nvcc or nccl.h not found)")
  endif()
endif()

# Does the LibTorch we build against have CUDA tensors? (Debian's does not; a PyTorch-bundled one may.)
set(SDM_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR TARGET c10_cuda)
  set(SDM_TORCH_HAS_CUDA ON)
endif()
