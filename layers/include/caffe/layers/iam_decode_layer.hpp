#ifndef CAFFE_IAM_DECODE_LAYER_HPP_
#define CAFFE_IAM_DECODE_LAYER_HPP_

#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/proto/caffe.pb.h"

namespace caffe {

/**
 * Decodes the Instance Attention Module (IAM) output into ROIs (forward only).
 * Each of an image's n slots holds 4 + C raw values: t, l, b, r (top, left, bottom, right edge
 * as fractions of the image height/width, after a sigmoid) and C class logits (sigmoid each, no
 * background class). Per slot (caffe/util/iam_box_util.hpp, shared with the CUDA kernel):
 *   box = (l W, t H, r W, b H), crossed edges swapped, clipped to the image, each side grown to
 *   min_box_size; score = max class probability; label = its class (0-based). With
 *   box_coding CELL the edges are first moved to the slot's cell (iam_cell_edge).
 * Slots with score > score_threshold are kept, per image by score descending (ties: lower slot
 * first), at most top_k per image (0: no limit).
 *
 * bottom[0]: (N, n, 4 + C) IAM output (image, slot, value), or
 *            (N, 4 + C, H, W) the conv map it comes from, slot = y * W + x (n = H W; H, W need
 *            not be equal)
 * top[0]:    (R, 5) rois = (batch index, x1, y1, x2, y2) in input pixels, by image then score
 * top[1]:    (R)    scores
 * top[2]:    (R)    labels, the class index as a float
 * top[3]:    (R)    optional: the slot index (0..n-1) within its image
 * R is data-dependent (0 is fine: tops (0, 5), (0), ...). Reshape sizes the tops for the most
 * ROIs possible, N min(n, top_k), so the memory downstream layers need is allocated at set-up;
 * Forward shrinks them to R (Caffe reshapes each layer just before its forward).
 * Backward: not differentiable (a selection). The IAM output also feeds the losses through a
 * Split layer, which sums its branches' diffs, so this branch writes an exact zero diff.
 * Param: iam_decode_param { num_classes score_threshold top_k image_width image_height
 *                           min_box_size box_coding }.
 */
template <typename Dtype>
class IAMDecodeLayer : public Layer<Dtype> {
 public:
  explicit IAMDecodeLayer(const LayerParameter& param) : Layer<Dtype>(param) {}
  virtual void LayerSetUp(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Reshape(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);

  virtual inline const char* type() const { return "IAMDecode"; }
  virtual inline int ExactNumBottomBlobs() const { return 1; }
  virtual inline int MinTopBlobs() const { return 3; }
  virtual inline int MaxTopBlobs() const { return 4; }

 protected:
  virtual void Forward_cpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Forward_gpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Backward_cpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);
  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);

  // Selects from decoded_ (host copy) and writes the tops; shared by both forwards.
  void SelectToTops(const vector<Blob<Dtype>*>& top);

  int num_classes_;
  Dtype score_threshold_;
  int top_k_;             // 0: no limit
  Dtype image_width_, image_height_, min_box_size_;
  int num_images_;        // N
  int num_slots_;         // n per image
  int slot_stride_;       // between consecutive slots' values in bottom[0]: 4 + C or 1
  int value_stride_;      // between one slot's consecutive values: 1 or H W
  bool cell_;             // box_coding CELL
  int grid_width_, grid_height_;  // the slot grid (slot = y * grid_width_ + x)
  // Per slot (N, n, 6): x1, y1, x2, y2, score, label (as Dtype; exact below 2^24).
  Blob<Dtype> decoded_;
};

}  // namespace caffe

#endif  // CAFFE_IAM_DECODE_LAYER_HPP_
