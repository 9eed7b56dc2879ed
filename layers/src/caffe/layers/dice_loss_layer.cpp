#include <vector>

#include "caffe/layers/dice_loss_layer.hpp"
#include "caffe/util/focal_math.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

template <typename Dtype>
void DiceLossLayer<Dtype>::LayerSetUp(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  LossLayer<Dtype>::LayerSetUp(bottom, top);
  eps_ = this->layer_param_.dice_loss_param().eps();
  CHECK_GT(eps_, 0) << "DiceLoss " << this->layer_param_.name() << ": eps must be > 0, got "
      << eps_;
}

template <typename Dtype>
void DiceLossLayer<Dtype>::Reshape(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  CHECK_GE(bottom[0]->num_axes(), 1) << "DiceLoss " << this->layer_param_.name()
      << ": the logits must be (R, ...), got " << bottom[0]->shape_string();
  CHECK(bottom[0]->shape() == bottom[1]->shape()) << "DiceLoss " << this->layer_param_.name()
      << ": logits and targets must have the same shape, got " << bottom[0]->shape_string()
      << " and " << bottom[1]->shape_string();
  rois_ = bottom[0]->shape(0);
  inner_ = bottom[0]->count(1);
  top[0]->Reshape(vector<int>());
  stats_.Reshape(vector<int>{rois_, 2});
}

template <typename Dtype>
void DiceLossLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  if (rois_ == 0) {
    top[0]->mutable_cpu_data()[0] = 0;
    return;
  }
  const Dtype* x = bottom[0]->cpu_data();
  const Dtype* g = bottom[1]->cpu_data();
  Dtype* stats = stats_.mutable_cpu_data();
  double loss = 0;
  for (int r = 0; r < rois_; ++r) {
    double sp = 0, sg = 0, spg = 0;
    for (int j = r * inner_; j < (r + 1) * inner_; ++j) {
      Dtype p, q, pq, e;
      stable_sigmoid(x[j], &p, &q, &pq, &e);
      sp += p;
      sg += g[j];
      spg += p * g[j];
    }
    const double s = sp + sg + eps_;
    const double d = (2 * spg + eps_) / s;
    stats[2 * r] = d;
    stats[2 * r + 1] = s;
    loss += 1 - d;
  }
  top[0]->mutable_cpu_data()[0] = loss / rois_;
}

template <typename Dtype>
void DiceLossLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (propagate_down[1]) {
    LOG(FATAL) << this->type() << " layer " << this->layer_param_.name()
        << " cannot backpropagate to the targets (bottom[1]).";
  }
  if (!propagate_down[0] || rois_ == 0) return;
  const Dtype* x = bottom[0]->cpu_data();
  const Dtype* g = bottom[1]->cpu_data();
  const Dtype* stats = stats_.cpu_data();
  Dtype* dx = bottom[0]->mutable_cpu_diff();
  const Dtype scale = top[0]->cpu_diff()[0] / rois_;
  for (int r = 0; r < rois_; ++r) {
    const Dtype d = stats[2 * r];
    const Dtype k = scale / stats[2 * r + 1];
    for (int j = r * inner_; j < (r + 1) * inner_; ++j) {
      Dtype p, q, pq, e;
      stable_sigmoid(x[j], &p, &q, &pq, &e);
      dx[j] = k * (d - 2 * g[j]) * pq;
    }
  }
}

#ifdef CPU_ONLY
STUB_GPU(DiceLossLayer);
#endif

INSTANTIATE_CLASS(DiceLossLayer);
REGISTER_LAYER_CLASS(DiceLoss);

}  // namespace caffe
