#ifndef CAFFE_UTIL_IM2COL_ROWS_HPP_
#define CAFFE_UTIL_IM2COL_ROWS_HPP_

// Caffe's im2col_cpu / col2im_cpu (caffe/util/im2col.hpp, same arguments and column layout) for
// two common cases, done by whole runs of memory instead of one bounds test per element:
// - stride_w == 1, dilation_w == 1 (the 3x3 convolutions' im2col);
// - kernel == stride along both axes, no pad, no dilation: windows that do not overlap (the
//   2x2 stride-2 deconvolution's col2im, which is then a scatter with no additions).
// Caffe's own functions call these first (cmake/patches/0007-im2col-runs.patch); they
// return false, having done nothing, for other parameters.
//
// Why: in the mask tail's 3x3 convolutions (36 ROIs x 248 channels x 28 x 28 at 416) the stock
// element loop took about 26 of each convolution's 191 ms on this CPU, beside a GEMM at the
// machine's sgemm rate; in the demo config's deconvolution it was about 2 of 5 ms. Values are
// only moved, never combined differently: results are bit-identical to the stock loops (col2im
// adds into each pixel in the same order; a pixel of non-overlapping windows gets 0 + v, as
// there).

namespace caffe {

template <typename Dtype>
bool im2col_rows_cpu(const Dtype* data_im, int channels, int height, int width, int kernel_h,
                     int kernel_w, int pad_h, int pad_w, int stride_h, int stride_w,
                     int dilation_h, int dilation_w, Dtype* data_col);

template <typename Dtype>
bool col2im_rows_cpu(const Dtype* data_col, int channels, int height, int width, int kernel_h,
                     int kernel_w, int pad_h, int pad_w, int stride_h, int stride_w,
                     int dilation_h, int dilation_w, Dtype* data_im);

}  // namespace caffe

#endif  // CAFFE_UTIL_IM2COL_ROWS_HPP_
