#include "caffe/util/bilinear_up2.hpp"
#include "caffe/common.hpp"

namespace caffe {

template <typename Dtype>
__global__ void bilinear_up2_add_kernel(int n, int H, int W, const Dtype* in, Dtype* out) {
  const int OH = 2 * H, OW = 2 * W;
  CUDA_KERNEL_LOOP(index, n) {
    const int x = index % OW;
    const int y = (index / OW) % OH;
    const int p = index / (OW * OH);
    int y0, y1, x0, x1;
    Dtype fy, fx;
    bilinear_up2_taps(y, H, &y0, &y1, &fy);
    bilinear_up2_taps(x, W, &x0, &x1, &fx);
    const Dtype* src = in + p * H * W;
    out[index] += (1 - fy) * ((1 - fx) * src[y0 * W + x0] + fx * src[y0 * W + x1])
                + fy * ((1 - fx) * src[y1 * W + x0] + fx * src[y1 * W + x1]);
  }
}

// Gather form of the adjoint: input (i, j) only receives from outputs 2i-1..2i+2 (and the same in
// x), so each thread owns one input element and no atomics are needed.
template <typename Dtype>
__global__ void bilinear_up2_adjoint_add_kernel(int n, int H, int W, const Dtype* dout,
                                                Dtype* din) {
  const int OH = 2 * H, OW = 2 * W;
  CUDA_KERNEL_LOOP(index, n) {
    const int j = index % W;
    const int i = (index / W) % H;
    const int p = index / (W * H);
    const Dtype* g = dout + p * OH * OW;
    Dtype acc = 0;
    for (int y = max(2 * i - 1, 0); y <= min(2 * i + 2, OH - 1); ++y) {
      const Dtype wy = bilinear_up2_weight<Dtype>(y, i, H);
      if (wy == 0) continue;
      Dtype row = 0;
      for (int x = max(2 * j - 1, 0); x <= min(2 * j + 2, OW - 1); ++x) {
        row += bilinear_up2_weight<Dtype>(x, j, W) * g[y * OW + x];
      }
      acc += wy * row;
    }
    din[index] += acc;
  }
}

template <typename Dtype>
void bilinear_up2_add_gpu(int planes, int H, int W, const Dtype* in, Dtype* out) {
  const int n = planes * 4 * H * W;
  if (n == 0) return;
  bilinear_up2_add_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(
      n, H, W, in, out);
  CUDA_POST_KERNEL_CHECK;
}

template <typename Dtype>
void bilinear_up2_adjoint_add_gpu(int planes, int H, int W, const Dtype* dout, Dtype* din) {
  const int n = planes * H * W;
  if (n == 0) return;
  bilinear_up2_adjoint_add_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(
      n, H, W, dout, din);
  CUDA_POST_KERNEL_CHECK;
}

template void bilinear_up2_add_gpu<float>(int, int, int, const float*, float*);
template void bilinear_up2_add_gpu<double>(int, int, int, const double*, double*);
template void bilinear_up2_adjoint_add_gpu<float>(int, int, int, const float*, float*);
template void bilinear_up2_adjoint_add_gpu<double>(int, int, int, const double*, double*);

}  // namespace caffe
