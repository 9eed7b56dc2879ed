# Compiles every project CUDA file, and every project layer/test/tool .cpp, against Caffe's headers in
# GPU mode (CPU_ONLY undefined), object only. Nothing runs the result here; the point is that
# CUDA code that does not compile fails the CPU build and CI, not a later GPU session.
#
# Where it cannot run (no nvcc, no cuBLAS/cuRAND headers) the configure says so with a WARNING:
# that build does not compile the project's CUDA code at all. Whatever happens, one line saying
# whether the CUDA code is compiled goes to FASSST_CUDA_STATUS_FILE, which scripts/setup.sh and
# scripts/test.sh print.

set(FASSST_CUDA_STATUS_FILE "${CMAKE_BINARY_DIR}/fassst-cuda-status.txt")
function(_fassst_cuda_status line)
  file(CONFIGURE OUTPUT "${FASSST_CUDA_STATUS_FILE}" CONTENT "${line}\n" @ONLY)
endfunction()
function(_fassst_cuda_not_checked why)
  message(WARNING "The project's CUDA code is NOT compiled in this build: ${why}. A CUDA error "
    "would show only on a GPU machine. Install the CUDA toolkit (nvcc, cuBLAS and cuRAND "
    "headers; nvcc is searched on PATH, in /usr/local/cuda/bin and in $CUDA_HOME/bin) and "
    "re-configure, or configure with -DFASSST_NVCC_CHECK=OFF to say the skip is intended.")
  _fassst_cuda_status("CUDA: NOT compiled (${why}) - the GPU code was not checked")
endfunction()

if(FASSST_CUDA)
  _fassst_cuda_status("CUDA: compiled by the GPU build (-DFASSST_CUDA=ON, sm ${FASSST_CUDA_ARCH_BIN})")
  return()
endif()
if(NOT FASSST_NVCC_CHECK)
  message(STATUS "FASSST_NVCC_CHECK=OFF: the project's CUDA code is not compiled in this build")
  _fassst_cuda_status("CUDA: NOT compiled (-DFASSST_NVCC_CHECK=OFF) - the GPU code was not checked")
  return()
endif()
find_program(FASSST_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
if(NOT FASSST_NVCC)
  _fassst_cuda_not_checked("no CUDA toolkit found: nvcc is missing")
  return()
endif()
get_filename_component(_cuda_root "${FASSST_NVCC}" DIRECTORY)
get_filename_component(_cuda_root "${_cuda_root}" DIRECTORY)
if(NOT EXISTS "${_cuda_root}/include/cublas_v2.h" OR NOT EXISTS "${_cuda_root}/include/curand.h")
  _fassst_cuda_not_checked("${FASSST_NVCC} found, but no cublas_v2.h and curand.h under ${_cuda_root}/include")
  return()
endif()
find_package(HDF5 COMPONENTS HL QUIET)

set(_flags -std=c++17 -Xcompiler=-fPIC -DGTEST_USE_OWN_TR1_TUPLE -w)
foreach(_sm ${FASSST_CUDA_ARCH_BIN})
  list(APPEND _flags -gencode=arch=compute_${_sm},code=sm_${_sm})
endforeach()
set(_incs -I${CMAKE_BINARY_DIR}/caffe-build/include -I${CMAKE_BINARY_DIR}/caffe-build
          -I${FASSST_CAFFE_SOURCE_DIR}/include -I${FASSST_CAFFE_SOURCE_DIR}/src)
foreach(_d ${HDF5_INCLUDE_DIRS})
  list(APPEND _incs -I${_d})
endforeach()

file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS
     "${FASSST_LAYERS_DIR}/src/*.cu" "${FASSST_LAYERS_DIR}/src/*.cpp" "${FASSST_LAYERS_DIR}/test/*.cpp"
     "${FASSST_LAYERS_DIR}/tools/*.cpp")
set(_objs "")
foreach(_src ${_srcs})
  file(RELATIVE_PATH _rel "${FASSST_LAYERS_DIR}" "${_src}")
  set(_obj "${CMAKE_BINARY_DIR}/nvcc-check/${_rel}.o")
  get_filename_component(_odir "${_obj}" DIRECTORY)
  file(MAKE_DIRECTORY "${_odir}")
  add_custom_command(OUTPUT "${_obj}"
    COMMAND "${FASSST_NVCC}" ${_flags} ${_incs} -MD -MF "${_obj}.d" -c "${_src}" -o "${_obj}"
    DEPENDS "${_src}" DEPFILE "${_obj}.d"
    COMMENT "nvcc (GPU mode, compile only) ${_rel}" VERBATIM)
  list(APPEND _objs "${_obj}")
endforeach()
add_custom_target(fassst_nvcc_check ALL DEPENDS ${_objs})
add_dependencies(fassst_nvcc_check proto)
list(LENGTH _objs _n)
message(STATUS "nvcc check: ${_n} project files compiled in GPU mode by ${FASSST_NVCC} (target fassst_nvcc_check)")
_fassst_cuda_status("CUDA: compiled by the nvcc check (${FASSST_NVCC}, sm ${FASSST_CUDA_ARCH_BIN}, ${_n} files, target fassst_nvcc_check)")
