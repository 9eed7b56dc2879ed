#ifndef CAFFE_UTIL_ROI_ALIGN_UTIL_HPP_
#define CAFFE_UTIL_ROI_ALIGN_UTIL_HPP_

// ROIAlign of boxes on one feature map, with detectron2's / torchvision's roi_align semantics.
//
// Box convention: a roi row is (batch, x1, y1, x2, y2) in input-image pixels, continuous
// coordinates, no +1 (a box from 0 to 416 is 416 wide). A map at spatial_scale s (1 / stride)
// sees the box at (x1 s, y1 s, x2 s, y2 s).
// aligned = true: map pixel j has its centre at continuous coordinate j + 0.5 (detectron2's
//   "aligned" fix), so the scaled box is shifted by -0.5 into pixel-index space; its size is
//   kept as is, even below one pixel.
// aligned = false: the legacy Mask R-CNN op: no shift, and width and height forced to >= 1.
// Each of the pooled_h x pooled_w cells averages grid_h x grid_w bilinear samples at the
// centres of a regular sub-grid, grid = sampling_ratio or, when it is 0, ceil(roi size / cells).
// A sample with y < -1 or y > H (x likewise) is 0; otherwise y is clamped to >= 0 and a y past
// H - 1 reads row H - 1. So boxes partly off the map are pooled with zeros beyond one pixel of
// the border, and a box far off the map gives zeros.
//
// Layouts: features (N, C, H, W) row-major; rois (R, 5); pooled (R, C, pooled_h, pooled_w).
// The functions trust the batch indices (the layer checks them: integers in [0, N)).

#include <cmath>

#ifdef __CUDACC__
#define ROI_ALIGN_HD __host__ __device__ __forceinline__
#else
#define ROI_ALIGN_HD inline
#endif

namespace caffe {

// The op's settings for one map.
template <typename Dtype>
struct ROIAlignParams {
  Dtype spatial_scale;  // map pixels per input pixel, 1 / stride
  int pooled_h, pooled_w;  // output cells, > 0
  int sampling_ratio;   // samples per cell and axis; 0 = adaptive
  bool aligned;         // half-pixel shift (see above)
};

// One box in map-pixel-index space: top-left, cell size, samples per cell and axis.
template <typename Dtype>
struct ROIAlignBox {
  Dtype y0, x0, bin_h, bin_w;
  int grid_h, grid_w;
};

template <typename Dtype>
ROI_ALIGN_HD ROIAlignBox<Dtype> roi_align_box(const Dtype* roi, const ROIAlignParams<Dtype>& p) {
  const Dtype offset = p.aligned ? Dtype(0.5) : Dtype(0);
  ROIAlignBox<Dtype> b;
  b.x0 = roi[1] * p.spatial_scale - offset;
  b.y0 = roi[2] * p.spatial_scale - offset;
  Dtype w = roi[3] * p.spatial_scale - offset - b.x0;
  Dtype h = roi[4] * p.spatial_scale - offset - b.y0;
  if (!p.aligned) {
    w = w > Dtype(1) ? w : Dtype(1);
    h = h > Dtype(1) ? h : Dtype(1);
  }
  b.bin_h = h / static_cast<Dtype>(p.pooled_h);
  b.bin_w = w / static_cast<Dtype>(p.pooled_w);
  // Adaptive: ceil(size / cells); a box with non-positive size gets no samples (cell value 0).
  b.grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int>(ceil(b.bin_h));
  b.grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int>(ceil(b.bin_w));
  if (b.grid_h < 0) b.grid_h = 0;
  if (b.grid_w < 0) b.grid_w = 0;
  return b;
}

// One axis of a bilinear sample at v on an axis of n pixels: the two pixel indices and the
// weight of the upper one (the lower one's is 1 - l). Returns false (sample is 0) outside
// [-1, n]; the test is written so that NaN also falls outside. Below -1 nothing; in [-1, 0)
// clamped to 0; at n - 1 and beyond both indices are n - 1.
template <typename Dtype>
ROI_ALIGN_HD bool roi_align_axis_taps(int n, Dtype v, int* lo, int* hi, Dtype* l) {
  if (!(v >= Dtype(-1) && v <= static_cast<Dtype>(n))) return false;
  if (v < 0) v = 0;
  *lo = static_cast<int>(v);
  if (*lo >= n - 1) {
    *lo = *hi = n - 1;
    v = static_cast<Dtype>(*lo);
  } else {
    *hi = *lo + 1;
  }
  *l = v - static_cast<Dtype>(*lo);
  return true;
}

// Taps of one bilinear sample at (y, x) on an H x W map: the four pixel offsets (y * W + x) and
// their weights, the products of the two axes' (roi_align_axis_taps). Returns false (sample is
// 0, no taps) when either axis is outside.
template <typename Dtype>
ROI_ALIGN_HD bool roi_align_bilinear_taps(int H, int W, Dtype y, Dtype x, int offset[4],
                                          Dtype weight[4]) {
  int y_lo, y_hi, x_lo, x_hi;
  Dtype ly, lx;
  if (!roi_align_axis_taps(H, y, &y_lo, &y_hi, &ly) ||
      !roi_align_axis_taps(W, x, &x_lo, &x_hi, &lx)) {
    return false;
  }
  const Dtype hy = 1 - ly, hx = 1 - lx;
  offset[0] = y_lo * W + x_lo;
  offset[1] = y_lo * W + x_hi;
  offset[2] = y_hi * W + x_lo;
  offset[3] = y_hi * W + x_hi;
  weight[0] = hy * hx;
  weight[1] = hy * lx;
  weight[2] = ly * hx;
  weight[3] = ly * lx;
  return true;
}

// Sample (iy, ix) of cell (ph, pw): the centre of its sub-cell.
template <typename Dtype>
ROI_ALIGN_HD Dtype roi_align_sample_y(const ROIAlignBox<Dtype>& b, int ph, int iy) {
  return b.y0 + static_cast<Dtype>(ph) * b.bin_h +
         (static_cast<Dtype>(iy) + Dtype(0.5)) * b.bin_h / static_cast<Dtype>(b.grid_h);
}
template <typename Dtype>
ROI_ALIGN_HD Dtype roi_align_sample_x(const ROIAlignBox<Dtype>& b, int pw, int ix) {
  return b.x0 + static_cast<Dtype>(pw) * b.bin_w +
         (static_cast<Dtype>(ix) + Dtype(0.5)) * b.bin_w / static_cast<Dtype>(b.grid_w);
}

// Samples averaged per cell (at least 1, so an empty grid gives 0, not NaN).
template <typename Dtype>
ROI_ALIGN_HD int roi_align_count(const ROIAlignBox<Dtype>& b) {
  const int n = b.grid_h * b.grid_w;
  return n > 1 ? n : 1;
}

// out (R, C, pooled_h, pooled_w) = ROIAlign(in (N, C, H, W), rois (R, 5)). Overwrites out.
template <typename Dtype>
void roi_align_forward_cpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* in,
                           const ROIAlignParams<Dtype>& p, Dtype* out);

// din (N, C, H, W) += ROIAlign^T(dout (R, C, pooled_h, pooled_w)), the exact adjoint.
template <typename Dtype>
void roi_align_backward_add_cpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* dout,
                                const ROIAlignParams<Dtype>& p, Dtype* din);

#ifndef CPU_ONLY
// GPU twins; rois, in, out, dout, din are device pointers. The backward adds atomically.
template <typename Dtype>
void roi_align_forward_gpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* in,
                           const ROIAlignParams<Dtype>& p, Dtype* out);
template <typename Dtype>
void roi_align_backward_add_gpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* dout,
                                const ROIAlignParams<Dtype>& p, Dtype* din);
#endif

}  // namespace caffe

#endif  // CAFFE_UTIL_ROI_ALIGN_UTIL_HPP_
