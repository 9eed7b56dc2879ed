#include <cmath>
#include <vector>

#include "caffe/layers/sigmoid_focal_loss_layer.hpp"
#include "caffe/util/focal_math.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

template <typename Dtype>
void SigmoidFocalLossLayer<Dtype>::LayerSetUp(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  LossLayer<Dtype>::LayerSetUp(bottom, top);
  const SigmoidFocalLossParameter& p = this->layer_param_.sigmoid_focal_loss_param();
  const string& name = this->layer_param_.name();
  alpha_ = p.alpha();
  gamma_ = p.gamma();
  normalization_ = p.normalization();
  CHECK_LE(alpha_, 1) << "SigmoidFocalLoss " << name
      << ": alpha must be in [0, 1] (or < 0 to disable), got " << alpha_;
  CHECK(gamma_ >= 0 && std::isfinite(static_cast<double>(gamma_))) << "SigmoidFocalLoss "
      << name << ": gamma must be finite and >= 0, got " << gamma_;
  const int n = bottom.size();
  if (normalization_ == SigmoidFocalLossParameter_Normalization_BOTTOM) {
    CHECK(n == 3 || n == 4) << "SigmoidFocalLoss " << name << ": normalization BOTTOM needs "
        "the bottoms x, y[, w], norm (3 or 4), got " << n;
    weight_index_ = n == 4 ? 2 : -1;
  } else {
    CHECK(n == 2 || n == 3) << "SigmoidFocalLoss " << name << ": the bottoms are x, y[, w] "
        "(2 or 3; a normaliser bottom needs normalization BOTTOM), got " << n;
    weight_index_ = n == 3 ? 2 : -1;
  }
}

template <typename Dtype>
void SigmoidFocalLossLayer<Dtype>::Reshape(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const string& name = this->layer_param_.name();
  const int count = bottom[0]->count();
  CHECK_EQ(bottom[1]->count(), count) << "SigmoidFocalLoss " << name
      << ": targets (bottom[1]) must have the count of the logits " << bottom[0]->shape_string()
      << ", got " << bottom[1]->shape_string();
  if (weight_index_ >= 0) {
    CHECK_EQ(bottom[weight_index_]->count(), count) << "SigmoidFocalLoss " << name
        << ": weights (bottom[2]) must have the count of the logits "
        << bottom[0]->shape_string() << ", got " << bottom[weight_index_]->shape_string();
  }
  if (normalization_ == SigmoidFocalLossParameter_Normalization_BOTTOM) {
    CHECK_EQ(bottom.back()->count(), 1) << "SigmoidFocalLoss " << name
        << ": the normaliser (last bottom) must hold one value, got "
        << bottom.back()->shape_string();
  }
  top[0]->Reshape(vector<int>());
  loss_buf_.ReshapeLike(*bottom[0]);
  ones_.ReshapeLike(*bottom[0]);
}

template <typename Dtype>
Dtype SigmoidFocalLossLayer<Dtype>::Normaliser(const vector<Blob<Dtype>*>& bottom,
                                               Dtype tally) const {
  Dtype norm = 1;
  switch (normalization_) {
    case SigmoidFocalLossParameter_Normalization_POSITIVE_WEIGHTS:
    case SigmoidFocalLossParameter_Normalization_POSITIVE_TARGETS:
      norm = tally;
      break;
    case SigmoidFocalLossParameter_Normalization_BATCH_SIZE:
      norm = bottom[0]->num_axes() > 0 ? bottom[0]->shape(0) : 1;
      break;
    case SigmoidFocalLossParameter_Normalization_BOTTOM:
      norm = bottom.back()->cpu_data()[0];
      CHECK_GT(norm, 0) << "SigmoidFocalLoss " << this->layer_param_.name()
          << ": the normaliser bottom must be > 0, got " << norm;
      return norm;  // given, not counted: not clamped
    case SigmoidFocalLossParameter_Normalization_NONE:
      break;
    default:
      LOG(FATAL) << "SigmoidFocalLoss " << this->layer_param_.name()
          << ": unknown normalization " << normalization_;
  }
  return norm > 1 ? norm : Dtype(1);
}

template <typename Dtype>
void SigmoidFocalLossLayer<Dtype>::CheckPropagateDown(const vector<bool>& propagate_down,
    const vector<Blob<Dtype>*>& bottom) const {
  if (propagate_down[1]) {
    LOG(FATAL) << this->type() << " layer " << this->layer_param_.name()
        << " cannot backpropagate to the targets (bottom[1]).";
  }
  // Weights and the normaliser are constants of the loss: their gradient is zero.
  for (size_t i = 2; i < bottom.size(); ++i) {
    if (propagate_down[i]) caffe_set(bottom[i]->count(), Dtype(0), bottom[i]->mutable_cpu_diff());
  }
}

template <typename Dtype>
void SigmoidFocalLossLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const int count = bottom[0]->count();
  const Dtype* x = bottom[0]->cpu_data();
  const Dtype* y = bottom[1]->cpu_data();
  const Dtype* w = weight_index_ >= 0 ? bottom[weight_index_]->cpu_data() : NULL;
  const bool by_targets =
      normalization_ == SigmoidFocalLossParameter_Normalization_POSITIVE_TARGETS;
  double loss = 0, tally = 0;
  for (int i = 0; i < count; ++i) {
    const Dtype wi = w ? w[i] : Dtype(1);
    tally += wi > 0 && (!by_targets || y[i] > 0);
    Dtype li;
    sigmoid_focal_element(x[i], y[i], alpha_, gamma_, &li, static_cast<Dtype*>(NULL));
    loss += static_cast<double>(wi) * li;
  }
  normaliser_ = Normaliser(bottom, static_cast<Dtype>(tally));
  top[0]->mutable_cpu_data()[0] = static_cast<Dtype>(loss / normaliser_);
}

template <typename Dtype>
void SigmoidFocalLossLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  CheckPropagateDown(propagate_down, bottom);
  if (!propagate_down[0]) return;
  const int count = bottom[0]->count();
  const Dtype* x = bottom[0]->cpu_data();
  const Dtype* y = bottom[1]->cpu_data();
  const Dtype* w = weight_index_ >= 0 ? bottom[weight_index_]->cpu_data() : NULL;
  Dtype* dx = bottom[0]->mutable_cpu_diff();
  const Dtype scale = top[0]->cpu_diff()[0] / normaliser_;
  for (int i = 0; i < count; ++i) {
    Dtype gi;
    sigmoid_focal_element(x[i], y[i], alpha_, gamma_, static_cast<Dtype*>(NULL), &gi);
    dx[i] = scale * (w ? w[i] : Dtype(1)) * gi;
  }
}

#ifdef CPU_ONLY
STUB_GPU(SigmoidFocalLossLayer);
#endif

INSTANTIATE_CLASS(SigmoidFocalLossLayer);
REGISTER_LAYER_CLASS(SigmoidFocalLoss);

}  // namespace caffe
