# The git sha is refreshed at build time (not only at configure time), so `sdm --version` never lies.
set(SDM_VERSION_HEADER ${CMAKE_BINARY_DIR}/generated/sdm_build_info.h)
add_custom_target(sdm_build_info
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DOUT=${SDM_VERSION_HEADER}
          -DVERSION=${PROJECT_VERSION} -DTORCH_VERSION=${Torch_VERSION}
          -P ${CMAKE_SOURCE_DIR}/cmake/WriteBuildInfo.cmake
  BYPRODUCTS ${SDM_VERSION_HEADER}
  COMMENT "" VERBATIM)
