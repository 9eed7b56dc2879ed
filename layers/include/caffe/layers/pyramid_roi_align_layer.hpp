#ifndef CAFFE_PYRAMID_ROI_ALIGN_LAYER_HPP_
#define CAFFE_PYRAMID_ROI_ALIGN_LAYER_HPP_

#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/proto/caffe.pb.h"
#include "caffe/util/roi_align_util.hpp"

namespace caffe {

/**
 * FASSST's ROI extraction ("loct"): every ROI is ROIAligned on all three pyramid mask layers,
 * to 4p x 4p cells on P1, 2p x 2p on P2 and p x p on P3 (R1 = 2 R2 = 4 R3, fused later by
 * ROIFeatureFusion). ROIAlign with detectron2's semantics, caffe/util/roi_align_util.hpp.
 *
 * bottom[0]: P1 (N, C, H1, W1) at stride s0 = first_stride (52x52 for a 416 input, s0 = 8)
 * bottom[1]: P2 (N, C, H2, W2) at stride 2 s0; H2 is H1 / 2 rounded down or up (W likewise)
 * bottom[2]: P3 (N, C, H3, W3) at stride 4 s0; half of P2 the same way
 * bottom[3]: (R, 5) rois = (batch, x1, y1, x2, y2) in input pixels; R may be 0. The batch
 *            index must be an integer in [0, N), the coordinates finite and, when aligned,
 *            x2 >= x1 and y2 >= y1 (CHECKed; legacy mode widens such boxes to 1 cell).
 * top[0]:    R1 (R, C, 4p, 4p)   p = pooled_size
 * top[1]:    R2 (R, C, 2p, 2p)
 * top[2]:    R3 (R, C, p, p)
 * Gradients flow to P1, P2, P3; the rois get none (as in detectron2 and torchvision): when asked
 * for, their diff is set to 0, and force_backward does not ask.
 * Param: pyramid_roi_align_param { pooled_size: 7 first_stride: 8 sampling_ratio: 2
 *        aligned: true }.
 */
template <typename Dtype>
class PyramidROIAlignLayer : public Layer<Dtype> {
 public:
  explicit PyramidROIAlignLayer(const LayerParameter& param) : Layer<Dtype>(param) {}
  virtual void LayerSetUp(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Reshape(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);

  virtual inline const char* type() const { return "PyramidROIAlign"; }
  virtual inline int ExactNumBottomBlobs() const { return 4; }
  virtual inline int ExactNumTopBlobs() const { return 3; }
  virtual inline bool AllowForceBackward(const int bottom_index) const {
    return bottom_index != 3;
  }

 protected:
  virtual void Forward_cpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Forward_gpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Backward_cpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);
  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);

  // CHECKs every roi row: batch index an integer in [0, num), coordinates finite, not
  // inverted when aligned.
  void CheckROIs(const Blob<Dtype>& rois, int num) const;

  ROIAlignParams<Dtype> level_[3];  // per level: scale 1 / (s0 2^k), cells p 2^(2-k)
  int num_rois_;
};

}  // namespace caffe

#endif  // CAFFE_PYRAMID_ROI_ALIGN_LAYER_HPP_
