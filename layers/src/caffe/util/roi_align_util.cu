#include "caffe/common.hpp"
#include "caffe/util/gpu_util.cuh"
#include "caffe/util/roi_align_util.hpp"

namespace caffe {

// One thread per output element (r, c, ph, pw).
template <typename Dtype>
__global__ void roi_align_forward_kernel(int n, const Dtype* rois, int C, int H, int W,
                                         const Dtype* in, ROIAlignParams<Dtype> p, Dtype* out) {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = index % p.pooled_w;
    const int ph = (index / p.pooled_w) % p.pooled_h;
    const int c = (index / (p.pooled_w * p.pooled_h)) % C;
    const int r = index / (p.pooled_w * p.pooled_h * C);
    const Dtype* roi = rois + 5 * r;
    const ROIAlignBox<Dtype> b = roi_align_box(roi, p);
    const Dtype* plane = in + (static_cast<int>(roi[0]) * C + c) * H * W;
    Dtype sum = 0;
    for (int iy = 0; iy < b.grid_h; ++iy) {
      const Dtype y = roi_align_sample_y(b, ph, iy);
      for (int ix = 0; ix < b.grid_w; ++ix) {
        int off[4];
        Dtype w[4];
        if (!roi_align_bilinear_taps(H, W, y, roi_align_sample_x(b, pw, ix), off, w)) continue;
        sum += w[0] * plane[off[0]] + w[1] * plane[off[1]] + w[2] * plane[off[2]] +
               w[3] * plane[off[3]];
      }
    }
    out[index] = sum / static_cast<Dtype>(roi_align_count(b));
  }
}

// One thread per output element; several cells (and ROIs) can reach one input pixel, hence the
// atomic adds.
template <typename Dtype>
__global__ void roi_align_backward_kernel(int n, const Dtype* rois, int C, int H, int W,
                                          const Dtype* dout, ROIAlignParams<Dtype> p,
                                          Dtype* din) {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = index % p.pooled_w;
    const int ph = (index / p.pooled_w) % p.pooled_h;
    const int c = (index / (p.pooled_w * p.pooled_h)) % C;
    const int r = index / (p.pooled_w * p.pooled_h * C);
    const Dtype* roi = rois + 5 * r;
    const ROIAlignBox<Dtype> b = roi_align_box(roi, p);
    Dtype* plane = din + (static_cast<int>(roi[0]) * C + c) * H * W;
    const Dtype gc = dout[index] / static_cast<Dtype>(roi_align_count(b));
    if (gc == 0) continue;
    for (int iy = 0; iy < b.grid_h; ++iy) {
      const Dtype y = roi_align_sample_y(b, ph, iy);
      for (int ix = 0; ix < b.grid_w; ++ix) {
        int off[4];
        Dtype w[4];
        if (!roi_align_bilinear_taps(H, W, y, roi_align_sample_x(b, pw, ix), off, w)) continue;
        for (int t = 0; t < 4; ++t) {
          if (w[t] != 0) caffe_gpu_atomic_add(w[t] * gc, plane + off[t]);
        }
      }
    }
  }
}

template <typename Dtype>
void roi_align_forward_gpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* in,
                           const ROIAlignParams<Dtype>& p, Dtype* out) {
  const int n = R * C * p.pooled_h * p.pooled_w;
  if (n == 0) return;
  roi_align_forward_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(
      n, rois, C, H, W, in, p, out);
  CUDA_POST_KERNEL_CHECK;
}

template <typename Dtype>
void roi_align_backward_add_gpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* dout,
                                const ROIAlignParams<Dtype>& p, Dtype* din) {
  const int n = R * C * p.pooled_h * p.pooled_w;
  if (n == 0) return;
  roi_align_backward_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(
      n, rois, C, H, W, dout, p, din);
  CUDA_POST_KERNEL_CHECK;
}

template void roi_align_forward_gpu<float>(int, const float*, int, int, int, const float*,
                                           const ROIAlignParams<float>&, float*);
template void roi_align_forward_gpu<double>(int, const double*, int, int, int, const double*,
                                            const ROIAlignParams<double>&, double*);
template void roi_align_backward_add_gpu<float>(int, const float*, int, int, int, const float*,
                                                const ROIAlignParams<float>&, float*);
template void roi_align_backward_add_gpu<double>(int, const double*, int, int, int, const double*,
                                                 const ROIAlignParams<double>&, double*);

}  // namespace caffe
