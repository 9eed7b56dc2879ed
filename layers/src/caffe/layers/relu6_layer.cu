// CUDA twin of the Caffe fork's ReLU6, whose relu6_layer.cpp has CPU code only (the fork's other
// CPU-only layers run their CPU code in GPU mode: cmake/patches/0002-gpu-runs-cpu-layers.patch).
// Same formulas as the CPU code, element for element:
//   y  = min(max(x, 0) + negative_slope min(x, 0), threshold)
//   dx = dy ((x > 0) + negative_slope (x <= 0)) (x < threshold)
// Works in place (for negative_slope >= 0): with top == bottom, x is the clipped y, which gives
// the same dx (y is in (0, threshold) exactly where x is, and y <= 0 exactly where x <= 0).
#include <vector>

#include "caffe/layers/relu6_layer.hpp"

namespace caffe {

template <typename Dtype>
__global__ void relu6_forward_kernel(int n, const Dtype* in, Dtype negative_slope,
                                     Dtype threshold, Dtype* out) {
  CUDA_KERNEL_LOOP(i, n) {
    const Dtype x = in[i];
    out[i] = min(max(x, Dtype(0)) + negative_slope * min(x, Dtype(0)), threshold);
  }
}

template <typename Dtype>
__global__ void relu6_backward_kernel(int n, const Dtype* in, const Dtype* top_diff,
                                      Dtype negative_slope, Dtype threshold, Dtype* bottom_diff) {
  CUDA_KERNEL_LOOP(i, n) {
    const Dtype x = in[i];
    bottom_diff[i] = (top_diff[i] * ((x > 0) + negative_slope * (x <= 0))) * (x < threshold);
  }
}

template <typename Dtype>
void ReLU6Layer<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const int count = bottom[0]->count();
  if (count == 0) return;
  const ReLU6Parameter& p = this->layer_param_.relu6_param();
  relu6_forward_kernel<Dtype><<<CAFFE_GET_BLOCKS(count), CAFFE_CUDA_NUM_THREADS>>>(
      count, bottom[0]->gpu_data(), Dtype(p.negative_slope()), Dtype(p.threshold()),
      top[0]->mutable_gpu_data());
  CUDA_POST_KERNEL_CHECK;
}

template <typename Dtype>
void ReLU6Layer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  const int count = bottom[0]->count();
  if (!propagate_down[0] || count == 0) return;
  const ReLU6Parameter& p = this->layer_param_.relu6_param();
  relu6_backward_kernel<Dtype><<<CAFFE_GET_BLOCKS(count), CAFFE_CUDA_NUM_THREADS>>>(
      count, bottom[0]->gpu_data(), top[0]->gpu_diff(), Dtype(p.negative_slope()),
      Dtype(p.threshold()), bottom[0]->mutable_gpu_diff());
  CUDA_POST_KERNEL_CHECK;
}

INSTANTIATE_LAYER_GPU_FUNCS(ReLU6Layer);

}  // namespace caffe
