#include <vector>

#include "caffe/layers/dice_loss_layer.hpp"
#include "caffe/util/focal_math.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

static const int kDiceThreads = 256;  // a power of two, for the tree reduction

// One block per ROI: sum p, sum g, sum p g over its elements, then D_r, S_r and 1 - D_r.
template <typename Dtype>
__global__ void dice_roi_kernel(int inner, const Dtype* x, const Dtype* g, Dtype eps,
                                Dtype* stats, Dtype* roi_loss) {
  __shared__ Dtype s_p[kDiceThreads];
  __shared__ Dtype s_g[kDiceThreads];
  __shared__ Dtype s_pg[kDiceThreads];
  const int r = blockIdx.x;
  const int t = threadIdx.x;
  const Dtype* xr = x + static_cast<size_t>(r) * inner;
  const Dtype* gr = g + static_cast<size_t>(r) * inner;
  Dtype sp = 0, sg = 0, spg = 0;
  for (int j = t; j < inner; j += kDiceThreads) {
    Dtype p, q, pq, e;
    stable_sigmoid(xr[j], &p, &q, &pq, &e);
    sp += p;
    sg += gr[j];
    spg += p * gr[j];
  }
  s_p[t] = sp;
  s_g[t] = sg;
  s_pg[t] = spg;
  __syncthreads();
  for (int half = kDiceThreads / 2; half > 0; half >>= 1) {
    if (t < half) {
      s_p[t] += s_p[t + half];
      s_g[t] += s_g[t + half];
      s_pg[t] += s_pg[t + half];
    }
    __syncthreads();
  }
  if (t == 0) {
    const Dtype s = s_p[0] + s_g[0] + eps;
    const Dtype d = (2 * s_pg[0] + eps) / s;
    stats[2 * r] = d;
    stats[2 * r + 1] = s;
    roi_loss[r] = 1 - d;
  }
}

template <typename Dtype>
__global__ void dice_backward_kernel(int n, int inner, const Dtype* x, const Dtype* g,
                                     const Dtype* stats, Dtype scale, Dtype* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const int r = i / inner;
    Dtype p, q, pq, e;
    stable_sigmoid(x[i], &p, &q, &pq, &e);
    dx[i] = scale / stats[2 * r + 1] * (stats[2 * r] - 2 * g[i]) * pq;
  }
}

template <typename Dtype>
void DiceLossLayer<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  if (rois_ == 0) {
    top[0]->mutable_cpu_data()[0] = 0;
    return;
  }
  // The per-ROI losses go to stats_'s diff (2R values; the first R are used).
  dice_roi_kernel<Dtype><<<rois_, kDiceThreads>>>(inner_, bottom[0]->gpu_data(),
      bottom[1]->gpu_data(), eps_, stats_.mutable_gpu_data(), stats_.mutable_gpu_diff());
  CUDA_POST_KERNEL_CHECK;
  const Dtype* roi_loss = stats_.cpu_diff();
  double loss = 0;
  for (int r = 0; r < rois_; ++r) loss += roi_loss[r];
  top[0]->mutable_cpu_data()[0] = loss / rois_;
}

template <typename Dtype>
void DiceLossLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (propagate_down[1]) {
    LOG(FATAL) << this->type() << " layer " << this->layer_param_.name()
        << " cannot backpropagate to the targets (bottom[1]).";
  }
  const int count = bottom[0]->count();
  if (!propagate_down[0] || count == 0) return;
  const Dtype scale = top[0]->cpu_diff()[0] / rois_;
  dice_backward_kernel<Dtype><<<CAFFE_GET_BLOCKS(count), CAFFE_CUDA_NUM_THREADS>>>(
      count, inner_, bottom[0]->gpu_data(), bottom[1]->gpu_data(), stats_.gpu_data(), scale,
      bottom[0]->mutable_gpu_diff());
  CUDA_POST_KERNEL_CHECK;
}

INSTANTIATE_LAYER_GPU_FUNCS(DiceLossLayer);

}  // namespace caffe
