#include "caffe/util/roi_align_util.hpp"

namespace caffe {

template <typename Dtype>
void roi_align_forward_cpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* in,
                           const ROIAlignParams<Dtype>& p, Dtype* out) {
  const int cells = p.pooled_h * p.pooled_w;
  for (int r = 0; r < R; ++r) {
    const Dtype* roi = rois + 5 * r;
    const ROIAlignBox<Dtype> b = roi_align_box(roi, p);
    const Dtype inv_count = Dtype(1) / static_cast<Dtype>(roi_align_count(b));
    const Dtype* image = in + static_cast<int>(roi[0]) * C * H * W;
    for (int c = 0; c < C; ++c) {
      const Dtype* plane = image + c * H * W;
      Dtype* dst = out + (r * C + c) * cells;
      for (int ph = 0; ph < p.pooled_h; ++ph) {
        for (int pw = 0; pw < p.pooled_w; ++pw) {
          Dtype sum = 0;
          for (int iy = 0; iy < b.grid_h; ++iy) {
            const Dtype y = roi_align_sample_y(b, ph, iy);
            for (int ix = 0; ix < b.grid_w; ++ix) {
              int off[4];
              Dtype w[4];
              if (!roi_align_bilinear_taps(H, W, y, roi_align_sample_x(b, pw, ix), off, w)) {
                continue;
              }
              sum += w[0] * plane[off[0]] + w[1] * plane[off[1]] + w[2] * plane[off[2]] +
                     w[3] * plane[off[3]];
            }
          }
          dst[ph * p.pooled_w + pw] = sum * inv_count;
        }
      }
    }
  }
}

template <typename Dtype>
void roi_align_backward_add_cpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* dout,
                                const ROIAlignParams<Dtype>& p, Dtype* din) {
  const int cells = p.pooled_h * p.pooled_w;
  for (int r = 0; r < R; ++r) {
    const Dtype* roi = rois + 5 * r;
    const ROIAlignBox<Dtype> b = roi_align_box(roi, p);
    const Dtype inv_count = Dtype(1) / static_cast<Dtype>(roi_align_count(b));
    Dtype* image = din + static_cast<int>(roi[0]) * C * H * W;
    for (int c = 0; c < C; ++c) {
      Dtype* plane = image + c * H * W;
      const Dtype* g = dout + (r * C + c) * cells;
      for (int ph = 0; ph < p.pooled_h; ++ph) {
        for (int pw = 0; pw < p.pooled_w; ++pw) {
          const Dtype gc = g[ph * p.pooled_w + pw] * inv_count;
          for (int iy = 0; iy < b.grid_h; ++iy) {
            const Dtype y = roi_align_sample_y(b, ph, iy);
            for (int ix = 0; ix < b.grid_w; ++ix) {
              int off[4];
              Dtype w[4];
              if (!roi_align_bilinear_taps(H, W, y, roi_align_sample_x(b, pw, ix), off, w)) {
                continue;
              }
              for (int t = 0; t < 4; ++t) plane[off[t]] += w[t] * gc;
            }
          }
        }
      }
    }
  }
}

template void roi_align_forward_cpu<float>(int, const float*, int, int, int, const float*,
                                           const ROIAlignParams<float>&, float*);
template void roi_align_forward_cpu<double>(int, const double*, int, int, int, const double*,
                                            const ROIAlignParams<double>&, double*);
template void roi_align_backward_add_cpu<float>(int, const float*, int, int, int, const float*,
                                                const ROIAlignParams<float>&, float*);
template void roi_align_backward_add_cpu<double>(int, const double*, int, int, int, const double*,
                                                 const ROIAlignParams<double>&, double*);

}  // namespace caffe
