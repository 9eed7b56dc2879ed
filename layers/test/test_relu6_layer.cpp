// Tests of the Caffe fork's ReLU6 layer (upstream CPU code, the project's CUDA twin in
// layers/src/caffe/layers/relu6_layer.cu).
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/relu6_layer.hpp"

#include "caffe/util/math_functions.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

// Inputs on both kinks (exactly 0 and exactly 6), next to them, and far away.
const double kInputs[] = {-100, -3, -0.5, 0, 1e-3, 0.5, 3, 5.999, 6, 6.001, 6.5, 100};
const int kNumInputs = sizeof(kInputs) / sizeof(kInputs[0]);

template <typename TypeParam>
class ReLU6LayerTest : public MultiDeviceTest<TypeParam> {
  typedef typename TypeParam::Dtype Dtype;

 protected:
  ReLU6LayerTest() : bottom_(new Blob<Dtype>(2, 3, 4, 5)), top_(new Blob<Dtype>()) {
    Caffe::set_random_seed(1701);
    bottom_vec_ = {bottom_};
    top_vec_ = {top_};
  }
  virtual ~ReLU6LayerTest() { delete bottom_; delete top_; }

  void SetKinkInputs() {
    bottom_->Reshape(1, 1, 1, kNumInputs);
    for (int i = 0; i < kNumInputs; ++i) bottom_->mutable_cpu_data()[i] = Dtype(kInputs[i]);
  }

  // Uniform in [-2, 8], moved at least 0.05 away from the kinks at 0 and 6, where finite
  // differences mean nothing.
  void FillAwayFromKinks() {
    FillerParameter fp;
    fp.set_min(-2);
    fp.set_max(8);
    UniformFiller<Dtype>(fp).Fill(bottom_);
    Dtype* x = bottom_->mutable_cpu_data();
    for (int i = 0; i < bottom_->count(); ++i) {
      for (double kink : {0.0, 6.0}) {
        if (std::fabs(x[i] - kink) < 0.05) x[i] = Dtype(kink + (x[i] < kink ? -0.1 : 0.1));
      }
    }
  }

  Blob<Dtype>* const bottom_;
  Blob<Dtype>* const top_;
  vector<Blob<Dtype>*> bottom_vec_, top_vec_;
};

TYPED_TEST_CASE(ReLU6LayerTest, TestDtypesAndDevices);

// The numpy-style reference by hand: np.clip(x, 0, 6) and (0 < x < 6) for the gradient; at
// exactly 0 and exactly 6 the gradient is 0 (the CPU code's (x > 0) (x < 6)).
TYPED_TEST(ReLU6LayerTest, TestForwardBackwardOnKinks) {
  typedef typename TypeParam::Dtype Dtype;
  const double y[kNumInputs] = {0, 0, 0, 0, 1e-3, 0.5, 3, 5.999, 6, 6, 6, 6};
  const double dx[kNumInputs] = {0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0};
  this->SetKinkInputs();
  LayerParameter param;
  ReLU6Layer<Dtype> layer(param);
  layer.SetUp(this->bottom_vec_, this->top_vec_);
  layer.Forward(this->bottom_vec_, this->top_vec_);
  caffe_set(kNumInputs, Dtype(2), this->top_->mutable_cpu_diff());
  layer.Backward(this->top_vec_, vector<bool>(1, true), this->bottom_vec_);
  for (int i = 0; i < kNumInputs; ++i) {
    EXPECT_NEAR(y[i], this->top_->cpu_data()[i], 1e-6) << "x = " << kInputs[i];
    EXPECT_EQ(Dtype(dx[i]), this->bottom_->cpu_diff()[i]) << "x = " << kInputs[i];
  }
}

// negative_slope 0.1, threshold 4: y = min(max(x, 0) + 0.1 min(x, 0), 4).
TYPED_TEST(ReLU6LayerTest, TestForwardSlopeAndThreshold) {
  typedef typename TypeParam::Dtype Dtype;
  this->SetKinkInputs();
  LayerParameter param;
  param.mutable_relu6_param()->set_negative_slope(0.1);
  param.mutable_relu6_param()->set_threshold(4);
  ReLU6Layer<Dtype> layer(param);
  layer.SetUp(this->bottom_vec_, this->top_vec_);
  layer.Forward(this->bottom_vec_, this->top_vec_);
  for (int i = 0; i < kNumInputs; ++i) {
    const double x = Dtype(kInputs[i]);
    const double expected = std::min(x > 0 ? x : 0.1 * x, 4.0);
    EXPECT_NEAR(expected, this->top_->cpu_data()[i], 1e-5) << "x = " << kInputs[i];
  }
}

TYPED_TEST(ReLU6LayerTest, TestGradient) {
  typedef typename TypeParam::Dtype Dtype;
  this->FillAwayFromKinks();
  LayerParameter param;
  ReLU6Layer<Dtype> layer(param);
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  checker.CheckGradientEltwise(&layer, this->bottom_vec_, this->top_vec_);
}

TYPED_TEST(ReLU6LayerTest, TestGradientNegativeSlope) {
  typedef typename TypeParam::Dtype Dtype;
  this->FillAwayFromKinks();
  LayerParameter param;
  param.mutable_relu6_param()->set_negative_slope(0.1);
  ReLU6Layer<Dtype> layer(param);
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  checker.CheckGradientEltwise(&layer, this->bottom_vec_, this->top_vec_);
}

// In place (as MobileNetV2 uses it): the same top and bottom diff as out of place.
TYPED_TEST(ReLU6LayerTest, TestInPlace) {
  typedef typename TypeParam::Dtype Dtype;
  this->FillAwayFromKinks();
  this->bottom_->mutable_cpu_data()[0] = 0;  // and the kinks themselves
  this->bottom_->mutable_cpu_data()[1] = 6;
  Blob<Dtype> x, diff;
  x.CopyFrom(*this->bottom_, false, true);
  FillerParameter fp;
  diff.ReshapeLike(x);
  GaussianFiller<Dtype>(fp).Fill(&diff);
  LayerParameter param;
  ReLU6Layer<Dtype> out_of_place(param);
  out_of_place.SetUp(this->bottom_vec_, this->top_vec_);
  out_of_place.Forward(this->bottom_vec_, this->top_vec_);
  caffe_copy(x.count(), diff.cpu_data(), this->top_->mutable_cpu_diff());
  out_of_place.Backward(this->top_vec_, vector<bool>(1, true), this->bottom_vec_);

  vector<Blob<Dtype>*> in_place = {&x};
  ReLU6Layer<Dtype> layer(param);
  layer.SetUp(in_place, in_place);
  layer.Forward(in_place, in_place);
  caffe_copy(x.count(), diff.cpu_data(), x.mutable_cpu_diff());
  layer.Backward(in_place, vector<bool>(1, true), in_place);
  for (int i = 0; i < x.count(); ++i) {
    EXPECT_EQ(this->top_->cpu_data()[i], x.cpu_data()[i]) << "element " << i;
    EXPECT_EQ(this->bottom_->cpu_diff()[i], x.cpu_diff()[i]) << "element " << i;
  }
}

#ifndef CPU_ONLY
// The CUDA kernels against the CPU code on the same input, kinks included: identical results
// (the same few float operations on each element).
template <typename Dtype>
class ReLU6LayerCPUvsGPUTest : public GPUDeviceTest<Dtype> {};

TYPED_TEST_CASE(ReLU6LayerCPUvsGPUTest, TestDtypes);

TYPED_TEST(ReLU6LayerCPUvsGPUTest, TestSameTopAndDiff) {
  typedef TypeParam Dtype;
  Blob<Dtype> in(4, 8, 13, 13), dy;
  Caffe::set_random_seed(1701);
  FillerParameter fp;
  fp.set_std(5);
  GaussianFiller<Dtype>(fp).Fill(&in);
  for (int i = 0; i < kNumInputs; ++i) in.mutable_cpu_data()[i] = Dtype(kInputs[i]);
  dy.ReshapeLike(in);
  GaussianFiller<Dtype>(fp).Fill(&dy);
  vector<Blob<Dtype>*> bottom = {&in};
  Blob<Dtype> tops[2], dx[2];
  for (int dev = 0; dev < 2; ++dev) {
    Caffe::set_mode(dev == 0 ? Caffe::CPU : Caffe::GPU);
    LayerParameter param;
    param.mutable_relu6_param()->set_negative_slope(0.05);
    ReLU6Layer<Dtype> layer(param);
    vector<Blob<Dtype>*> top = {&tops[dev]};
    layer.SetUp(bottom, top);
    layer.Forward(bottom, top);
    caffe_copy(dy.count(), dy.cpu_data(), tops[dev].mutable_cpu_diff());
    layer.Backward(top, vector<bool>(1, true), bottom);
    dx[dev].CopyFrom(in, true, true);
  }
  Caffe::set_mode(Caffe::GPU);
  for (int i = 0; i < in.count(); ++i) {
    EXPECT_EQ(tops[0].cpu_data()[i], tops[1].cpu_data()[i]) << "element " << i;
    EXPECT_EQ(dx[0].cpu_diff()[i], dx[1].cpu_diff()[i]) << "element " << i;
  }
}
#endif  // CPU_ONLY

}  // namespace caffe
