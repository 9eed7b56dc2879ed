#include <vector>

#include "caffe/layers/roi_feature_fusion_layer.hpp"
#include "caffe/util/bilinear_up2.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

template <typename Dtype>
__global__ void rff_relu_kernel(int n, Dtype* x) {
  CUDA_KERNEL_LOOP(i, n) { x[i] = x[i] > 0 ? x[i] : Dtype(0); }
}

template <typename Dtype>
__global__ void rff_relu_backward_kernel(int n, const Dtype* top_data, const Dtype* top_diff,
                                         Dtype* diff) {
  CUDA_KERNEL_LOOP(i, n) { diff[i] = top_data[i] > 0 ? top_diff[i] : Dtype(0); }
}

template <typename Dtype>
void ROIFeatureFusionLayer<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  if (planes_ == 0) return;
  Dtype* mid = mid_.mutable_gpu_data();
  Dtype* out = top[0]->mutable_gpu_data();
  caffe_copy(mid_.count(), bottom[1]->gpu_data(), mid);
  bilinear_up2_add_gpu(planes_, h3_, w3_, bottom[2]->gpu_data(), mid);
  caffe_copy(top[0]->count(), bottom[0]->gpu_data(), out);
  bilinear_up2_add_gpu(planes_, 2 * h3_, 2 * w3_, mid, out);
  if (relu_) {
    const int n = top[0]->count();
    rff_relu_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(n, out);
    CUDA_POST_KERNEL_CHECK;
  }
}

template <typename Dtype>
void ROIFeatureFusionLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (planes_ == 0 || !(propagate_down[0] || propagate_down[1] || propagate_down[2])) return;
  const int n1 = top[0]->count();
  Dtype* d1 = bottom[0]->mutable_gpu_diff();
  if (relu_) {
    rff_relu_backward_kernel<Dtype><<<CAFFE_GET_BLOCKS(n1), CAFFE_CUDA_NUM_THREADS>>>(
        n1, top[0]->gpu_data(), top[0]->gpu_diff(), d1);
    CUDA_POST_KERNEL_CHECK;
  } else {
    caffe_copy(n1, top[0]->gpu_diff(), d1);
  }
  if (!(propagate_down[1] || propagate_down[2])) return;
  Dtype* d2 = mid_.mutable_gpu_diff();
  caffe_gpu_set(mid_.count(), Dtype(0), d2);
  bilinear_up2_adjoint_add_gpu(planes_, 2 * h3_, 2 * w3_, d1, d2);
  if (propagate_down[1]) caffe_copy(mid_.count(), d2, bottom[1]->mutable_gpu_diff());
  if (propagate_down[2]) {
    Dtype* d3 = bottom[2]->mutable_gpu_diff();
    caffe_gpu_set(bottom[2]->count(), Dtype(0), d3);
    bilinear_up2_adjoint_add_gpu(planes_, h3_, w3_, d2, d3);
  }
}

INSTANTIATE_LAYER_GPU_FUNCS(ROIFeatureFusionLayer);

}  // namespace caffe
