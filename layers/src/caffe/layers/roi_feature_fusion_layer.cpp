#include <vector>

#include "caffe/layers/roi_feature_fusion_layer.hpp"
#include "caffe/util/bilinear_up2.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

template <typename Dtype>
void ROIFeatureFusionLayer<Dtype>::LayerSetUp(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  relu_ = this->layer_param_.roi_feature_fusion_param().relu();
}

template <typename Dtype>
void ROIFeatureFusionLayer<Dtype>::Reshape(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const string& name = this->layer_param_.name();
  for (int i = 0; i < 3; ++i) {
    CHECK_EQ(bottom[i]->num_axes(), 4) << "ROIFeatureFusion " << name << ": bottom[" << i
        << "] must be (R, C, H, W), got " << bottom[i]->shape_string();
  }
  const Blob<Dtype>& r1 = *bottom[0];
  const Blob<Dtype>& r2 = *bottom[1];
  const Blob<Dtype>& r3 = *bottom[2];
  CHECK(r1.num() == r2.num() && r2.num() == r3.num() &&
        r1.channels() == r2.channels() && r2.channels() == r3.channels())
      << "ROIFeatureFusion " << name << ": R1, R2, R3 must agree in ROIs and channels, got "
      << r1.shape_string() << ", " << r2.shape_string() << ", " << r3.shape_string();
  CHECK(r2.height() == 2 * r3.height() && r2.width() == 2 * r3.width() &&
        r1.height() == 2 * r2.height() && r1.width() == 2 * r2.width())
      << "ROIFeatureFusion " << name << ": spatial sizes must be 4:2:1 (R1 = 2 R2 = 4 R3), got "
      << r1.height() << "x" << r1.width() << ", " << r2.height() << "x" << r2.width() << ", "
      << r3.height() << "x" << r3.width();
  CHECK_GT(r3.height() * r3.width(), 0) << "ROIFeatureFusion " << name
      << ": R3 must have a non-empty spatial size, got " << r3.shape_string();
  planes_ = r1.num() * r1.channels();
  h3_ = r3.height();
  w3_ = r3.width();
  top[0]->ReshapeLike(r1);
  mid_.ReshapeLike(r2);
}

template <typename Dtype>
void ROIFeatureFusionLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  if (planes_ == 0) return;
  Dtype* mid = mid_.mutable_cpu_data();
  Dtype* out = top[0]->mutable_cpu_data();
  caffe_copy(mid_.count(), bottom[1]->cpu_data(), mid);
  bilinear_up2_add_cpu(planes_, h3_, w3_, bottom[2]->cpu_data(), mid);
  caffe_copy(top[0]->count(), bottom[0]->cpu_data(), out);
  bilinear_up2_add_cpu(planes_, 2 * h3_, 2 * w3_, mid, out);
  if (relu_) {
    for (int i = 0; i < top[0]->count(); ++i) out[i] = out[i] > 0 ? out[i] : Dtype(0);
  }
}

template <typename Dtype>
void ROIFeatureFusionLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (planes_ == 0 || !(propagate_down[0] || propagate_down[1] || propagate_down[2])) return;
  // dR1 holds the gradient at the ReLU's input; R2 and R3 are reached through it even when R1
  // itself needs no gradient, so it is always written (Caffe zeroes nothing for us).
  const int n1 = top[0]->count();
  const Dtype* top_diff = top[0]->cpu_diff();
  Dtype* d1 = bottom[0]->mutable_cpu_diff();
  if (relu_) {
    const Dtype* top_data = top[0]->cpu_data();
    for (int i = 0; i < n1; ++i) d1[i] = top_data[i] > 0 ? top_diff[i] : Dtype(0);
  } else {
    caffe_copy(n1, top_diff, d1);
  }
  if (!(propagate_down[1] || propagate_down[2])) return;
  Dtype* d2 = mid_.mutable_cpu_diff();
  caffe_set(mid_.count(), Dtype(0), d2);
  bilinear_up2_adjoint_add_cpu(planes_, 2 * h3_, 2 * w3_, d1, d2);
  if (propagate_down[1]) caffe_copy(mid_.count(), d2, bottom[1]->mutable_cpu_diff());
  if (propagate_down[2]) {
    Dtype* d3 = bottom[2]->mutable_cpu_diff();
    caffe_set(bottom[2]->count(), Dtype(0), d3);
    bilinear_up2_adjoint_add_cpu(planes_, h3_, w3_, d2, d3);
  }
}

#ifdef CPU_ONLY
STUB_GPU(ROIFeatureFusionLayer);
#endif

INSTANTIATE_CLASS(ROIFeatureFusionLayer);
REGISTER_LAYER_CLASS(ROIFeatureFusion);

}  // namespace caffe
