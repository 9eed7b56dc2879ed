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

// The CPU layout along one spatial axis (see the .cpp): padded coordinate p = i stride + r
// (input coordinate p - pad) is stored at phase r, index i.
struct DepthwiseAxis {
  int in, out, stride, pad;
  int shift_max;                  // (kernel - 1) dilation / stride
  int len;                        // indices per phase: out + shift_max
  std::vector<int> phase, shift;  // per tap k: (k dilation) % stride, (k dilation) / stride
  std::vector<int> lo, hi;        // per phase: the indices whose coordinate is inside [0, in)
  std::vector<int> read_lo, read_hi;  // the same clamped to [0, len): those some tap reads
};
DepthwiseAxis MakeDepthwiseAxis(int in, int out, int kernel, int stride, int pad, int dilation);

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

  // CPU helpers, one (image, channel) plane at a time.
  void PadPlane(const Dtype* in);
  void ForwardPlane(const Dtype* weight, Dtype bias, Dtype* out);
  void BackwardWeightPlane(const Dtype* top_diff, Dtype* weight_diff);
  void BackwardDataPlane(const Dtype* top_diff, const Dtype* weight, Dtype* bottom_diff);
  const Dtype* TapRun(int ky, int kx) const;

  DepthwiseGeometry g_;
  bool bias_term_;
  DepthwiseAxis ay_, ax_;  // the CPU layout along y and x
  std::vector<Dtype> padded_;    // (stride_h, stride_w, ay_.len, ax_.len) the input plane
  std::vector<Dtype> top_pad_;   // (Ho + 2 ay_.shift_max, Wo + 2 ax_.shift_max) top diff, padded
  std::vector<Dtype> scratch_;   // output rows of stride ax_.len; bottom-diff phases
  std::vector<Dtype> tcol_;      // (Ho, ax_.len) the top diff with rows of stride ax_.len
  std::vector<Dtype> run_w_;     // (kernel_h kernel_w) weights of the runs SumRuns adds up
  std::vector<const Dtype*> run_src_;  // and where each run starts
  std::vector<Dtype*> row_ptr_;        // (stride_w) the phase rows of one row
  std::vector<const Dtype*> row_cptr_;  // the same, read-only
};

}  // namespace caffe

#endif  // CAFFE_DEPTHWISE_CONV_LAYER_HPP_
