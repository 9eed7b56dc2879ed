#include <vector>

#include "caffe/layers/sigmoid_focal_loss_layer.hpp"
#include "caffe/util/focal_math.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

// loss[i] = w_i * focal_i; tally[i] = 1 where the element counts towards the normaliser.
template <typename Dtype>
__global__ void sigmoid_focal_forward_kernel(int n, const Dtype* x, const Dtype* y,
    const Dtype* w, Dtype alpha, Dtype gamma, bool by_targets, Dtype* loss, Dtype* tally) {
  CUDA_KERNEL_LOOP(i, n) {
    const Dtype wi = w ? w[i] : Dtype(1);
    Dtype li;
    sigmoid_focal_element(x[i], y[i], alpha, gamma, &li, static_cast<Dtype*>(NULL));
    loss[i] = wi * li;
    tally[i] = wi > 0 && (!by_targets || y[i] > 0) ? Dtype(1) : Dtype(0);
  }
}

template <typename Dtype>
__global__ void sigmoid_focal_backward_kernel(int n, const Dtype* x, const Dtype* y,
    const Dtype* w, Dtype alpha, Dtype gamma, Dtype scale, Dtype* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    Dtype gi;
    sigmoid_focal_element(x[i], y[i], alpha, gamma, static_cast<Dtype*>(NULL), &gi);
    dx[i] = scale * (w ? w[i] : Dtype(1)) * gi;
  }
}

template <typename Dtype>
void SigmoidFocalLossLayer<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const int count = bottom[0]->count();
  if (count == 0) {  // no launch with zero blocks
    normaliser_ = Normaliser(bottom, Dtype(0));
    top[0]->mutable_cpu_data()[0] = 0;
    return;
  }
  const Dtype* w = weight_index_ >= 0 ? bottom[weight_index_]->gpu_data() : NULL;
  const bool by_targets =
      normalization_ == SigmoidFocalLossParameter_Normalization_POSITIVE_TARGETS;
  Dtype* loss = loss_buf_.mutable_gpu_data();
  Dtype* tally = loss_buf_.mutable_gpu_diff();
  sigmoid_focal_forward_kernel<Dtype><<<CAFFE_GET_BLOCKS(count), CAFFE_CUDA_NUM_THREADS>>>(
      count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), w, alpha_, gamma_, by_targets,
      loss, tally);
  CUDA_POST_KERNEL_CHECK;
  // Sums as dot products with ones (not asum), so they are exact sums whatever the signs.
  Dtype* ones = ones_.mutable_gpu_data();
  caffe_gpu_set(count, Dtype(1), ones);
  Dtype sum = 0, n_counted = 0;
  caffe_gpu_dot(count, loss, ones, &sum);
  if (normalization_ == SigmoidFocalLossParameter_Normalization_POSITIVE_WEIGHTS ||
      normalization_ == SigmoidFocalLossParameter_Normalization_POSITIVE_TARGETS) {
    caffe_gpu_dot(count, tally, ones, &n_counted);
  }
  normaliser_ = Normaliser(bottom, n_counted);
  top[0]->mutable_cpu_data()[0] = sum / normaliser_;
}

template <typename Dtype>
void SigmoidFocalLossLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  CheckPropagateDown(propagate_down, bottom);
  const int count = bottom[0]->count();
  if (!propagate_down[0] || count == 0) return;
  const Dtype* w = weight_index_ >= 0 ? bottom[weight_index_]->gpu_data() : NULL;
  const Dtype scale = top[0]->cpu_diff()[0] / normaliser_;
  sigmoid_focal_backward_kernel<Dtype><<<CAFFE_GET_BLOCKS(count), CAFFE_CUDA_NUM_THREADS>>>(
      count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), w, alpha_, gamma_, scale,
      bottom[0]->mutable_gpu_diff());
  CUDA_POST_KERNEL_CHECK;
}

INSTANTIATE_LAYER_GPU_FUNCS(SigmoidFocalLossLayer);

}  // namespace caffe
