#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/roi_feature_fusion_layer.hpp"

#include "caffe/util/math_functions.hpp"
#include "caffe/util/rng.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

template <typename TypeParam>
class ROIFeatureFusionLayerTest : public MultiDeviceTest<TypeParam> {
  typedef typename TypeParam::Dtype Dtype;

 protected:
  ROIFeatureFusionLayerTest()
      : r1_(new Blob<Dtype>(2, 3, 8, 8)), r2_(new Blob<Dtype>(2, 3, 4, 4)),
        r3_(new Blob<Dtype>(2, 3, 2, 2)), top_(new Blob<Dtype>()) {
    Caffe::set_random_seed(1701);
    FillerParameter fp;
    GaussianFiller<Dtype> filler(fp);
    filler.Fill(r1_);
    filler.Fill(r2_);
    filler.Fill(r3_);
    bottom_ = {r1_, r2_, r3_};
    top_vec_ = {top_};
  }
  virtual ~ROIFeatureFusionLayerTest() { delete r1_; delete r2_; delete r3_; delete top_; }

  // Finite differences across the ReLU kink are meaningless, and the kink is at the fused
  // pre-activation, not at any bottom value (which is all GradientChecker's kink option sees).
  // So keep |pre| >= 0.1: R2, R3 in [-0.2, 0.2] make |up2(R2 + up2(R3))| <= 0.4, and
  // |R1| in [0.5, 1.5] with random sign dominates it.
  void FillAwayFromKink() {
    FillerParameter fp;
    fp.set_min(-0.2);
    fp.set_max(0.2);
    UniformFiller<Dtype> small(fp);
    small.Fill(r2_);
    small.Fill(r3_);
    fp.set_min(0.5);
    fp.set_max(1.5);
    UniformFiller<Dtype> big(fp);
    big.Fill(r1_);
    Dtype* r1 = r1_->mutable_cpu_data();
    for (int i = 0; i < r1_->count(); ++i) r1[i] *= caffe_rng_rand() % 2 ? 1 : -1;
  }

  Blob<Dtype>* const r1_;
  Blob<Dtype>* const r2_;
  Blob<Dtype>* const r3_;
  Blob<Dtype>* const top_;
  vector<Blob<Dtype>*> bottom_, top_vec_;
};

TYPED_TEST_CASE(ROIFeatureFusionLayerTest, TestDtypesAndDevices);

TYPED_TEST(ROIFeatureFusionLayerTest, TestSetUp) {
  typedef typename TypeParam::Dtype Dtype;
  LayerParameter param;
  ROIFeatureFusionLayer<Dtype> layer(param);
  layer.SetUp(this->bottom_, this->top_vec_);
  EXPECT_EQ(this->top_->shape(), this->r1_->shape());
}

// One ROI, one channel: R3 = [[0, 1], [2, 3]], R2 = 0, R1 = -1. The x2 tap weights of a side of
// 2 (half-pixel) and of 4 are written out, and R = ReLU(A8 (A4 R3 A4^T) A8^T - 1).
TYPED_TEST(ROIFeatureFusionLayerTest, TestForwardHandComputed) {
  typedef typename TypeParam::Dtype Dtype;
  const double a4[4][2] = {{1, 0}, {.75, .25}, {.25, .75}, {0, 1}};
  const double a8[8][4] = {{1, 0, 0, 0}, {.75, .25, 0, 0}, {.25, .75, 0, 0}, {0, .75, .25, 0},
                           {0, .25, .75, 0}, {0, 0, .75, .25}, {0, 0, .25, .75}, {0, 0, 0, 1}};
  const double r3[2][2] = {{0, 1}, {2, 3}};
  // The first stage by hand: A4 R3 A4^T = 2 a(y) + a(x), a = (0, .25, .75, 1).
  const double m[4][4] = {{0, .25, .75, 1}, {.5, .75, 1.25, 1.5},
                          {1.5, 1.75, 2.25, 2.5}, {2, 2.25, 2.75, 3}};
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) {
      double v = 0;
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) v += a4[y][i] * a4[x][j] * r3[i][j];
      ASSERT_NEAR(m[y][x], v, 1e-12);  // the table above agrees with its own definition
    }
  }
  this->r1_->Reshape(1, 1, 8, 8);
  this->r2_->Reshape(1, 1, 4, 4);
  this->r3_->Reshape(1, 1, 2, 2);
  caffe_set(64, Dtype(-1), this->r1_->mutable_cpu_data());
  caffe_set(16, Dtype(0), this->r2_->mutable_cpu_data());
  for (int i = 0; i < 4; ++i) this->r3_->mutable_cpu_data()[i] = Dtype(i);
  LayerParameter param;
  ROIFeatureFusionLayer<Dtype> layer(param);
  layer.SetUp(this->bottom_, this->top_vec_);
  layer.Forward(this->bottom_, this->top_vec_);
  const Dtype* out = this->top_->cpu_data();
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      double v = -1;
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) v += a8[y][i] * a8[x][j] * m[i][j];
      EXPECT_NEAR(v > 0 ? v : 0, out[y * 8 + x], 1e-6) << "at (" << y << ", " << x << ")";
    }
  }
  // Corners by hand: (0,0) = ReLU(0 - 1) = 0, (7,7) = 3 - 1 = 2.
  EXPECT_NEAR(0, out[0], 1e-6);
  EXPECT_NEAR(2, out[63], 1e-6);
}

TYPED_TEST(ROIFeatureFusionLayerTest, TestGradientAllBottoms) {
  typedef typename TypeParam::Dtype Dtype;
  LayerParameter param;
  ROIFeatureFusionLayer<Dtype> layer(param);
  this->FillAwayFromKink();
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  for (int i = 0; i < 3; ++i) {
    checker.CheckGradientExhaustive(&layer, this->bottom_, this->top_vec_, i);
  }
}

TYPED_TEST(ROIFeatureFusionLayerTest, TestGradientNoReLU) {
  typedef typename TypeParam::Dtype Dtype;
  LayerParameter param;
  param.mutable_roi_feature_fusion_param()->set_relu(false);
  ROIFeatureFusionLayer<Dtype> layer(param);
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  for (int i = 0; i < 3; ++i) {
    checker.CheckGradientExhaustive(&layer, this->bottom_, this->top_vec_, i);
  }
}

// Non-square ROI grids (R3 3x1) fuse and differentiate like square ones.
TYPED_TEST(ROIFeatureFusionLayerTest, TestGradientNonSquare) {
  typedef typename TypeParam::Dtype Dtype;
  this->r1_->Reshape(1, 2, 12, 4);
  this->r2_->Reshape(1, 2, 6, 2);
  this->r3_->Reshape(1, 2, 3, 1);
  this->FillAwayFromKink();
  LayerParameter param;
  ROIFeatureFusionLayer<Dtype> layer(param);
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  for (int i = 0; i < 3; ++i) {
    checker.CheckGradientExhaustive(&layer, this->bottom_, this->top_vec_, i);
  }
}

// Zero ROIs in the batch: empty top, forward and backward run and touch nothing.
TYPED_TEST(ROIFeatureFusionLayerTest, TestZeroROIs) {
  typedef typename TypeParam::Dtype Dtype;
  this->r1_->Reshape(0, 3, 8, 8);
  this->r2_->Reshape(0, 3, 4, 4);
  this->r3_->Reshape(0, 3, 2, 2);
  LayerParameter param;
  ROIFeatureFusionLayer<Dtype> layer(param);
  layer.SetUp(this->bottom_, this->top_vec_);
  EXPECT_EQ(0, this->top_->count());
  EXPECT_EQ(8, this->top_->height());
  layer.Forward(this->bottom_, this->top_vec_);
  layer.Backward(this->top_vec_, vector<bool>(3, true), this->bottom_);
}

typedef ROIFeatureFusionLayerTest<CPUDevice<float> > ROIFeatureFusionLayerDeathTest;

TEST_F(ROIFeatureFusionLayerDeathTest, RejectsSizesNot421) {
  this->r2_->Reshape(2, 3, 5, 5);  // R1 8x8 is not 2 x 5x5
  LayerParameter param;
  param.set_name("rff_bad");
  ROIFeatureFusionLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_, this->top_vec_),
               "rff_bad: spatial sizes must be 4:2:1 .*8x8, 5x5, 2x2");
}

TEST_F(ROIFeatureFusionLayerDeathTest, RejectsChannelMismatch) {
  this->r3_->Reshape(2, 4, 2, 2);
  LayerParameter param;
  param.set_name("rff_bad");
  ROIFeatureFusionLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_, this->top_vec_),
               "rff_bad: R1, R2, R3 must agree in ROIs and channels");
}

}  // namespace caffe
