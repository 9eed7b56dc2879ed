# Compiles every project CUDA file, and every project layer/test/tool .cpp, against Caffe's headers in
# GPU mode (CPU_ONLY undefined), object only. Nothing runs the result here; the point is that
# CUDA code that does not compile fails the CPU build and CI, not a later GPU session.

find_program(FASSST_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
if(NOT FASSST_NVCC)
  message(STATUS "nvcc not found: skipping the GPU-mode compile check of the project's CUDA code")
  return()
endif()
get_filename_component(_cuda_root "${FASSST_NVCC}" DIRECTORY)
get_filename_component(_cuda_root "${_cuda_root}" DIRECTORY)
if(NOT EXISTS "${_cuda_root}/include/cublas_v2.h" OR NOT EXISTS "${_cuda_root}/include/curand.h")
  message(STATUS "cuBLAS/cuRAND headers not under ${_cuda_root}/include: skipping the nvcc check")
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
