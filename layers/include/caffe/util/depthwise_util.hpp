#ifndef CAFFE_UTIL_DEPTHWISE_UTIL_HPP_
#define CAFFE_UTIL_DEPTHWISE_UTIL_HPP_

// CPU code of DepthwiseConvolution (caffe/layers/depthwise_conv_layer.hpp), one (image,
// channel) plane at a time: out = bias + the plane correlated with its own filter, zero padded,
// as Caffe's Convolution computes it; and the weight and input gradients.
//
// Every path sums whole runs of memory, one loop over a plane (or a few rows) that the compiler
// vectorises: MobileNetV2's deep planes are 26 and 13 px wide, where row-by-row code spends
// its time on loop set-up. Three layouts (the .cpp says how each one reads):
// - 3x3, pad 1, stride 1 (MobileNetV2's): the plane itself and two copies shifted by one column
//   with a zero column, so the left and right taps never wrap into the next row;
// - 3x3, pad 1, stride 2: the plane split by row and column parity (one pass over the input);
// - anything else: the plane zero padded and split by phase along both axes (DepthwiseAxis).

#include <vector>

namespace caffe {

// Sizes of one depthwise convolution; plain data so the CUDA kernels take it by value.
struct DepthwiseGeometry {
  int num, channels, height, width, out_h, out_w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

// The general layout along one spatial axis: padded coordinate p = i stride + r (input
// coordinate p - pad) is stored at phase r, index i.
struct DepthwiseAxis {
  int in, out, stride, pad;
  int shift_max;                  // (kernel - 1) dilation / stride
  int len;                        // indices per phase: out + shift_max
  std::vector<int> phase, shift;  // per tap k: (k dilation) % stride, (k dilation) / stride
  std::vector<int> lo, hi;        // per phase: the indices whose coordinate is inside [0, in)
  std::vector<int> read_lo, read_hi;  // the same clamped to [0, len): those some tap reads
};
DepthwiseAxis MakeDepthwiseAxis(int in, int out, int kernel, int stride, int pad, int dilation);

// The forward and backward passes, one (image, channel) plane at a time, with the buffers they
// need, sized once per Reshape. Blobs as DepthwiseConvolution's: bottom (num, channels, height,
// width), top (num, channels, out_h, out_w), weight (channels, kernel_h, kernel_w), bias
// (channels), row-major.
template <typename Dtype>
class DepthwisePlanes {
 public:
  DepthwisePlanes() : path_(kGeneral), band_(0) {}
  // Picks the layout for g and sizes the buffers.
  void Reshape(const DepthwiseGeometry& g);
  // top = bias + bottom correlated with weight, channel by channel; bias may be NULL (none).
  void Forward(const Dtype* bottom, const Dtype* weight, const Dtype* bias, Dtype* top);
  // The gradients asked for (NULL: not wanted) given the top diff: bias_diff and weight_diff
  // are added to, bottom_diff is overwritten (as Convolution does).
  void Backward(const Dtype* top_diff, const Dtype* bottom, const Dtype* weight,
                Dtype* bias_diff, Dtype* weight_diff, Dtype* bottom_diff);

 private:
  enum Path { k3x3Stride1, k3x3Stride2, kGeneral };

  // One plane: in and bottom_diff (height, width), out and top_diff (out_h, out_w), weight
  // (kernel_h, kernel_w). in_end: the end of the bottom blob, up to which the stride-2 split
  // may prefetch the next planes.
  void ForwardPlane(const Dtype* in, const Dtype* in_end, const Dtype* weight, Dtype bias,
                    Dtype* out);
  void BackwardWeightPlane(const Dtype* in, const Dtype* in_end, const Dtype* top_diff,
                           Dtype* weight_diff);
  void BackwardDataPlane(const Dtype* top_diff, const Dtype* weight, Dtype* bottom_diff);

  // 3x3 stride 1: left_ / right_ from a plane, and the nine runs of output rows [y0, y1).
  void ShiftColumns(const Dtype* plane);
  void RunsS1(const Dtype* centre, int y0, int y1, const Dtype** src) const;
  void ForwardS1(const Dtype* in, const Dtype* weight, Dtype bias, Dtype* out);
  // 3x3 stride 2: the parity blocks of the input, and the nine runs over the output plane.
  // Output rows [a0, a1), a1 - a0 <= band_.
  void SplitS2(const Dtype* in, const Dtype* in_end, int a0, int a1);
  void RunsS2(const Dtype** src) const;
  // General layout.
  void PadPlane(const Dtype* in);
  const Dtype* TapRun(int ky, int kx) const;
  void ForwardGeneral(const Dtype* in, const Dtype* weight, Dtype bias, Dtype* out);
  void BackwardWeightGeneral(const Dtype* in, const Dtype* top_diff, Dtype* weight_diff);
  void BackwardDataGeneral(const Dtype* top_diff, const Dtype* weight, Dtype* bottom_diff);

  Path path_;
  DepthwiseGeometry g_;
  std::vector<Dtype> zero_;   // a zero row, for taps outside the plane
  // 3x3 stride 1: the plane shifted right (left_[y][x] = plane[y][x - 1]) and left by one
  // column, 0 where that column is outside.
  std::vector<Dtype> left_, right_;
  // 3x3 stride 2, one band of output rows a0 <= oy < a1 at a time: split_ holds four (rows,
  // out_w) blocks, input rows 2 oy ("even", a1 - a0 rows) and 2 oy - 1 ("odd", a1 - a0 + 1 rows,
  // zero outside the input); per row parity p the input columns 2 ox (e_[p]) and 2 ox - 1
  // (ol_[p], zero at ox = 0).
  int band_;  // output rows per band
  std::vector<Dtype> split_;
  std::vector<Dtype> spare_;  // (width) where the bottom diff's row H goes (H odd): nowhere
  Dtype* e_[2];
  Dtype* ol_[2];
  // General layout.
  DepthwiseAxis ay_, ax_;
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

#endif  // CAFFE_UTIL_DEPTHWISE_UTIL_HPP_
