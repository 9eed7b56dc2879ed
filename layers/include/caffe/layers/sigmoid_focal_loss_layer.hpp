#ifndef CAFFE_SIGMOID_FOCAL_LOSS_LAYER_HPP_
#define CAFFE_SIGMOID_FOCAL_LOSS_LAYER_HPP_

#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/layers/loss_layer.hpp"
#include "caffe/proto/caffe.pb.h"

namespace caffe {

/**
 * Sigmoid focal loss for targets in [0, 1]: FASSST's class loss Lc (one-hot targets at assigned
 * slots) and, as the project reads "based on focal loss", its coordinate loss Ll (continuous
 * t/l/b/r targets). Per element, with p = sigmoid(x) (math in caffe/util/focal_math.hpp):
 *   loss_i = w_i alpha_t |y_i - p_i|^gamma BCE(x_i, y_i)
 *   alpha_t = alpha y + (1 - alpha)(1 - y), or 1 when alpha < 0
 * and the loss is sum_i loss_i / normaliser.
 *
 * bottom[0]: x  logits, any shape; N = shape(0) for BATCH_SIZE, e.g. (N, n, C) for classes
 * bottom[1]: y  targets in [0, 1], same count as x
 * bottom[2]: w  optional per-element weights >= 0, same count as x (e.g. 1 at assigned slots)
 * last:      with normalization BOTTOM only: a one-element blob holding the normaliser (> 0),
 *            so the bottoms are x, y[, w], norm
 * top[0]:    () the scalar loss
 * Normaliser (SigmoidFocalLossParameter.normalization), count-based ones clamped to >= 1:
 *   POSITIVE_WEIGHTS  #(w > 0), or all elements without w     BATCH_SIZE  N
 *   POSITIVE_TARGETS  #(y > 0 and w > 0)                       BOTTOM      the scalar
 *   NONE              1
 * Backward reaches x only: LOG(FATAL) if asked for y; w and the normaliser are constants (their
 * diffs, if asked for, are zero). A zero-count x gives loss 0.
 * Param: sigmoid_focal_loss_param { alpha: 0.25 gamma: 2 normalization: POSITIVE_WEIGHTS }.
 */
template <typename Dtype>
class SigmoidFocalLossLayer : public LossLayer<Dtype> {
 public:
  explicit SigmoidFocalLossLayer(const LayerParameter& param) : LossLayer<Dtype>(param) {}
  virtual void LayerSetUp(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Reshape(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);

  virtual inline const char* type() const { return "SigmoidFocalLoss"; }
  virtual inline int ExactNumBottomBlobs() const { return -1; }
  virtual inline int MinBottomBlobs() const { return 2; }
  virtual inline int MaxBottomBlobs() const { return 4; }
  // Only the logits take a gradient; force_backward must not reach targets, weights or norm.
  virtual inline bool AllowForceBackward(const int bottom_index) const {
    return bottom_index == 0;
  }

 protected:
  virtual void Forward_cpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Forward_gpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Backward_cpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);
  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);

  // The normaliser for this forward pass, given the count-based tally (ignored by other modes).
  Dtype Normaliser(const vector<Blob<Dtype>*>& bottom, Dtype tally) const;
  // Checks that backward is asked of x only, zeroes the constants' diffs if they are asked for.
  void CheckPropagateDown(const vector<bool>& propagate_down,
                          const vector<Blob<Dtype>*>& bottom) const;

  Dtype alpha_, gamma_;
  SigmoidFocalLossParameter_Normalization normalization_;
  int weight_index_;   // index of w in bottom, or -1
  Dtype normaliser_;   // of the last forward, used by backward
  Blob<Dtype> loss_buf_;   // GPU: per-element loss, then the tally indicator
  Blob<Dtype> ones_;       // GPU: all ones, for sums as dot products
};

}  // namespace caffe

#endif  // CAFFE_SIGMOID_FOCAL_LOSS_LAYER_HPP_
