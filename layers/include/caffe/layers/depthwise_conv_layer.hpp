#ifndef CAFFE_DEPTHWISE_CONV_LAYER_HPP_
#define CAFFE_DEPTHWISE_CONV_LAYER_HPP_

#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/proto/caffe.pb.h"

namespace caffe {

// Sizes of one depthwise convolution; plain data so the CUDA kernels take it by value.
struct DepthwiseGeometry {
  int num, channels, height, width, out_h, out_w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

/**
 * Depthwise 2-D convolution: output channel c is input channel c convolved with its own
 * kh x kw filter (stock Convolution with group = channels = num_output), computed directly
 * instead of Caffe's one im2col + GEMM per group, which is what makes MobileNetV2 slow in Caffe
 * (docs/DESIGN.md, "DepthwiseConvolution").
 *
 * Param: the stock convolution_param (num_output, kernel_size / kernel_h, kernel_w, stride,
 * pad, dilation, bias_term, weight_filler, bias_filler), read as Convolution reads it, so the
 * blobs have Convolution's shapes and a caffemodel saved from a grouped Convolution loads
 * unchanged. num_output must equal the input channels; group, if given, too.
 *
 * bottom[0]: (N, C, H, W)
 * top[0]:    (N, C, Ho, Wo), Ho = (H + 2 pad_h - (dilation_h (kernel_h - 1) + 1)) / stride_h + 1
 * blobs_[0]: (C, 1, kernel_h, kernel_w) weights; blobs_[1]: (C) bias if bias_term
 * N may be 0. Like Convolution, backward overwrites the bottom diff and adds to the param diffs.
 */
template <typename Dtype>
class DepthwiseConvolutionLayer : public Layer<Dtype> {
 public:
  explicit DepthwiseConvolutionLayer(const LayerParameter& param) : Layer<Dtype>(param) {}
  virtual void LayerSetUp(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Reshape(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);

  virtual inline const char* type() const { return "DepthwiseConvolution"; }
  virtual inline int ExactNumBottomBlobs() const { return 1; }
  virtual inline int ExactNumTopBlobs() const { return 1; }

 protected:
  virtual void Forward_cpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Forward_gpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Backward_cpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);
  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);

  // CPU helpers, one (image, channel) plane at a time, see the .cpp for the layout.
  void PadPlane(const Dtype* in);
  void ForwardPlane(const Dtype* weight, Dtype bias, Dtype* out);
  void BackwardDataPlane(const Dtype* top_diff, const Dtype* weight, Dtype* bottom_diff);
  void BackwardWeightPlane(const Dtype* top_diff, Dtype* weight_diff);
  const Dtype* PaddedRow(int iy, int phase) const;

  DepthwiseGeometry g_;
  bool bias_term_;
  int row_len_;                // padded row length per x phase, see PadPlane
  std::vector<Dtype> padded_;       // (stride_w, H, row_len_) the input plane, see PadPlane
  std::vector<Dtype> padded_diff_;  // the same layout for the bottom diff being summed
  std::vector<Dtype> zeros_;        // (row_len_) a row of zeros, for rows in the y padding
  std::vector<Dtype> acc_;          // (kernel_h kernel_w + 1, Wo) per-tap product sums, bias sums
};

}  // namespace caffe

#endif  // CAFFE_DEPTHWISE_CONV_LAYER_HPP_
