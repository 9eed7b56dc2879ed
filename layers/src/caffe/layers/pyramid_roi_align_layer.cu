#include <vector>

#include "caffe/layers/pyramid_roi_align_layer.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

template <typename Dtype>
void PyramidROIAlignLayer<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  if (num_rois_ == 0) return;
  CheckROIs(*bottom[3], bottom[0]->num());  // on the host: R x 5 values
  const Dtype* rois = bottom[3]->gpu_data();
  for (int k = 0; k < 3; ++k) {
    const Blob<Dtype>& p = *bottom[k];
    roi_align_forward_gpu(num_rois_, rois, p.channels(), p.height(), p.width(), p.gpu_data(),
                          level_[k], top[k]->mutable_gpu_data());
  }
}

template <typename Dtype>
void PyramidROIAlignLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (propagate_down[3]) {  // boxes get no gradient (see the header)
    caffe_gpu_set(bottom[3]->count(), Dtype(0), bottom[3]->mutable_gpu_diff());
  }
  const Dtype* rois = bottom[3]->gpu_data();
  for (int k = 0; k < 3; ++k) {
    if (!propagate_down[k]) continue;
    Blob<Dtype>& p = *bottom[k];
    caffe_gpu_set(p.count(), Dtype(0), p.mutable_gpu_diff());
    roi_align_backward_add_gpu(num_rois_, rois, p.channels(), p.height(), p.width(),
                               top[k]->gpu_diff(), level_[k], p.mutable_gpu_diff());
  }
}

INSTANTIATE_LAYER_GPU_FUNCS(PyramidROIAlignLayer);

}  // namespace caffe
