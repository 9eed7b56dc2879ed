#ifndef CAFFE_UTIL_BILINEAR_UP2_HPP_
#define CAFFE_UTIL_BILINEAR_UP2_HPP_

// Bilinear x2 upsampling with half-pixel centres (cv2.resize INTER_LINEAR, ONNX Resize
// "half_pixel", PyTorch align_corners=False). Output index o of a side of length 2n samples the
// input at s = max((o + 0.5) / 2 - 0.5, 0): taps i0 = floor(s), i1 = min(i0 + 1, n - 1), weights
// 1 - f and f with f = s - i0. At the borders both taps can be the same index.
// Planes are row-major H x W, planes contiguous (Caffe's N x C x H x W).

#ifdef __CUDACC__
#define BILINEAR_UP2_HD __host__ __device__ __forceinline__
#else
#define BILINEAR_UP2_HD inline
#endif

namespace caffe {

template <typename Dtype>
BILINEAR_UP2_HD void bilinear_up2_taps(int o, int n, int* i0, int* i1, Dtype* f) {
  Dtype s = (static_cast<Dtype>(o) + Dtype(0.5)) * Dtype(0.5) - Dtype(0.5);
  if (s < 0) s = 0;
  int lo = static_cast<int>(s);
  *i0 = lo;
  *i1 = lo + 1 < n ? lo + 1 : n - 1;
  *f = s - static_cast<Dtype>(lo);
}

// Weight that output index o gives input index i (side n); the adjoint's gather uses it.
template <typename Dtype>
BILINEAR_UP2_HD Dtype bilinear_up2_weight(int o, int i, int n) {
  int i0, i1;
  Dtype f;
  bilinear_up2_taps(o, n, &i0, &i1, &f);
  return (i0 == i ? Dtype(1) - f : Dtype(0)) + (i1 == i ? f : Dtype(0));
}

// out (planes x 2H x 2W) += up2(in (planes x H x W)).
template <typename Dtype>
void bilinear_up2_add_cpu(int planes, int H, int W, const Dtype* in, Dtype* out);

// din (planes x H x W) += up2^T(dout (planes x 2H x 2W)), the exact adjoint of the above.
template <typename Dtype>
void bilinear_up2_adjoint_add_cpu(int planes, int H, int W, const Dtype* dout, Dtype* din);

#ifndef CPU_ONLY
template <typename Dtype>
void bilinear_up2_add_gpu(int planes, int H, int W, const Dtype* in, Dtype* out);
template <typename Dtype>
void bilinear_up2_adjoint_add_gpu(int planes, int H, int W, const Dtype* dout, Dtype* din);
#endif

}  // namespace caffe

#endif  // CAFFE_UTIL_BILINEAR_UP2_HPP_
