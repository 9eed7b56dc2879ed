#ifndef CAFFE_DEPTHWISE_CONV_LAYER_HPP_
#define CAFFE_DEPTHWISE_CONV_LAYER_HPP_

#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/proto/caffe.pb.h"
#include "caffe/util/depthwise_util.hpp"

namespace caffe {

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

  DepthwiseGeometry g_;
  bool bias_term_;
  DepthwisePlanes<Dtype> planes_;  // the CPU code, one (image, channel) plane at a time
};

}  // namespace caffe

#endif  // CAFFE_DEPTHWISE_CONV_LAYER_HPP_
