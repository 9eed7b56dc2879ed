# Lays the project's Caffe extensions over the pinned Caffe source, the Caffe way: the project's
# proto messages and LayerParameter fields go into caffe.proto, its layer headers and sources are
# linked into include/caffe and src/caffe, so libcaffe, the `caffe` tool, pycaffe and NetSpec all
# know the FASSST layers. Every step is idempotent and writes only what changed, so a re-configure
# with nothing changed rebuilds nothing.
#
# In:  FASSST_CAFFE_TARBALL, FASSST_CAFFE_SHA256, FASSST_LAYERS_DIR
# Out: FASSST_CAFFE_SOURCE_DIR (the overlaid tree, inside the build dir)

set(FASSST_CAFFE_SOURCE_DIR "${CMAKE_BINARY_DIR}/caffe")
set(_stamp "${FASSST_CAFFE_SOURCE_DIR}/.fassst-extracted")

# 1. Extract once per tarball (the stamp holds its hash).
set(_have "")
if(EXISTS "${_stamp}")
  file(READ "${_stamp}" _have)
endif()
if(NOT _have STREQUAL FASSST_CAFFE_SHA256)
  message(STATUS "Extracting Caffe source into ${FASSST_CAFFE_SOURCE_DIR}")
  set(_tmp "${CMAKE_BINARY_DIR}/caffe-extract")
  file(REMOVE_RECURSE "${_tmp}" "${FASSST_CAFFE_SOURCE_DIR}")
  file(MAKE_DIRECTORY "${_tmp}")
  execute_process(COMMAND ${CMAKE_COMMAND} -E tar xzf "${FASSST_CAFFE_TARBALL}"
                  WORKING_DIRECTORY "${_tmp}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "Could not extract ${FASSST_CAFFE_TARBALL}; delete it so the next configure downloads it again.")
  endif()
  file(GLOB _top "${_tmp}/*")
  file(RENAME "${_top}" "${FASSST_CAFFE_SOURCE_DIR}")
  file(REMOVE_RECURSE "${_tmp}" "${FASSST_CAFFE_SOURCE_DIR}/.git")
  file(COPY_FILE "${FASSST_CAFFE_SOURCE_DIR}/src/caffe/proto/caffe.proto"
                 "${FASSST_CAFFE_SOURCE_DIR}/src/caffe/proto/caffe.proto.orig")
  file(WRITE "${_stamp}" "${FASSST_CAFFE_SHA256}")
endif()
# The sdist ships a caffe.pb.h made by an older protoc from the unmodified proto; it would shadow
# the one the build generates (with the FASSST fields) for anything that puts include/ first.
file(REMOVE "${FASSST_CAFFE_SOURCE_DIR}/include/caffe/proto/caffe.pb.h")

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

# Replaces `old` by `new` in a Caffe source file; fails loudly if neither is there, so a changed
# upstream tree cannot silently skip a fix.
function(fassst_patch path old new)
  if(new STREQUAL "")
    message(FATAL_ERROR "fassst_patch(${path}): the replacement must be non-empty, it marks the patch as applied")
  endif()
  set(_f "${FASSST_CAFFE_SOURCE_DIR}/${path}")
  file(READ "${_f}" _src)
  string(FIND "${_src}" "${new}" _done)
  if(NOT _done EQUAL -1)
    return()
  endif()
  string(FIND "${_src}" "${old}" _at)
  if(_at EQUAL -1)
    message(FATAL_ERROR "Overlay patch for ${path} no longer applies: text not found:\n${old}")
  endif()
  string(REPLACE "${old}" "${new}" _src "${_src}")
  fassst_write_if_changed("${_f}" "${_src}")
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

# 4. Fixes the pinned tree needs for a CUDA 13 build (listed in docs/DESIGN.md). Applied to every
#    tree: each is inside #ifndef CPU_ONLY code, so the CPU build compiles the same code as before.
#  (a) cudaDeviceProp lost clockRate, deviceOverlap and kernelExecTimeoutEnabled in CUDA 13.
fassst_patch(src/caffe/common.cpp
  "  LOG(INFO) << \"Clock rate:                    \" << prop.clockRate;\n"
  "  // FASSST overlay: CUDA 13 removed clockRate, deviceOverlap, kernelExecTimeoutEnabled.\n")
fassst_patch(src/caffe/common.cpp
  "  LOG(INFO) << \"Concurrent copy and execution: \"\n      << (prop.deviceOverlap ? \"Yes\" : \"No\");\n"
  "  LOG(INFO) << \"Async engines:                 \" << prop.asyncEngineCount;\n")
fassst_patch(src/caffe/common.cpp
  "  LOG(INFO) << \"Kernel execution timeout:      \"\n      << (prop.kernelExecTimeoutEnabled ? \"Yes\" : \"No\");\n"
  "  // (kernelExecTimeoutEnabled is gone in CUDA 13 too)\n")
#  (b) The fork's CPU-only layers declare GPU methods and define them only under CPU_ONLY (as
#      stubs), so a GPU link fails. Give them GPU methods that run their CPU code: correct, and
#      Caffe syncs the blobs; slow, which is why the project has its own CUDA code where it
#      matters: ReLU6, which MobileNetV2 runs 35 times, has real kernels in the project's
#      layers/src/caffe/layers/relu6_layer.cu (added beside the fork's .cpp, replacing nothing).
foreach(_layer hardsigmoid:HardSigmoidLayer hardswish:HardSwishLayer maxunpool:MaxUnPoolLayer
               pixelshuffle:PixelShuffleLayer upsample:UpsampleLayer)
  string(REPLACE ":" ";" _p "${_layer}")
  list(GET _p 0 _file)
  list(GET _p 1 _class)
  file(READ "${FASSST_CAFFE_SOURCE_DIR}/src/caffe/layers/${_file}_layer.cpp" _src)
  string(REGEX MATCH "#ifdef CPU_ONLY[ \t\n]*STUB_GPU\\(${_class}\\);[ \t\n]*#endif" _stub "${_src}")
  if(_stub)
    fassst_patch(src/caffe/layers/${_file}_layer.cpp "${_stub}"
      "#ifdef CPU_ONLY\nSTUB_GPU(${_class});\n#else\nGPU_RUNS_CPU(${_class});  // FASSST overlay\n#endif")
  else()
    fassst_patch(src/caffe/layers/${_file}_layer.cpp "GPU_RUNS_CPU(${_class});" "GPU_RUNS_CPU(${_class});")
  endif()
endforeach()
#      A tree patched before ReLU6 had its .cu gets the fork's stub back (else two definitions).
file(READ "${FASSST_CAFFE_SOURCE_DIR}/src/caffe/layers/relu6_layer.cpp" _src)
string(REPLACE "#else\nGPU_RUNS_CPU(ReLU6Layer);  // FASSST overlay\n" "" _src "${_src}")
fassst_write_if_changed("${FASSST_CAFFE_SOURCE_DIR}/src/caffe/layers/relu6_layer.cpp" "${_src}")
#      ProposalLayer has a CUDA forward but no GPU backward; its backward is a no-op on CPU too.
fassst_patch(src/caffe/layers/proposal_layer.cu
  "INSTANTIATE_LAYER_GPU_FUNCS(ProposalLayer);"
  "template <typename Dtype>  // FASSST overlay: the fork left Backward_gpu undefined.\nvoid ProposalLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,\n    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {}\n\nINSTANTIATE_LAYER_GPU_FUNCS(ProposalLayer);")
#      GPU_RUNS_CPU is defined in the project's caffe/util/gpu_runs_cpu.hpp, included by device_alternate.
fassst_patch(include/caffe/util/device_alternate.hpp
  "#endif  // CAFFE_UTIL_DEVICE_ALTERNATE_H_"
  "#include \"caffe/util/gpu_runs_cpu.hpp\"  // FASSST overlay\n\n#endif  // CAFFE_UTIL_DEVICE_ALTERNATE_H_")

# 5. Empty blobs. A batch can hold zero ROIs (no instance above threshold), so (0, C, H, W) blobs
#    must flow through the net. Upstream never allocates a zero-count blob, and the first
#    cpu_data() on one fails `CHECK(data_)`, in any layer and in pycaffe. Give it a zero-byte
#    buffer instead: every layer's loops then run zero times.
fassst_patch(src/caffe/blob.cpp
  "  if (count_ > capacity_) {\n    capacity_ = count_;"
  "  if (count_ > capacity_ || !data_) {  // FASSST overlay: zero-count blobs get a buffer\n    capacity_ = count_;")

# 6. BatchNorm over zero ROIs (the mask tail normalises over the batch's ROIs; a batch or an
#    image can have none). Upstream divides count() by N in integer arithmetic (SIGFPE at N = 0)
#    and would average over nothing. Sizes come from count(2) instead, and the passes return at
#    once on an empty blob, leaving the running statistics untouched.
foreach(_f src/caffe/layers/batch_norm_layer.cpp src/caffe/layers/batch_norm_layer.cu)
  fassst_patch(${_f} "bottom[0]->count()/(channels_*bottom[0]->shape(0))"
                     "bottom[0]->count(2) /* FASSST overlay: N may be 0 */")
endforeach()
fassst_patch(src/caffe/layers/batch_norm_layer.cpp "bottom[0]->count()/(bottom[0]->shape(0)*channels_)"
                                                   "bottom[0]->count(2) /* FASSST overlay: spatial size */")
foreach(_pass cpu gpu)
  if(_pass STREQUAL "cpu")
    set(_f src/caffe/layers/batch_norm_layer.cpp)
  else()
    set(_f src/caffe/layers/batch_norm_layer.cu)
  endif()
  set(_fwd "void BatchNormLayer<Dtype>::Forward_${_pass}(const vector<Blob<Dtype>*>& bottom,\n    const vector<Blob<Dtype>*>& top) {\n")
  fassst_patch(${_f} "${_fwd}" "${_fwd}  if (bottom[0]->count() == 0) return;  // FASSST overlay: zero ROIs\n")
  set(_bwd "void BatchNormLayer<Dtype>::Backward_${_pass}(const vector<Blob<Dtype>*>& top,\n    const vector<bool>& propagate_down,\n    const vector<Blob<Dtype>*>& bottom) {\n")
  fassst_patch(${_f} "${_bwd}" "${_bwd}  if (bottom[0]->count() == 0) return;  // FASSST overlay: zero ROIs\n")
endforeach()

# 7. Elementwise math on empty blobs. Without MKL, caffe_mul/add/sub/div/powx/sqr/exp/... are
#    loops that CHECK n > 0, so e.g. ScaleLayer's backward aborts on a batch with zero ROIs.
#    n = 0 is a valid empty loop; the pointer checks stay for n > 0.
fassst_patch(include/caffe/util/mkl_alternate.hpp "CHECK_GT(n, 0); CHECK(a); CHECK(y);"
  "CHECK_GE(n, 0); if (n == 0) return; CHECK(a); CHECK(y);  /* FASSST overlay: empty blobs */")
fassst_patch(include/caffe/util/mkl_alternate.hpp "CHECK_GT(n, 0); CHECK(a); CHECK(b); CHECK(y);"
  "CHECK_GE(n, 0); if (n == 0) return; CHECK(a); CHECK(b); CHECK(y);  /* FASSST overlay: empty blobs */")

# 8. im2col / col2im at stride_w 1, dilation_w 1 by whole runs instead of one bounds test per
#    element (caffe/util/im2col_rows.hpp says why: the mask tail's convolutions); same values.
fassst_patch(src/caffe/util/im2col.cpp "#include \"caffe/util/im2col.hpp\"\n"
  "#include \"caffe/util/im2col.hpp\"\n#include \"caffe/util/im2col_rows.hpp\"  // FASSST overlay\n")
fassst_patch(src/caffe/util/im2col.cpp
  "    Dtype* data_col) {\n  const int output_h = (height + 2 * pad_h -\n"
  "    Dtype* data_col) {\n  if (im2col_rows_cpu(data_im, channels, height, width, kernel_h, kernel_w, pad_h, pad_w,\n      stride_h, stride_w, dilation_h, dilation_w, data_col)) return;  // FASSST overlay\n  const int output_h = (height + 2 * pad_h -\n")
fassst_patch(src/caffe/util/im2col.cpp
  "    Dtype* data_im) {\n  caffe_set(height * width * channels, Dtype(0), data_im);\n  const int output_h"
  "    Dtype* data_im) {\n  if (col2im_rows_cpu(data_col, channels, height, width, kernel_h, kernel_w, pad_h, pad_w,\n      stride_h, stride_w, dilation_h, dilation_w, data_im)) return;  // FASSST overlay\n  caffe_set(height * width * channels, Dtype(0), data_im);\n  const int output_h")

# 9. 3x3 stride-1 convolutions' CPU forward by Winograd F(4x4, 3x3) (caffe/util/winograd_conv.hpp
#    says why: the mask tail's convolutions); the hook declines other geometries, and Backward is
#    Caffe's own. `engine: CAFFE` in a layer's convolution_param keeps Caffe's im2col + GEMM (the
#    baseline the benchmarks compare with).
fassst_patch(src/caffe/layers/conv_layer.cpp "#include \"caffe/layers/conv_layer.hpp\"\n"
  "#include \"caffe/layers/conv_layer.hpp\"\n#include \"caffe/util/winograd_conv.hpp\"  // FASSST overlay\n")
fassst_patch(src/caffe/layers/conv_layer.cpp
  "  const Dtype* weight = this->blobs_[0]->cpu_data();\n  for (int i = 0; i < bottom.size(); ++i) {\n    const Dtype* bottom_data = bottom[i]->cpu_data();"
  "  if (this->layer_param_.convolution_param().engine() != ConvolutionParameter_Engine_CAFFE &&\n      winograd3x3_layer_forward_cpu(this->kernel_shape_, this->stride_, this->pad_,\n      this->dilation_, this->group_, *this->blobs_[0],\n      this->bias_term_ ? this->blobs_[1].get() : NULL, bottom, top)) return;  // FASSST overlay\n  const Dtype* weight = this->blobs_[0]->cpu_data();\n  for (int i = 0; i < bottom.size(); ++i) {\n    const Dtype* bottom_data = bottom[i]->cpu_data();")

# 10. Convolution and Deconvolution GPU forward and backward over the whole batch
#     (caffe/util/batched_conv.hpp says why: the mask tail runs every ROI through them as one
#     batch); the hooks decline a single image, groups and N-D. `engine: CAFFE` keeps Caffe's
#     per-image loops here too.
foreach(_kind conv deconv)
  if(_kind STREQUAL "conv")
    set(_class ConvolutionLayer)
    set(_transposed false)
  else()
    set(_class DeconvolutionLayer)
    set(_transposed true)
  endif()
  set(_shape "ConvLayerShape{this->kernel_shape_, this->stride_, this->pad_, this->dilation_, this->group_}")
  # A tree patched by the first form of this hook (forward only, one function per layer) gets
  # the upstream text back first.
  set(_f "${FASSST_CAFFE_SOURCE_DIR}/src/caffe/layers/${_kind}_layer.cu")
  file(READ "${_f}" _src)
  string(REPLACE "  const ConvolutionParameter& fassst_conv = this->layer_param_.convolution_param();\n  if (fassst_conv.engine() != ConvolutionParameter_Engine_CAFFE && !fassst_conv.force_nd_im2col() &&\n      batched_${_kind}_layer_forward_gpu(this->kernel_shape_, this->stride_, this->pad_,\n      this->dilation_, this->group_, *this->blobs_[0],\n      this->bias_term_ ? this->blobs_[1].get() : NULL, bottom, top)) return;  // FASSST overlay\n" "" _src "${_src}")
  fassst_write_if_changed("${_f}" "${_src}")
  fassst_patch(src/caffe/layers/${_kind}_layer.cu "#include \"caffe/layers/${_kind}_layer.hpp\"\n"
    "#include \"caffe/layers/${_kind}_layer.hpp\"\n#include \"caffe/util/batched_conv.hpp\"  // FASSST overlay\n")
  fassst_patch(src/caffe/layers/${_kind}_layer.cu
    "void ${_class}<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,\n      const vector<Blob<Dtype>*>& top) {\n"
    "void ${_class}<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,\n      const vector<Blob<Dtype>*>& top) {\n  const ConvolutionParameter& fassst_conv = this->layer_param_.convolution_param();\n  if (fassst_conv.engine() != ConvolutionParameter_Engine_CAFFE && !fassst_conv.force_nd_im2col() &&\n      batched_conv_forward_gpu(${_transposed}, ${_shape},\n      *this->blobs_[0], this->bias_term_ ? this->blobs_[1].get() : NULL, bottom, top)) return;  // FASSST overlay\n")
  fassst_patch(src/caffe/layers/${_kind}_layer.cu
    "void ${_class}<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,\n      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {\n"
    "void ${_class}<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,\n      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {\n  const ConvolutionParameter& fassst_conv = this->layer_param_.convolution_param();\n  if (fassst_conv.engine() != ConvolutionParameter_Engine_CAFFE && !fassst_conv.force_nd_im2col() &&\n      batched_conv_backward_gpu(${_transposed}, ${_shape},\n      this->blobs_[0].get(), this->bias_term_ ? this->blobs_[1].get() : NULL,\n      this->param_propagate_down_, top, propagate_down, bottom)) return;  // FASSST overlay\n")
endforeach()
