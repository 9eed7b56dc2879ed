#ifndef CAFFE_DICE_LOSS_LAYER_HPP_
#define CAFFE_DICE_LOSS_LAYER_HPP_

#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/layers/loss_layer.hpp"
#include "caffe/proto/caffe.pb.h"

namespace caffe {

/**
 * Soft Dice loss on mask logits, FASSST's mask loss Lm = 1 - Dice, averaged over ROIs. Per ROI r,
 * summing over all its elements (channels and pixels), with p = sigmoid(logit):
 *   D_r = (2 sum(p g) + eps) / (sum p + sum g + eps),   loss = mean_r (1 - D_r).
 * Gradient: dloss/dx_j = (D_r - 2 g_j) / (R S_r) p_j (1 - p_j), S_r = sum p + sum g + eps.
 *
 * bottom[0]: (R, ...) mask logits, e.g. (R, 1, 56, 56)
 * bottom[1]: (R, ...) targets in [0, 1] (binary masks), the same shape
 * top[0]:    () the scalar loss
 * R may be 0 (no ROIs in the batch): the loss is 0 and nothing is touched. Backward reaches the
 * logits only (LOG(FATAL) if asked for the targets).
 * Param: dice_loss_param { eps: 1 }.
 */
template <typename Dtype>
class DiceLossLayer : public LossLayer<Dtype> {
 public:
  explicit DiceLossLayer(const LayerParameter& param) : LossLayer<Dtype>(param) {}
  virtual void LayerSetUp(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Reshape(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);

  virtual inline const char* type() const { return "DiceLoss"; }

 protected:
  virtual void Forward_cpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Forward_gpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Backward_cpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);
  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);

  Dtype eps_;
  int rois_;    // R
  int inner_;   // elements per ROI
  Blob<Dtype> stats_;   // (R, 2): D_r and S_r of the last forward, used by backward
};

}  // namespace caffe

#endif  // CAFFE_DICE_LOSS_LAYER_HPP_
