#include <algorithm>
#include <cmath>
#include <vector>

#include "caffe/layers/iam_decode_layer.hpp"
#include "caffe/util/iam_box_util.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

template <typename Dtype>
void IAMDecodeLayer<Dtype>::LayerSetUp(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const IAMDecodeParameter& p = this->layer_param_.iam_decode_param();
  const string& name = this->layer_param_.name();
  CHECK_GT(p.num_classes(), 0u) << "IAMDecode " << name << ": num_classes must be > 0, got "
      << p.num_classes();
  CHECK(p.score_threshold() >= 0 && p.score_threshold() < 1) << "IAMDecode " << name
      << ": score_threshold must be in [0, 1), got " << p.score_threshold();
  CHECK(p.image_width() > 0 && p.image_height() > 0) << "IAMDecode " << name
      << ": image_width and image_height must be > 0, got " << p.image_width() << " x "
      << p.image_height();
  CHECK_GE(p.min_box_size(), 0) << "IAMDecode " << name << ": min_box_size must be >= 0, got "
      << p.min_box_size();
  num_classes_ = p.num_classes();
  score_threshold_ = p.score_threshold();
  top_k_ = p.top_k();
  image_width_ = p.image_width();
  image_height_ = p.image_height();
  min_box_size_ = p.min_box_size();
  cell_ = p.box_coding() == IAMDecodeParameter_BoxCoding_CELL;
}

template <typename Dtype>
void IAMDecodeLayer<Dtype>::Reshape(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const Blob<Dtype>& in = *bottom[0];
  const string& name = this->layer_param_.name();
  const int axes = in.num_axes();
  CHECK(axes == 3 || axes == 4) << "IAMDecode " << name
      << ": bottom must be (N, n, 4 + C) or (N, 4 + C, H, W), got " << in.shape_string();
  const int values = axes == 3 ? in.shape(2) : in.shape(1);
  CHECK_EQ(values, 4 + num_classes_) << "IAMDecode " << name << ": bottom " << in.shape_string()
      << " has " << values << " values per slot, expected 4 + num_classes = 4 + "
      << num_classes_;
  num_images_ = in.shape(0);
  if (axes == 3) {
    num_slots_ = in.shape(1);
    slot_stride_ = values;
    value_stride_ = 1;
    grid_width_ = grid_height_ = static_cast<int>(std::sqrt(num_slots_) + 0.5);
    CHECK(!cell_ || grid_width_ * grid_width_ == num_slots_) << "IAMDecode " << name
        << ": box_coding CELL needs the slot grid; bottom " << in.shape_string() << " has "
        << num_slots_ << " slots, not a square (give the (N, 4 + C, H, W) map instead)";
  } else {
    num_slots_ = in.shape(2) * in.shape(3);
    slot_stride_ = 1;
    value_stride_ = num_slots_;
    grid_height_ = in.shape(2);
    grid_width_ = in.shape(3);
  }
  decoded_.Reshape(vector<int>{num_images_, num_slots_, 6});
  const int per_image = top_k_ > 0 ? std::min(top_k_, num_slots_) : num_slots_;
  const int max_rois = num_images_ * per_image;
  top[0]->Reshape(vector<int>{max_rois, 5});
  for (int i = 1; i < top.size(); ++i) top[i]->Reshape(vector<int>{max_rois});
}

template <typename Dtype>
void IAMDecodeLayer<Dtype>::SelectToTops(const vector<Blob<Dtype>*>& top) {
  const Dtype* dec = decoded_.cpu_data();
  // The selection is small (n is tens) and decides R, hence the top shapes, so it runs on the
  // host for both devices: first the kept slots of every image, in output order.
  vector<int> kept;  // global slot ids, image by image
  vector<int> order;
  for (int i = 0; i < num_images_; ++i) {
    order.clear();
    for (int s = 0; s < num_slots_; ++s) {
      if (dec[(i * num_slots_ + s) * 6 + 4] > score_threshold_) order.push_back(s);
    }
    const Dtype* img = dec + i * num_slots_ * 6;
    std::sort(order.begin(), order.end(), [img](int a, int b) {
      const Dtype sa = img[a * 6 + 4], sb = img[b * 6 + 4];
      return sa > sb || (sa == sb && a < b);
    });
    if (top_k_ > 0 && static_cast<int>(order.size()) > top_k_) order.resize(top_k_);
    for (int s : order) kept.push_back(i * num_slots_ + s);
  }
  const int R = kept.size();
  top[0]->Reshape(vector<int>{R, 5});
  for (int i = 1; i < top.size(); ++i) top[i]->Reshape(vector<int>{R});
  Dtype* rois = top[0]->mutable_cpu_data();
  Dtype* scores = top[1]->mutable_cpu_data();
  Dtype* labels = top[2]->mutable_cpu_data();
  Dtype* slots = top.size() > 3 ? top[3]->mutable_cpu_data() : NULL;
  for (int k = 0; k < R; ++k) {
    const Dtype* d = dec + kept[k] * 6;
    rois[k * 5] = kept[k] / num_slots_;
    for (int j = 0; j < 4; ++j) rois[k * 5 + 1 + j] = d[j];
    scores[k] = d[4];
    labels[k] = d[5];
    if (slots) slots[k] = kept[k] % num_slots_;
  }
}

template <typename Dtype>
void IAMDecodeLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const Dtype* in = bottom[0]->cpu_data();
  Dtype* dec = decoded_.mutable_cpu_data();
  const int values = 4 + num_classes_;
  for (int i = 0; i < num_images_; ++i) {
    for (int s = 0; s < num_slots_; ++s) {
      Dtype* d = dec + (i * num_slots_ + s) * 6;
      int label;
      const Dtype cx = (s % grid_width_ + Dtype(0.5)) / grid_width_;
      const Dtype cy = (s / grid_width_ + Dtype(0.5)) / grid_height_;
      iam_decode_slot(in + (i * num_slots_ * values) + s * slot_stride_, value_stride_,
                      num_classes_, image_width_, image_height_, min_box_size_, d, d + 4,
                      &label, cell_, cx, cy);
      d[5] = label;
    }
  }
  SelectToTops(top);
}

template <typename Dtype>
void IAMDecodeLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (propagate_down[0]) caffe_set(bottom[0]->count(), Dtype(0), bottom[0]->mutable_cpu_diff());
}

#ifdef CPU_ONLY
STUB_GPU(IAMDecodeLayer);
#endif

INSTANTIATE_CLASS(IAMDecodeLayer);
REGISTER_LAYER_CLASS(IAMDecode);

}  // namespace caffe
