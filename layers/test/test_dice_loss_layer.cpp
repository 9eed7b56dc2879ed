#include <cmath>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/dice_loss_layer.hpp"

#include "caffe/util/math_functions.hpp"
#include "caffe/util/rng.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

template <typename TypeParam>
class DiceLossLayerTest : public MultiDeviceTest<TypeParam> {
  typedef typename TypeParam::Dtype Dtype;

 protected:
  DiceLossLayerTest()
      : logits_(new Blob<Dtype>(4, 1, 3, 3)), targets_(new Blob<Dtype>(4, 1, 3, 3)),
        top_(new Blob<Dtype>()) {
    Caffe::set_random_seed(1701);
    FillerParameter fp;
    fp.set_std(2);
    GaussianFiller<Dtype> filler(fp);
    filler.Fill(logits_);
    // Random binary masks; ROI 1 is all background (an empty target mask), ROI 3 all foreground.
    Dtype* g = targets_->mutable_cpu_data();
    for (int i = 0; i < targets_->count(); ++i) g[i] = caffe_rng_rand() % 2;
    caffe_set(9, Dtype(0), g + 9);
    caffe_set(9, Dtype(1), g + 27);
    bottom_ = {logits_, targets_};
    top_vec_ = {top_};
  }
  virtual ~DiceLossLayerTest() { delete logits_; delete targets_; delete top_; }

  // Forward, then backward with the loss weight the Net would put in the top diff.
  Dtype ForwardBackward(DiceLossLayer<Dtype>* layer, Dtype loss_weight) {
    layer->SetUp(bottom_, top_vec_);
    const Dtype weighted = layer->Forward(bottom_, top_vec_);
    top_->mutable_cpu_diff()[0] = loss_weight;
    layer->Backward(top_vec_, vector<bool>{true, false}, bottom_);
    return weighted;
  }

  Blob<Dtype>* const logits_;
  Blob<Dtype>* const targets_;
  Blob<Dtype>* const top_;
  vector<Blob<Dtype>*> bottom_, top_vec_;
};

TYPED_TEST_CASE(DiceLossLayerTest, TestDtypesAndDevices);

TYPED_TEST(DiceLossLayerTest, TestSetUp) {
  typedef typename TypeParam::Dtype Dtype;
  LayerParameter param;
  DiceLossLayer<Dtype> layer(param);
  layer.SetUp(this->bottom_, this->top_vec_);
  EXPECT_EQ(0, this->top_->num_axes());
  EXPECT_EQ(1, this->top_->count());
  EXPECT_EQ(1, layer.layer_param().loss_weight(0));  // LossLayer's default
}

// Three ROIs of 2x2, eps = 1:
//  ROI 0: logits 0 (p = 0.5), g = (1, 1, 0, 0): sum p = 2, sum g = 2, sum pg = 1,
//         D = (2 + 1) / (2 + 2 + 1) = 0.6, S = 5
//  ROI 1: logits 0, g = 0 (empty mask): D = (0 + 1) / (2 + 0 + 1) = 1/3, S = 3
//  ROI 2: logits +-100 equal to the mask g = (1, 0, 1, 0): p = g, D = (4 + 1) / (4 + 1) = 1
//  loss = ((1 - 0.6) + (1 - 1/3) + 0) / 3 = 16/45; Forward returns loss_weight x loss.
// Gradient (D - 2 g) / (R S) p (1 - p) x loss_weight, p (1 - p) = 1/4 at logit 0:
//  ROI 0: g = 1: (0.6 - 2) / 15 / 4 = -7/300;  g = 0: 0.6 / 15 / 4 = 1/100
//  ROI 1: (1/3) / 9 / 4 = 1/108;  ROI 2: p (1 - p) = e^-100: 0 to float precision
TYPED_TEST(DiceLossLayerTest, TestForwardBackwardHandComputed) {
  typedef typename TypeParam::Dtype Dtype;
  this->logits_->Reshape(3, 1, 2, 2);
  this->targets_->Reshape(3, 1, 2, 2);
  const Dtype x[12] = {0, 0, 0, 0, 0, 0, 0, 0, 100, -100, 100, -100};
  const Dtype g[12] = {1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0};
  caffe_copy(12, x, this->logits_->mutable_cpu_data());
  caffe_copy(12, g, this->targets_->mutable_cpu_data());
  LayerParameter param;
  param.add_loss_weight(2);
  DiceLossLayer<Dtype> layer(param);
  const Dtype weighted = this->ForwardBackward(&layer, 2);
  EXPECT_NEAR(16. / 45, this->top_->cpu_data()[0], 1e-6);
  EXPECT_NEAR(2 * 16. / 45, weighted, 2e-6);
  const double expect[12] = {-7. / 300, -7. / 300, 1. / 100, 1. / 100,
                             1. / 108, 1. / 108, 1. / 108, 1. / 108, 0, 0, 0, 0};
  const Dtype* dx = this->logits_->cpu_diff();
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(2 * expect[i], dx[i], 1e-7) << "element " << i;
}

// eps scales with the mask: eps = 4 on ROI 0 above gives D = (2 + 4) / (4 + 4) = 0.75.
TYPED_TEST(DiceLossLayerTest, TestForwardEps) {
  typedef typename TypeParam::Dtype Dtype;
  this->logits_->Reshape(vector<int>{1, 4});
  this->targets_->Reshape(vector<int>{1, 4});
  caffe_set(4, Dtype(0), this->logits_->mutable_cpu_data());
  const Dtype g[4] = {1, 1, 0, 0};
  caffe_copy(4, g, this->targets_->mutable_cpu_data());
  LayerParameter param;
  param.mutable_dice_loss_param()->set_eps(4);
  DiceLossLayer<Dtype> layer(param);
  layer.SetUp(this->bottom_, this->top_vec_);
  EXPECT_NEAR(0.25, layer.Forward(this->bottom_, this->top_vec_), 1e-6);
}

// Mixed random masks including an all-zero and an all-one ROI; loss weight 5.75 (the paper's).
TYPED_TEST(DiceLossLayerTest, TestGradient) {
  typedef typename TypeParam::Dtype Dtype;
  LayerParameter param;
  param.add_loss_weight(5.75);
  DiceLossLayer<Dtype> layer(param);
  GradientChecker<Dtype> checker(1e-2, 1e-3, 1701);
  checker.CheckGradientExhaustive(&layer, this->bottom_, this->top_vec_, 0);
}

TYPED_TEST(DiceLossLayerTest, TestGradientSmallEps) {
  typedef typename TypeParam::Dtype Dtype;
  LayerParameter param;
  param.mutable_dice_loss_param()->set_eps(0.1);
  DiceLossLayer<Dtype> layer(param);
  GradientChecker<Dtype> checker(1e-2, 1e-3, 1701);
  checker.CheckGradientExhaustive(&layer, this->bottom_, this->top_vec_, 0);
}

// All-zero target masks: D = eps / (sum p + eps). Logits 0 on 4x4: D = 1/9, loss 8/9,
// gradient D / S / 4 / R = (1/9) / 9 / 4 / 2 per element; logits -100: p = 0, D = 1, loss 0.
TYPED_TEST(DiceLossLayerTest, TestAllZeroTargets) {
  typedef typename TypeParam::Dtype Dtype;
  this->logits_->Reshape(2, 1, 4, 4);
  this->targets_->Reshape(2, 1, 4, 4);
  caffe_set(32, Dtype(0), this->targets_->mutable_cpu_data());
  caffe_set(16, Dtype(0), this->logits_->mutable_cpu_data());
  caffe_set(16, Dtype(-100), this->logits_->mutable_cpu_data() + 16);
  LayerParameter param;
  DiceLossLayer<Dtype> layer(param);
  EXPECT_NEAR((8. / 9) / 2, this->ForwardBackward(&layer, 1), 1e-6);
  const Dtype* dx = this->logits_->cpu_diff();
  for (int i = 0; i < 32; ++i) {
    EXPECT_NEAR(i < 16 ? 1. / 648 : 0., dx[i], 1e-8) << "element " << i;
  }
}

// Logits of +-100 against random masks: finite, and the loss is the hard Dice of sign(x).
TYPED_TEST(DiceLossLayerTest, TestExtremeLogits) {
  typedef typename TypeParam::Dtype Dtype;
  Dtype* x = this->logits_->mutable_cpu_data();
  const Dtype* g = this->targets_->cpu_data();
  for (int i = 0; i < this->logits_->count(); ++i) x[i] = caffe_rng_rand() % 2 ? 100 : -100;
  double expect = 0;
  for (int r = 0; r < 4; ++r) {
    double sp = 0, sg = 0, spg = 0;
    for (int j = 9 * r; j < 9 * r + 9; ++j) {
      sp += x[j] > 0;
      sg += g[j];
      spg += (x[j] > 0) * g[j];
    }
    expect += 1 - (2 * spg + 1) / (sp + sg + 1);
  }
  LayerParameter param;
  DiceLossLayer<Dtype> layer(param);
  const Dtype loss = this->ForwardBackward(&layer, 1);
  EXPECT_NEAR(expect / 4, loss, 1e-6);
  const Dtype* dx = this->logits_->cpu_diff();
  for (int i = 0; i < this->logits_->count(); ++i) {
    EXPECT_TRUE(std::isfinite(dx[i])) << "element " << i;
    EXPECT_NEAR(0, dx[i], 1e-20);
  }
}

// Zero ROIs: loss 0, no NaN, and backward touches nothing.
TYPED_TEST(DiceLossLayerTest, TestZeroROIs) {
  typedef typename TypeParam::Dtype Dtype;
  this->logits_->Reshape(0, 1, 56, 56);
  this->targets_->Reshape(0, 1, 56, 56);
  LayerParameter param;
  DiceLossLayer<Dtype> layer(param);
  const Dtype loss = this->ForwardBackward(&layer, 1);
  EXPECT_EQ(0, loss);
  EXPECT_EQ(0, this->top_->cpu_data()[0]);
}

#ifndef CPU_ONLY
// The CUDA twin against the CPU code on the same seeded input, paper-size masks.
template <typename Dtype>
class DiceLossLayerCPUvsGPUTest : public ::testing::Test {};
TYPED_TEST_CASE(DiceLossLayerCPUvsGPUTest, TestDtypes);

TYPED_TEST(DiceLossLayerCPUvsGPUTest, TestSameLossAndGradient) {
  typedef TypeParam Dtype;
  Blob<Dtype> x(6, 1, 56, 56), g(6, 1, 56, 56), top;
  Caffe::set_random_seed(1701);
  FillerParameter fp;
  fp.set_std(4);
  GaussianFiller<Dtype>(fp).Fill(&x);
  Dtype* gd = g.mutable_cpu_data();
  for (int i = 0; i < g.count(); ++i) gd[i] = caffe_rng_rand() % 3 == 0;
  caffe_set(56 * 56, Dtype(0), gd);  // ROI 0: empty mask
  x.mutable_cpu_data()[7] = 100;
  x.mutable_cpu_data()[8] = -100;
  vector<Blob<Dtype>*> bottom = {&x, &g}, tops = {&top};
  Dtype loss[2];
  Blob<Dtype> diff[2];
  for (int dev = 0; dev < 2; ++dev) {
    Caffe::set_mode(dev == 0 ? Caffe::CPU : Caffe::GPU);
    LayerParameter param;
    param.add_loss_weight(5.75);
    DiceLossLayer<Dtype> layer(param);
    layer.SetUp(bottom, tops);
    loss[dev] = layer.Forward(bottom, tops);
    top.mutable_cpu_diff()[0] = 5.75;
    layer.Backward(tops, vector<bool>{true, false}, bottom);
    diff[dev].ReshapeLike(x);
    caffe_copy(x.count(), x.cpu_diff(), diff[dev].mutable_cpu_data());
  }
  Caffe::set_mode(Caffe::CPU);
  EXPECT_NEAR(loss[0], loss[1], 1e-5 * std::fabs(loss[0]));
  for (int i = 0; i < x.count(); ++i) {
    const Dtype a = diff[0].cpu_data()[i];
    EXPECT_NEAR(a, diff[1].cpu_data()[i], 1e-4 * std::fabs(a) + 1e-10) << "element " << i;
  }
}
#endif

typedef DiceLossLayerTest<CPUDevice<float> > DiceLossLayerDeathTest;

TEST_F(DiceLossLayerDeathTest, RejectsShapeMismatch) {
  this->targets_->Reshape(4, 1, 3, 2);
  LayerParameter param;
  param.set_name("dice_bad");
  DiceLossLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_, this->top_vec_),
               "dice_bad: logits and targets must have the same shape, got 4 1 3 3 .*4 1 3 2");
}

TEST_F(DiceLossLayerDeathTest, RejectsNonPositiveEps) {
  LayerParameter param;
  param.set_name("dice_bad");
  param.mutable_dice_loss_param()->set_eps(0);
  DiceLossLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_, this->top_vec_), "dice_bad: eps must be > 0");
}

TEST_F(DiceLossLayerDeathTest, RejectsBackwardToTargets) {
  LayerParameter param;
  param.set_name("dice_bad");
  DiceLossLayer<float> layer(param);
  layer.SetUp(this->bottom_, this->top_vec_);
  layer.Forward(this->bottom_, this->top_vec_);
  EXPECT_DEATH(layer.Backward(this->top_vec_, vector<bool>{true, true}, this->bottom_),
               "dice_bad cannot backpropagate to the targets");
}

}  // namespace caffe
