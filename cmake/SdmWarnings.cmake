# One interface target carries the project's warning set; every sdm target links it.
add_library(sdm_warnings INTERFACE)
target_compile_options(sdm_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
                           -Woverloaded-virtual -Wimplicit-fallthrough>
  $<$<BOOL:${SDM_WERROR}>:-Werror>)
add_library(sdm::warnings ALIAS sdm_warnings)

# OpenMPI's C++ bindings are dragged in by mpi.h (also through hdf5.h) and fail to link: skip them everywhere.
add_compile_definitions(OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)

# CI builds Release without -g (RelWithDebInfo objects are ~12 MB per torch TU and compile slower).
set(CMAKE_CXX_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "" FORCE)

# Helper: an sdm library target with the root include dir, the warning set and an sdm:: alias.
function(sdm_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(sdm_${name} STATIC ${ARG_SOURCES})
  add_library(sdm::${name} ALIAS sdm_${name})
  target_include_directories(sdm_${name} PUBLIC ${SDM_SOURCE_ROOT})
  target_link_libraries(sdm_${name} PRIVATE sdm::warnings)
  set_target_properties(sdm_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
