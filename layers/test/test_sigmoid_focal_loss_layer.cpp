#include <cmath>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/sigmoid_focal_loss_layer.hpp"

#include "caffe/util/math_functions.hpp"
#include "caffe/util/rng.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

typedef SigmoidFocalLossParameter FocalParam;

template <typename TypeParam>
class SigmoidFocalLossLayerTest : public MultiDeviceTest<TypeParam> {
  typedef typename TypeParam::Dtype Dtype;

 protected:
  // (N, n, C) = (2, 3, 4): 2 images, 3 slots, 4 classes.
  SigmoidFocalLossLayerTest()
      : x_(new Blob<Dtype>(2, 3, 4, 1)), y_(new Blob<Dtype>(2, 3, 4, 1)),
        w_(new Blob<Dtype>(2, 3, 4, 1)), norm_(new Blob<Dtype>(vector<int>{1})),
        top_(new Blob<Dtype>()) {
    Caffe::set_random_seed(1701);
    FillerParameter fp;
    fp.set_std(1.5);
    GaussianFiller<Dtype>(fp).Fill(x_);
    FillOneHot();
    norm_->mutable_cpu_data()[0] = 2.5;
    top_vec_ = {top_};
  }
  virtual ~SigmoidFocalLossLayerTest() {
    delete x_; delete y_; delete w_; delete norm_; delete top_;
  }

  // Class targets: slots 0, 2, 4 are assigned (one-hot on a random class), the others are
  // background (all zero); weights 1 everywhere except slot 5, which is ignored (0).
  void FillOneHot() {
    caffe_set(y_->count(), Dtype(0), y_->mutable_cpu_data());
    caffe_set(w_->count(), Dtype(1), w_->mutable_cpu_data());
    for (int s = 0; s < 6; s += 2) y_->mutable_cpu_data()[4 * s + caffe_rng_rand() % 4] = 1;
    caffe_set(4, Dtype(0), w_->mutable_cpu_data() + 20);
  }
  // Coordinate-like targets: continuous in [0, 1], weights 1 on half the slots.
  void FillContinuous() {
    FillerParameter fp;
    fp.set_min(0);
    fp.set_max(1);
    UniformFiller<Dtype>(fp).Fill(y_);
    Dtype* w = w_->mutable_cpu_data();
    for (int i = 0; i < w_->count(); ++i) w[i] = (i / 4) % 2 == 0;
  }
  vector<Blob<Dtype>*> Bottoms(bool weights, bool norm) {
    vector<Blob<Dtype>*> b = {x_, y_};
    if (weights) b.push_back(w_);
    if (norm) b.push_back(norm_);
    return b;
  }
  LayerParameter Param(FocalParam::Normalization mode, float alpha = 0.25, float gamma = 2) {
    LayerParameter param;
    param.set_name("focal");
    FocalParam* p = param.mutable_sigmoid_focal_loss_param();
    p->set_normalization(mode);
    p->set_alpha(alpha);
    p->set_gamma(gamma);
    return param;
  }
  void CheckGradient(const LayerParameter& param, const vector<Blob<Dtype>*>& bottom) {
    SigmoidFocalLossLayer<Dtype> layer(param);
    GradientChecker<Dtype> checker(1e-2, 1e-3, 1701);
    checker.CheckGradientExhaustive(&layer, bottom, top_vec_, 0);
  }
  // Forward, then backward with the loss weight the Net would put in the top diff.
  Dtype ForwardBackward(const LayerParameter& param, const vector<Blob<Dtype>*>& bottom) {
    SigmoidFocalLossLayer<Dtype> layer(param);
    layer.SetUp(bottom, top_vec_);
    const Dtype weighted = layer.Forward(bottom, top_vec_);
    top_->mutable_cpu_diff()[0] = layer.layer_param().loss_weight(0);
    layer.Backward(top_vec_, Down(bottom), bottom);
    return weighted;
  }
  static vector<bool> Down(const vector<Blob<Dtype>*>& bottom) {
    vector<bool> down(bottom.size(), false);
    down[0] = true;
    return down;
  }

  Blob<Dtype>* const x_;
  Blob<Dtype>* const y_;
  Blob<Dtype>* const w_;
  Blob<Dtype>* const norm_;
  Blob<Dtype>* const top_;
  vector<Blob<Dtype>*> top_vec_;
};

TYPED_TEST_CASE(SigmoidFocalLossLayerTest, TestDtypesAndDevices);

TYPED_TEST(SigmoidFocalLossLayerTest, TestSetUp) {
  typedef typename TypeParam::Dtype Dtype;
  SigmoidFocalLossLayer<Dtype> layer(this->Param(FocalParam::POSITIVE_WEIGHTS));
  layer.SetUp(this->Bottoms(true, false), this->top_vec_);
  EXPECT_EQ(0, this->top_->num_axes());
  EXPECT_EQ(1, layer.layer_param().loss_weight(0));  // LossLayer's default
  EXPECT_TRUE(layer.AllowForceBackward(0));
  EXPECT_FALSE(layer.AllowForceBackward(1));
  EXPECT_FALSE(layer.AllowForceBackward(2));
}

// Four elements, alpha 0.25, gamma 2, shape (N, 1, 2) with N = 2:
//   x  y  w   p = sigmoid(x)  BCE           m = |y - p|^2  alpha_t  loss_i
//   0  1  1   0.5             ln 2          0.25           0.25     ln2 / 16 = 0.0433216988
//   0  0  1   0.5             ln 2          0.25           0.75     3 ln2/16 = 0.129965096
//   2  1  1   0.88079708      ln(1+e^-2)    0.01420945     0.25     0.000450890709
//  -1  0  0   0.26894142      ln(1+e^-1)    0.07232949     0.75     (0.0169935431) x w = 0
// sum = 0.173737686. Counted: w > 0: 3; y > 0 and w > 0: 2 (elements 0, 2).
// Gradient per element, alpha_t [2 |y-p| sign(p-y) p(1-p) BCE + m (p - y)]:
//   (0, 1): 0.25 (-2 (0.5)(0.25) ln2 - 0.125) = -0.0745716988
//   (0, 0): 0.75 ( 2 (0.5)(0.25) ln2 + 0.125) =  0.223715096
//   (2, 1): -0.00121773505;  (-1, 0): w = 0 gives 0
TYPED_TEST(SigmoidFocalLossLayerTest, TestForwardBackwardHandComputed) {
  typedef typename TypeParam::Dtype Dtype;
  this->x_->Reshape(2, 1, 2, 1);
  this->y_->Reshape(2, 1, 2, 1);
  this->w_->Reshape(2, 1, 2, 1);
  const Dtype x[4] = {0, 0, 2, -1}, y[4] = {1, 0, 1, 0}, w[4] = {1, 1, 1, 0};
  caffe_copy(4, x, this->x_->mutable_cpu_data());
  caffe_copy(4, y, this->y_->mutable_cpu_data());
  caffe_copy(4, w, this->w_->mutable_cpu_data());
  this->norm_->mutable_cpu_data()[0] = 0.5;
  const double sum = 0.173737686;
  const double grad[4] = {-0.0745716988, 0.223715096, -0.00121773505, 0};
  const struct { FocalParam::Normalization mode; double norm; } cases[] = {
      {FocalParam::POSITIVE_WEIGHTS, 3}, {FocalParam::POSITIVE_TARGETS, 2},
      {FocalParam::BATCH_SIZE, 2}, {FocalParam::NONE, 1}, {FocalParam::BOTTOM, 0.5}};
  for (const auto& c : cases) {
    LayerParameter param = this->Param(c.mode);
    param.add_loss_weight(1.25);
    const vector<Blob<Dtype>*> bottom = this->Bottoms(true, c.mode == FocalParam::BOTTOM);
    const Dtype weighted = this->ForwardBackward(param, bottom);
    EXPECT_NEAR(sum / c.norm, this->top_->cpu_data()[0], 1e-6) << "mode " << c.mode;
    EXPECT_NEAR(1.25 * sum / c.norm, weighted, 1e-6) << "mode " << c.mode;
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(1.25 * grad[i] / c.norm, this->x_->cpu_diff()[i], 1e-6)
          << "mode " << c.mode << " element " << i;
    }
  }
}

// gamma 0 and alpha < 0 is plain BCE: x = 2, y = 1 gives ln(1 + e^-2) and p - 1.
TYPED_TEST(SigmoidFocalLossLayerTest, TestGamma0NoAlphaIsBCE) {
  typedef typename TypeParam::Dtype Dtype;
  this->x_->Reshape(vector<int>{1});
  this->y_->Reshape(vector<int>{1});
  this->x_->mutable_cpu_data()[0] = 2;
  this->y_->mutable_cpu_data()[0] = 1;
  const Dtype loss = this->ForwardBackward(this->Param(FocalParam::NONE, -1, 0),
                                           this->Bottoms(false, false));
  EXPECT_NEAR(0.126928011, loss, 1e-6);
  EXPECT_NEAR(-0.119202922, this->x_->cpu_diff()[0], 1e-6);
}

// The paper's Lc: one-hot classes, ignored slot, normalised by the assigned slots (3).
TYPED_TEST(SigmoidFocalLossLayerTest, TestGradientOneHotPositiveTargets) {
  LayerParameter param = this->Param(FocalParam::POSITIVE_TARGETS);
  param.add_loss_weight(1.25);
  this->CheckGradient(param, this->Bottoms(true, false));
}

// Ll as read: continuous targets on weighted slots, alpha disabled.
TYPED_TEST(SigmoidFocalLossLayerTest, TestGradientContinuousPositiveWeights) {
  this->FillContinuous();
  LayerParameter param = this->Param(FocalParam::POSITIVE_WEIGHTS, -1, 2);
  param.add_loss_weight(3);
  this->CheckGradient(param, this->Bottoms(true, false));
}

TYPED_TEST(SigmoidFocalLossLayerTest, TestGradientGamma0BatchSize) {
  LayerParameter param = this->Param(FocalParam::BATCH_SIZE, 0.25, 0);
  param.add_loss_weight(0.5);
  this->CheckGradient(param, this->Bottoms(false, false));
}

TYPED_TEST(SigmoidFocalLossLayerTest, TestGradientContinuousBottomNormaliser) {
  this->FillContinuous();
  LayerParameter param = this->Param(FocalParam::BOTTOM, 0.25, 2);
  param.add_loss_weight(2);
  this->CheckGradient(param, this->Bottoms(true, true));
}

TYPED_TEST(SigmoidFocalLossLayerTest, TestGradientNoneGamma1_5) {
  LayerParameter param = this->Param(FocalParam::NONE, 0.5, 1.5);
  param.add_loss_weight(0.75);
  this->CheckGradient(param, this->Bottoms(false, false));
}

// No positives at all (every target 0): POSITIVE_TARGETS clamps the count to 1, the loss is the
// plain sum. With x = 0: 24 x 3 ln2 / 16.
TYPED_TEST(SigmoidFocalLossLayerTest, TestNoPositives) {
  typedef typename TypeParam::Dtype Dtype;
  caffe_set(24, Dtype(0), this->x_->mutable_cpu_data());
  caffe_set(24, Dtype(0), this->y_->mutable_cpu_data());
  const Dtype loss = this->ForwardBackward(this->Param(FocalParam::POSITIVE_TARGETS),
                                           this->Bottoms(false, false));
  EXPECT_NEAR(24 * 3 * std::log(2.) / 16, loss, 1e-5);
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(0.223715096, this->x_->cpu_diff()[i], 1e-6);
}

// Logits of +-100 (NONE, so the values show unnormalised):
//   (-100, 1): BCE = 100, m = 1, loss = alpha 100 = 25, grad = alpha (p - 1) = -0.25
//   ( 100, 0): loss = (1 - alpha) 100 = 75, grad = 0.75;  (100, 1), (-100, 0): 0 and 0.
// Also for gamma 0.5, where |y - p|^(gamma - 1) alone would blow up at the confident ones.
TYPED_TEST(SigmoidFocalLossLayerTest, TestExtremeLogits) {
  typedef typename TypeParam::Dtype Dtype;
  this->x_->Reshape(vector<int>{1, 4});
  this->y_->Reshape(vector<int>{1, 4});
  const Dtype x[4] = {-100, 100, 100, -100}, y[4] = {1, 0, 1, 0};
  caffe_copy(4, x, this->x_->mutable_cpu_data());
  caffe_copy(4, y, this->y_->mutable_cpu_data());
  const double grad[4] = {-0.25, 0.75, 0, 0};
  for (float gamma : {2.f, 0.5f, 0.f}) {
    const Dtype loss = this->ForwardBackward(this->Param(FocalParam::NONE, 0.25, gamma),
                                             this->Bottoms(false, false));
    // gamma 0: the confident right answers still cost 0 to float precision.
    EXPECT_NEAR(100, loss, 1e-4) << "gamma " << gamma;
    for (int i = 0; i < 4; ++i) {
      EXPECT_TRUE(std::isfinite(this->x_->cpu_diff()[i])) << "gamma " << gamma;
      EXPECT_NEAR(grad[i], this->x_->cpu_diff()[i], 1e-6) << "gamma " << gamma << " el " << i;
    }
  }
}

TYPED_TEST(SigmoidFocalLossLayerTest, TestEmpty) {
  typedef typename TypeParam::Dtype Dtype;
  this->x_->Reshape(vector<int>{0, 36, 80});
  this->y_->Reshape(vector<int>{0, 36, 80});
  this->w_->Reshape(vector<int>{0, 36, 80});
  const Dtype loss = this->ForwardBackward(this->Param(FocalParam::POSITIVE_TARGETS),
                                           this->Bottoms(true, false));
  EXPECT_EQ(0, loss);
}

// Weights and the normaliser are constants: asked for their gradient, the layer writes zeros.
TYPED_TEST(SigmoidFocalLossLayerTest, TestZeroGradientToWeightsAndNormaliser) {
  typedef typename TypeParam::Dtype Dtype;
  const vector<Blob<Dtype>*> bottom = this->Bottoms(true, true);
  SigmoidFocalLossLayer<Dtype> layer(this->Param(FocalParam::BOTTOM));
  layer.SetUp(bottom, this->top_vec_);
  layer.Forward(bottom, this->top_vec_);
  caffe_set(this->w_->count(), Dtype(7), this->w_->mutable_cpu_diff());
  this->norm_->mutable_cpu_diff()[0] = 7;
  this->top_->mutable_cpu_diff()[0] = 1;
  layer.Backward(this->top_vec_, vector<bool>{true, false, true, true}, bottom);
  for (int i = 0; i < this->w_->count(); ++i) EXPECT_EQ(0, this->w_->cpu_diff()[i]);
  EXPECT_EQ(0, this->norm_->cpu_diff()[0]);
}

#ifndef CPU_ONLY
// The CUDA twin against the CPU code on the same seeded input (paper-size class outputs).
template <typename Dtype>
class SigmoidFocalLossLayerCPUvsGPUTest : public ::testing::Test {};
TYPED_TEST_CASE(SigmoidFocalLossLayerCPUvsGPUTest, TestDtypes);

TYPED_TEST(SigmoidFocalLossLayerCPUvsGPUTest, TestSameLossAndGradient) {
  typedef TypeParam Dtype;
  Blob<Dtype> x(8, 36, 80, 1), y(8, 36, 80, 1), w(8, 36, 80, 1), top;
  Caffe::set_random_seed(1701);
  FillerParameter fp;
  fp.set_std(4);
  GaussianFiller<Dtype>(fp).Fill(&x);
  fp.set_min(0);
  fp.set_max(1);
  UniformFiller<Dtype>(fp).Fill(&y);
  Dtype* yd = y.mutable_cpu_data();
  Dtype* wd = w.mutable_cpu_data();
  for (int i = 0; i < y.count(); ++i) {
    if (i % 3) yd[i] = caffe_rng_rand() % 2;  // a mix of binary and continuous targets
    wd[i] = caffe_rng_rand() % 4 != 0;
  }
  x.mutable_cpu_data()[0] = 100;
  x.mutable_cpu_data()[1] = -100;
  const FocalParam::Normalization modes[] = {FocalParam::POSITIVE_TARGETS,
                                             FocalParam::POSITIVE_WEIGHTS};
  for (FocalParam::Normalization mode : modes) {
    vector<Blob<Dtype>*> bottom = {&x, &y, &w}, tops = {&top};
    Dtype loss[2];
    Blob<Dtype> diff[2];
    for (int dev = 0; dev < 2; ++dev) {
      Caffe::set_mode(dev == 0 ? Caffe::CPU : Caffe::GPU);
      LayerParameter param;
      param.add_loss_weight(1.25);
      param.mutable_sigmoid_focal_loss_param()->set_normalization(mode);
      SigmoidFocalLossLayer<Dtype> layer(param);
      layer.SetUp(bottom, tops);
      loss[dev] = layer.Forward(bottom, tops);
      top.mutable_cpu_diff()[0] = 1.25;
      layer.Backward(tops, vector<bool>{true, false, false}, bottom);
      diff[dev].ReshapeLike(x);
      caffe_copy(x.count(), x.cpu_diff(), diff[dev].mutable_cpu_data());
    }
    Caffe::set_mode(Caffe::CPU);
    EXPECT_NEAR(loss[0], loss[1], 1e-5 * std::fabs(loss[0])) << "mode " << mode;
    for (int i = 0; i < x.count(); ++i) {
      const Dtype a = diff[0].cpu_data()[i];
      EXPECT_NEAR(a, diff[1].cpu_data()[i], 1e-5 * std::fabs(a) + 1e-12) << "element " << i;
    }
  }
}
#endif

typedef SigmoidFocalLossLayerTest<CPUDevice<float> > SigmoidFocalLossLayerDeathTest;

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsTargetCountMismatch) {
  this->y_->Reshape(2, 3, 5, 1);
  SigmoidFocalLossLayer<float> layer(this->Param(FocalParam::POSITIVE_WEIGHTS));
  EXPECT_DEATH(layer.SetUp(this->Bottoms(false, false), this->top_vec_),
               "SigmoidFocalLoss focal: targets .* must have the count of the logits");
}

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsWeightCountMismatch) {
  this->w_->Reshape(2, 3, 1, 1);
  SigmoidFocalLossLayer<float> layer(this->Param(FocalParam::POSITIVE_WEIGHTS));
  EXPECT_DEATH(layer.SetUp(this->Bottoms(true, false), this->top_vec_),
               "SigmoidFocalLoss focal: weights .* must have the count of the logits");
}

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsBottomModeWithoutNormaliser) {
  SigmoidFocalLossLayer<float> layer(this->Param(FocalParam::BOTTOM));
  EXPECT_DEATH(layer.SetUp(this->Bottoms(false, false), this->top_vec_),
               "focal: normalization BOTTOM needs the bottoms x, y\\[, w\\], norm");
}

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsNormaliserWithoutBottomMode) {
  SigmoidFocalLossLayer<float> layer(this->Param(FocalParam::POSITIVE_WEIGHTS));
  EXPECT_DEATH(layer.SetUp(this->Bottoms(true, true), this->top_vec_),
               "focal: the bottoms are x, y\\[, w\\] .*got 4");
}

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsNormaliserOfManyValues) {
  this->norm_->Reshape(vector<int>{2});
  SigmoidFocalLossLayer<float> layer(this->Param(FocalParam::BOTTOM));
  EXPECT_DEATH(layer.SetUp(this->Bottoms(false, true), this->top_vec_),
               "focal: the normaliser \\(last bottom\\) must hold one value");
}

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsNonPositiveNormaliser) {
  this->norm_->mutable_cpu_data()[0] = 0;
  SigmoidFocalLossLayer<float> layer(this->Param(FocalParam::BOTTOM));
  layer.SetUp(this->Bottoms(false, true), this->top_vec_);
  EXPECT_DEATH(layer.Forward(this->Bottoms(false, true), this->top_vec_),
               "focal: the normaliser bottom must be > 0, got 0");
}

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsBadGammaAndAlpha) {
  SigmoidFocalLossLayer<float> bad_gamma(this->Param(FocalParam::NONE, 0.25, -1));
  EXPECT_DEATH(bad_gamma.SetUp(this->Bottoms(false, false), this->top_vec_),
               "focal: gamma must be finite and >= 0, got -1");
  SigmoidFocalLossLayer<float> bad_alpha(this->Param(FocalParam::NONE, 1.5, 2));
  EXPECT_DEATH(bad_alpha.SetUp(this->Bottoms(false, false), this->top_vec_),
               "focal: alpha must be in \\[0, 1\\] \\(or < 0 to disable\\), got 1.5");
}

TEST_F(SigmoidFocalLossLayerDeathTest, RejectsBackwardToTargets) {
  SigmoidFocalLossLayer<float> layer(this->Param(FocalParam::NONE));
  const vector<Blob<float>*> bottom = this->Bottoms(false, false);
  layer.SetUp(bottom, this->top_vec_);
  layer.Forward(bottom, this->top_vec_);
  EXPECT_DEATH(layer.Backward(this->top_vec_, vector<bool>{true, true}, bottom),
               "focal cannot backpropagate to the targets");
}

}  // namespace caffe
