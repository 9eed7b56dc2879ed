#ifndef CAFFE_ROI_FEATURE_FUSION_LAYER_HPP_
#define CAFFE_ROI_FEATURE_FUSION_LAYER_HPP_

#include <vector>

#include "caffe/blob.hpp"
#include "caffe/layer.hpp"
#include "caffe/proto/caffe.pb.h"

namespace caffe {

/**
 * ROI feature fusion (RFF), FASSST paper eq. 4, fused into one layer:
 *   R = ReLU(R1 + up2(R2 + up2(R3)))
 * with up2 the bilinear x2 upsampling of caffe/util/bilinear_up2.hpp (half-pixel centres).
 * Fusing saves the two intermediate full-size blobs and passes that stock Caffe layers
 * (Deconvolution + Eltwise + ReLU) would need.
 *
 * bottom[0]: R1 (R, C, 4h, 4w) ROI features from the finest pyramid level
 * bottom[1]: R2 (R, C, 2h, 2w)
 * bottom[2]: R3 (R, C, h, w)    from the coarsest level
 * top[0]:    R  (R, C, 4h, 4w)
 * R may be 0 (no ROIs in the batch): the top is empty and nothing is computed.
 * Param: roi_feature_fusion_param { relu: true }.
 */
template <typename Dtype>
class ROIFeatureFusionLayer : public Layer<Dtype> {
 public:
  explicit ROIFeatureFusionLayer(const LayerParameter& param) : Layer<Dtype>(param) {}
  virtual void LayerSetUp(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Reshape(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);

  virtual inline const char* type() const { return "ROIFeatureFusion"; }
  virtual inline int ExactNumBottomBlobs() const { return 3; }
  virtual inline int ExactNumTopBlobs() const { return 1; }

 protected:
  virtual void Forward_cpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Forward_gpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top);
  virtual void Backward_cpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);
  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,
      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);

  bool relu_;
  int planes_;    // R x C
  int h3_, w3_;   // R3's spatial size
  Blob<Dtype> mid_;   // R2 + up2(R3), then in backward the gradient reaching R2
};

}  // namespace caffe

#endif  // CAFFE_ROI_FEATURE_FUSION_LAYER_HPP_
