#ifndef CAFFE_UTIL_BATCHED_CONV_HPP_
#define CAFFE_UTIL_BATCHED_CONV_HPP_

// GPU forward and backward of Convolution and Deconvolution over a whole batch at once: im2col
// (col2im) for every image of a chunk in one kernel, one strided-batched cuBLAS GEMM for the
// chunk, the bias in one kernel. Caffe's ConvolutionLayer's and DeconvolutionLayer's Forward_gpu
// and Backward_gpu call it first (cmake/patches/0009-batched-gpu-conv-hooks.patch).
//
// Why: Caffe's GPU forward loops over the batch, three launches per image (im2col, GEMM, bias
// GEMM). The mask tail runs every ROI through its convolutions as one batch of 36 (416) or 49
// (768) images of 28 x 28: one image's GEMM (e.g. 248 x 2232 by 2232 x 784) fills a few dozen
// of an H100's 132 SMs, and the 36 run one after another. Batched, the chunk's GEMM is one call
// with the whole GPU to fill; in training the tail's backward has the same loop over the
// ROIs. A single image (the backbone at batch 1) gains nothing and is left to Caffe.
//
// FASSST_GPU_TF32=1 in the environment lets these GEMMs (float only) use TF32 tensor cores
// (10-bit mantissa inputs, float accumulation): faster on Ampere and later, ~1e-3 relative
// error, off by default so that float results are float's.

#include <cstddef>
#include <vector>

#include "caffe/blob.hpp"

#ifdef __CUDACC__
#define FASSST_HOST_DEVICE __host__ __device__
#else
#define FASSST_HOST_DEVICE
#endif

namespace caffe {

// The image side of a 2-D convolution: for Convolution its bottom, for Deconvolution its top.
// cols: channels * kernel_h * kernel_w rows of col_h * col_w, as Caffe's im2col writes them.
struct ConvGeometry {
  int channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h,
      dilation_w;
  FASSST_HOST_DEVICE int col_h() const {
    return (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  }
  FASSST_HOST_DEVICE int col_w() const {
    return (width + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
  }
  FASSST_HOST_DEVICE int image_count() const { return channels * height * width; }
  FASSST_HOST_DEVICE int col_count() const {
    return channels * kernel_h * kernel_w * col_h() * col_w();
  }
};

// One element of a batch's im2col: index runs over images x channels x col_h x col_w; writes
// that position's kernel_h * kernel_w column values of image index / (channels col_h col_w)
// (zero outside the image). The same values as Caffe's im2col_cpu / im2col_gpu, per image,
// at image_count() / col_count() strides. Host and device, so the CPU tests check the indexing.
template <typename Dtype>
FASSST_HOST_DEVICE inline void batched_im2col_element(int index, const ConvGeometry& g,
                                                      const Dtype* images, Dtype* cols) {
  const int col_h = g.col_h(), col_w = g.col_w();
  const int x = index % col_w;
  int rest = index / col_w;
  const int y = rest % col_h;
  rest /= col_h;
  const int c = rest % g.channels;
  const int image = rest / g.channels;
  const Dtype* im = images + static_cast<ptrdiff_t>(image) * g.image_count() +
                    static_cast<ptrdiff_t>(c) * g.height * g.width;
  Dtype* col = cols + static_cast<ptrdiff_t>(image) * g.col_count() +
               (static_cast<ptrdiff_t>(c) * g.kernel_h * g.kernel_w * col_h + y) * col_w + x;
  const ptrdiff_t col_step = static_cast<ptrdiff_t>(col_h) * col_w;
  for (int i = 0; i < g.kernel_h; ++i) {
    const int h = y * g.stride_h - g.pad_h + i * g.dilation_h;
    for (int j = 0; j < g.kernel_w; ++j) {
      const int w = x * g.stride_w - g.pad_w + j * g.dilation_w;
      *col = (h >= 0 && h < g.height && w >= 0 && w < g.width) ? im[h * g.width + w] : Dtype(0);
      col += col_step;
    }
  }
}

// One element of a batch's col2im: index runs over images x channels x height x width; the
// pixel gets the sum of every column value that im2col would have copied from it (kernel rows
// then columns in increasing order). Caffe's col2im per image, up to the order of that sum
// (the same values where windows do not overlap, as in the tail's 2x2 stride-2 deconvolution).
template <typename Dtype>
FASSST_HOST_DEVICE inline Dtype batched_col2im_element(int index, const ConvGeometry& g,
                                                       const Dtype* cols) {
  const int col_h = g.col_h(), col_w = g.col_w();
  const int w = index % g.width;
  int rest = index / g.width;
  const int h = rest % g.height;
  rest /= g.height;
  const int c = rest % g.channels;
  const int image = rest / g.channels;
  const Dtype* col = cols + static_cast<ptrdiff_t>(image) * g.col_count() +
                     static_cast<ptrdiff_t>(c) * g.kernel_h * g.kernel_w * col_h * col_w;
  Dtype sum = 0;
  for (int i = 0; i < g.kernel_h; ++i) {
    const int ys = h + g.pad_h - i * g.dilation_h;  // y * stride_h when a window row covers h
    if (ys < 0 || ys % g.stride_h != 0 || ys / g.stride_h >= col_h) continue;
    for (int j = 0; j < g.kernel_w; ++j) {
      const int xs = w + g.pad_w - j * g.dilation_w;
      if (xs < 0 || xs % g.stride_w != 0 || xs / g.stride_w >= col_w) continue;
      sum += col[((static_cast<ptrdiff_t>(i) * g.kernel_w + j) * col_h + ys / g.stride_h) *
                     col_w + xs / g.stride_w];
    }
  }
  return sum;
}

// What the hooks may do, read by every call. tf32: FASSST_GPU_TF32=1 at first use.
// workspace_bytes: the most the column buffer of one chunk may take (one buffer per device,
// shared by every layer: Caffe runs a net's layers one after another on one stream); a chunk
// holds as many images as fit, at least one. Tests change both and put them back.
struct BatchedConvOptions {
  bool tf32;
  size_t workspace_bytes;
};
BatchedConvOptions& batched_conv_options();
const size_t kBatchedConvWorkspaceBytes = size_t(256) << 20;  // the 416 tail's 36 ROIs at once

// The members BaseConvolutionLayer keeps of its geometry, as the overlay passes them.
struct ConvLayerShape {
  const Blob<int>& kernel;
  const Blob<int>& stride;
  const Blob<int>& pad;
  const Blob<int>& dilation;
  int group;
};

// The overlay's hooks, with the layer's own members and weight and bias blobs (bias NULL
// without a bias term); transposed: Deconvolution, else Convolution. Each runs the layer's
// whole Forward_gpu / Backward_gpu for every bottom / top pair and returns true when the layer
// is 2-D with one group and every bottom holds at least two images; else it returns false
// having done nothing, and Caffe's per-image loop runs.
// Convolution: top (N, weight.shape(0), col_h, col_w) from bottom (N, weight.shape(1), H, W).
// Deconvolution: top (N, weight.shape(1), H, W) from bottom (N, weight.shape(0), col_h, col_w),
// H and W from top's shape (Caffe's Reshape has set it).
template <typename Dtype>
bool batched_conv_forward_gpu(bool transposed, const ConvLayerShape& layer,
                              const Blob<Dtype>& weight, const Blob<Dtype>* bias,
                              const std::vector<Blob<Dtype>*>& bottom,
                              const std::vector<Blob<Dtype>*>& top);

// Backward: bias and weight diffs accumulated where param_propagate_down asks, bottom diffs
// overwritten where propagate_down asks, as Caffe's Backward_gpu; one strided-batched GEMM per
// chunk for each product, the weight diff summing the chunk's per-image products in one kernel
// (fixed order). Convolution's bottom diff is Deconvolution's forward of the top diff, and
// Deconvolution's is Convolution's.
template <typename Dtype>
bool batched_conv_backward_gpu(bool transposed, const ConvLayerShape& layer, Blob<Dtype>* weight,
                               Blob<Dtype>* bias, const std::vector<bool>& param_propagate_down,
                               const std::vector<Blob<Dtype>*>& top,
                               const std::vector<bool>& propagate_down,
                               const std::vector<Blob<Dtype>*>& bottom);

}  // namespace caffe

#endif  // CAFFE_UTIL_BATCHED_CONV_HPP_
