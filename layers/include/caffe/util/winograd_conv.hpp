#ifndef CAFFE_UTIL_WINOGRAD_CONV_HPP_
#define CAFFE_UTIL_WINOGRAD_CONV_HPP_

// 3x3, stride 1 convolution on the CPU by Winograd's minimal filtering F(4x4, 3x3) (Lavin and
// Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016). Each 4 x 4 output tile
// comes from a 6 x 6 input tile with 36 multiplies per pair of input and output channels instead
// of 144: 36 GEMMs of (tiles x input channels) by (input channels x output channels), between
// fixed transforms of a few adds each. Caffe's ConvolutionLayer::Forward_cpu calls it first
// (cmake/patches/0008-winograd-conv-hook.patch); Backward stays Caffe's, the exact gradient of
// the same function.
//
// Why: the mask tail's two 3x3 convolutions are most of the nets' multiply-adds (64 or 248
// channels, 28 x 28, over every ROI), and through im2col + GEMM they already ran near the
// machine's sgemm rate: only fewer multiplies make them faster. No library on the project's
// list has a CPU Winograd for Caffe's NCHW blobs. The transforms scale by up to 8, so float
// results differ from the direct sum by a little more rounding (tested against a
// double-precision direct convolution).

#include <vector>

#include "caffe/blob.hpp"

namespace caffe {

// bottom: num x channels x height x width; top: num x num_output x (height + 2 pad_h - 2) x
// (width + 2 pad_w - 2); weight: num_output x channels x 3 x 3.
struct WinogradConvShape {
  int num, channels, height, width, num_output, pad_h, pad_w;
};

// top = bottom correlated with weight, zero padded, plus bias[o] (bias may be NULL).
template <typename Dtype>
void winograd3x3_forward_cpu(const WinogradConvShape& shape, const Dtype* bottom,
                             const Dtype* weight, const Dtype* bias, Dtype* top);

// Fewer channels than this on either side, or fewer 4 x 4 output tiles over the batch, and the
// transforms cost more than the multiplies they save (measured: docs/DESIGN.md, "Winograd").
const int kWinogradMinChannels = 8;
const int kWinogradMinTiles = 8;

// The overlay's hook, with ConvolutionLayer's own members: runs winograd3x3_forward_cpu for each
// bottom / top pair and returns true when the layer is 2-D with a 3x3 kernel, stride 1, dilation
// 1, one group, at least kWinogradMinChannels in and out and kWinogradMinTiles tiles in every
// bottom; else returns false, having done nothing, and Caffe's im2col + GEMM runs.
template <typename Dtype>
bool winograd3x3_layer_forward_cpu(const Blob<int>& kernel, const Blob<int>& stride,
                                   const Blob<int>& pad, const Blob<int>& dilation, int group,
                                   const Blob<Dtype>& weight, const Blob<Dtype>* bias,
                                   const std::vector<Blob<Dtype>*>& bottom,
                                   const std::vector<Blob<Dtype>*>& top);

}  // namespace caffe

#endif  // CAFFE_UTIL_WINOGRAD_CONV_HPP_
