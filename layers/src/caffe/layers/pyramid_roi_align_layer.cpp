#include <cmath>
#include <vector>

#include "caffe/layers/pyramid_roi_align_layer.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

namespace {
// A map at stride 2 of one of side n: n / 2 rounded down or up (pads differ between convs).
bool is_half(int coarse, int fine) { return coarse == fine / 2 || coarse == (fine + 1) / 2; }
}  // namespace

template <typename Dtype>
void PyramidROIAlignLayer<Dtype>::LayerSetUp(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const PyramidROIAlignParameter& param = this->layer_param_.pyramid_roi_align_param();
  const string& name = this->layer_param_.name();
  CHECK(param.pooled_size() > 0 && param.pooled_size() <= 1024) << "PyramidROIAlign " << name
      << ": pooled_size must be in [1, 1024], got " << param.pooled_size();
  CHECK(std::isfinite(param.first_stride()) && param.first_stride() > 0) << "PyramidROIAlign "
      << name << ": first_stride must be > 0, got " << param.first_stride();
  for (int k = 0; k < 3; ++k) {
    level_[k].spatial_scale = Dtype(1) / (Dtype(param.first_stride()) * Dtype(1 << k));
    level_[k].pooled_h = level_[k].pooled_w = static_cast<int>(param.pooled_size()) << (2 - k);
    level_[k].sampling_ratio = static_cast<int>(param.sampling_ratio());
    level_[k].aligned = param.aligned();
  }
}

template <typename Dtype>
void PyramidROIAlignLayer<Dtype>::Reshape(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const string& name = this->layer_param_.name();
  for (int k = 0; k < 3; ++k) {
    CHECK_EQ(bottom[k]->num_axes(), 4) << "PyramidROIAlign " << name << ": P" << k + 1
        << " must be (N, C, H, W), got " << bottom[k]->shape_string();
    CHECK_GT(bottom[k]->height() * bottom[k]->width(), 0) << "PyramidROIAlign " << name
        << ": P" << k + 1 << " must have a non-empty map, got " << bottom[k]->shape_string();
  }
  const Blob<Dtype>& p1 = *bottom[0];
  const Blob<Dtype>& p2 = *bottom[1];
  const Blob<Dtype>& p3 = *bottom[2];
  CHECK(p1.num() == p2.num() && p2.num() == p3.num() &&
        p1.channels() == p2.channels() && p2.channels() == p3.channels())
      << "PyramidROIAlign " << name << ": P1, P2, P3 must agree in batch size and channels, got "
      << p1.shape_string() << ", " << p2.shape_string() << ", " << p3.shape_string();
  // A wiring check (levels swapped or missing): the scales come from first_stride, not from the
  // map sizes, so a level of the wrong size would be pooled silently at the wrong place.
  CHECK(is_half(p2.height(), p1.height()) && is_half(p2.width(), p1.width()) &&
        is_half(p3.height(), p2.height()) && is_half(p3.width(), p2.width()))
      << "PyramidROIAlign " << name << ": each level must be half the previous one (rounded "
      << "down or up), got " << p1.height() << "x" << p1.width() << ", " << p2.height() << "x"
      << p2.width() << ", " << p3.height() << "x" << p3.width();
  const Blob<Dtype>& rois = *bottom[3];
  CHECK(rois.num_axes() >= 2 && rois.shape(1) == 5 && rois.count() == 5 * rois.shape(0))
      << "PyramidROIAlign " << name << ": rois must be (R, 5) = (batch, x1, y1, x2, y2), got "
      << rois.shape_string();
  num_rois_ = rois.shape(0);
  for (int k = 0; k < 3; ++k) {
    top[k]->Reshape(num_rois_, p1.channels(), level_[k].pooled_h, level_[k].pooled_w);
  }
}

template <typename Dtype>
void PyramidROIAlignLayer<Dtype>::CheckROIs(const Blob<Dtype>& rois, int num) const {
  const Dtype* r = rois.cpu_data();
  for (int i = 0; i < num_rois_; ++i, r += 5) {
    CHECK(r[0] >= 0 && r[0] < num && r[0] == std::floor(r[0]))
        << "PyramidROIAlign " << this->layer_param_.name() << ": rois row " << i
        << " has batch index " << r[0] << ", must be an integer in [0, " << num << ")";
    CHECK(std::isfinite(r[1]) && std::isfinite(r[2]) && std::isfinite(r[3]) &&
          std::isfinite(r[4]))
        << "PyramidROIAlign " << this->layer_param_.name() << ": rois row " << i
        << " has a non-finite coordinate (" << r[1] << ", " << r[2] << ", " << r[3] << ", "
        << r[4] << ")";
    // As detectron2's aligned ROIAlign: an inverted box would be sampled mirrored.
    CHECK(!level_[0].aligned || (r[3] >= r[1] && r[4] >= r[2]))
        << "PyramidROIAlign " << this->layer_param_.name() << ": rois row " << i
        << " is inverted (x1, y1, x2, y2) = (" << r[1] << ", " << r[2] << ", " << r[3] << ", "
        << r[4] << "); aligned ROIAlign needs x2 >= x1 and y2 >= y1";
  }
}

template <typename Dtype>
void PyramidROIAlignLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  if (num_rois_ == 0) return;
  CheckROIs(*bottom[3], bottom[0]->num());
  const Dtype* rois = bottom[3]->cpu_data();
  for (int k = 0; k < 3; ++k) {
    const Blob<Dtype>& p = *bottom[k];
    roi_align_forward_cpu(num_rois_, rois, p.channels(), p.height(), p.width(), p.cpu_data(),
                          level_[k], top[k]->mutable_cpu_data());
  }
}

template <typename Dtype>
void PyramidROIAlignLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (propagate_down[3]) {  // boxes get no gradient (see the header)
    caffe_set(bottom[3]->count(), Dtype(0), bottom[3]->mutable_cpu_diff());
  }
  const Dtype* rois = bottom[3]->cpu_data();
  for (int k = 0; k < 3; ++k) {
    if (!propagate_down[k]) continue;
    Blob<Dtype>& p = *bottom[k];
    caffe_set(p.count(), Dtype(0), p.mutable_cpu_diff());
    roi_align_backward_add_cpu(num_rois_, rois, p.channels(), p.height(), p.width(),
                               top[k]->cpu_diff(), level_[k], p.mutable_cpu_diff());
  }
}

#ifdef CPU_ONLY
STUB_GPU(PyramidROIAlignLayer);
#endif

INSTANTIATE_CLASS(PyramidROIAlignLayer);
REGISTER_LAYER_CLASS(PyramidROIAlign);

}  // namespace caffe
