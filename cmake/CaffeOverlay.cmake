# Lays the project's Caffe extensions over the pinned Caffe source, the Caffe way: the changes to
# Caffe's own files are the patch series in cmake/patches/, applied once to the pristine extract;
# the project's proto messages and LayerParameter fields go into caffe.proto, its layer headers
# and sources are linked into include/caffe and src/caffe, so libcaffe, the `caffe` tool, pycaffe
# and NetSpec all know the FASSST layers. Re-configuring with nothing changed writes nothing, so
# it rebuilds nothing.
#
# In:  FASSST_CAFFE_TARBALL, FASSST_CAFFE_SHA256, FASSST_CAFFE_PACKAGE, FASSST_CAFFE_VERSION,
#      FASSST_LAYERS_DIR
# Out: FASSST_CAFFE_SOURCE_DIR (the overlaid tree, inside the build dir)

set(FASSST_CAFFE_SOURCE_DIR "${CMAKE_BINARY_DIR}/caffe")
set(_stamp "${FASSST_CAFFE_SOURCE_DIR}/.fassst-extracted")

# 1. Extract and patch once per (tarball, patch series). The stamp names the tarball's hash and
#    each patch's name and hash; any difference (a new, removed or edited patch, a new tarball, a
#    tree patched some other way) means a fresh extract, never a patch over a patched tree.
file(GLOB _patches CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/patches/*.patch")
list(SORT _patches)
set(_want "caffe ${FASSST_CAFFE_SHA256}\n")
foreach(_p IN LISTS _patches)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_p}")
  file(SHA256 "${_p}" _h)
  get_filename_component(_n "${_p}" NAME)
  string(APPEND _want "${_n} ${_h}\n")
endforeach()
set(_have "")
if(EXISTS "${_stamp}")
  file(READ "${_stamp}" _have)
endif()
if(NOT _have STREQUAL _want)
  find_program(FASSST_PATCH_EXECUTABLE patch)
  if(NOT FASSST_PATCH_EXECUTABLE)
    message(FATAL_ERROR "`patch` not found; it applies cmake/patches to the Caffe source. "
                        "Install it (apt-get install patch; scripts/setup.sh does).")
  endif()
  list(LENGTH _patches _np)
  message(STATUS "Extracting Caffe source into ${FASSST_CAFFE_SOURCE_DIR}, applying ${_np} patches")
  set(_tmp "${CMAKE_BINARY_DIR}/caffe-extract")
  file(REMOVE_RECURSE "${_tmp}" "${FASSST_CAFFE_SOURCE_DIR}")
  file(MAKE_DIRECTORY "${_tmp}")
  execute_process(COMMAND ${CMAKE_COMMAND} -E tar xzf "${FASSST_CAFFE_TARBALL}"
                  WORKING_DIRECTORY "${_tmp}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "Could not extract ${FASSST_CAFFE_TARBALL}; delete it so the next configure downloads it again.")
  endif()
  file(GLOB _top "${_tmp}/*")
  file(REMOVE_RECURSE "${_top}/.git")
  # tar restores the archive's dates; a fresh tree must be newer than objects built from an
  # earlier one, or a file that a changed series no longer patches would keep its stale object.
  file(GLOB_RECURSE _all LIST_DIRECTORIES false "${_top}/*")
  file(TOUCH_NOCREATE ${_all})
  # The sdist ships a caffe.pb.h made by an older protoc from the unmodified proto; it would
  # shadow the one the build generates (with the FASSST fields) for anything that puts include/
  # first.
  file(REMOVE "${_top}/include/caffe/proto/caffe.pb.h")
  foreach(_p IN LISTS _patches)
    get_filename_component(_n "${_p}" NAME)
    execute_process(
      COMMAND "${FASSST_PATCH_EXECUTABLE}" -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch
              --quiet -i "${_p}"
      WORKING_DIRECTORY "${_top}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "cmake/patches/${_n} does not apply to the pristine "
                          "${FASSST_CAFFE_PACKAGE}-${FASSST_CAFFE_VERSION} source:\n${_out}")
    endif()
  endforeach()
  file(COPY_FILE "${_top}/src/caffe/proto/caffe.proto" "${_top}/src/caffe/proto/caffe.proto.orig")
  file(RENAME "${_top}" "${FASSST_CAFFE_SOURCE_DIR}")
  file(REMOVE_RECURSE "${_tmp}")
  file(WRITE "${_stamp}" "${_want}")
endif()

# Writes content to path only when it differs, so make sees no change otherwise.
function(fassst_write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" _old)
    if(_old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${content}")
endfunction()

# 2. caffe.proto = upstream + the project's LayerParameter fields + the project's messages.
set(_proto_in "${FASSST_LAYERS_DIR}/proto/fassst.proto")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_proto_in}")
file(READ "${_proto_in}" _fassst_proto)
string(REGEX MATCH "// BEGIN LayerParameter fields\n(.*)// END LayerParameter fields" _m "${_fassst_proto}")
if(NOT _m)
  message(FATAL_ERROR "${_proto_in}: missing the '// BEGIN LayerParameter fields' ... '// END LayerParameter fields' block")
endif()
set(_fields "${CMAKE_MATCH_1}")
string(REPLACE "${_m}" "" _messages "${_fassst_proto}")
file(READ "${FASSST_CAFFE_SOURCE_DIR}/src/caffe/proto/caffe.proto.orig" _proto)
string(REPLACE "message LayerParameter {\n"
               "message LayerParameter {\n  // FASSST-Caffe fields (layers/proto/fassst.proto)\n${_fields}" _proto "${_proto}")
fassst_write_if_changed("${FASSST_CAFFE_SOURCE_DIR}/src/caffe/proto/caffe.proto"
                        "${_proto}\n// ---- FASSST-Caffe messages (layers/proto/fassst.proto) ----\n${_messages}")

# 3. Link the project's headers and sources into the tree. Links (not copies) so that editing a
#    layer rebuilds only that layer; the manifest removes links whose source was deleted.
file(GLOB_RECURSE _files CONFIGURE_DEPENDS RELATIVE "${FASSST_LAYERS_DIR}"
     "${FASSST_LAYERS_DIR}/include/*" "${FASSST_LAYERS_DIR}/src/*")
set(_manifest "${FASSST_CAFFE_SOURCE_DIR}/.fassst-links")
if(EXISTS "${_manifest}")
  file(STRINGS "${_manifest}" _old_links)
  foreach(_l IN LISTS _old_links)
    if(NOT _l IN_LIST _files)
      file(REMOVE "${FASSST_CAFFE_SOURCE_DIR}/${_l}")
    endif()
  endforeach()
endif()
foreach(_f IN LISTS _files)
  set(_dst "${FASSST_CAFFE_SOURCE_DIR}/${_f}")
  if(NOT IS_SYMLINK "${_dst}")
    if(EXISTS "${_dst}")
      message(FATAL_ERROR "layers/${_f} would replace an upstream Caffe file; rename it.")
    endif()
    get_filename_component(_d "${_dst}" DIRECTORY)
    file(MAKE_DIRECTORY "${_d}")
    file(CREATE_LINK "${FASSST_LAYERS_DIR}/${_f}" "${_dst}" SYMBOLIC)
  endif()
endforeach()
string(REPLACE ";" "\n" _list "${_files}")
fassst_write_if_changed("${_manifest}" "${_list}\n")
