#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/conv_layer.hpp"
#include "caffe/layers/depthwise_conv_layer.hpp"

#include "caffe/util/math_functions.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

// Convolution parameters in the form a stock grouped Convolution reads them.
struct ConvSpec {
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation;
  bool bias;
};

LayerParameter DepthwiseParam(int channels, const ConvSpec& s) {
  LayerParameter param;
  ConvolutionParameter* p = param.mutable_convolution_param();
  p->set_num_output(channels);
  p->set_group(channels);
  p->set_kernel_h(s.kernel_h);
  p->set_kernel_w(s.kernel_w);
  p->set_stride_h(s.stride_h);
  p->set_stride_w(s.stride_w);
  p->set_pad_h(s.pad_h);
  p->set_pad_w(s.pad_w);
  p->add_dilation(s.dilation);
  p->set_bias_term(s.bias);
  p->mutable_weight_filler()->set_type("gaussian");
  p->mutable_bias_filler()->set_type("gaussian");
  return param;
}

// 3x3 / pad 1 at stride 1 and 2 (MobileNetV2's), dilation 2 at stride 1 and 2, a 2x3 kernel
// with unequal strides and pads (other run counts than 9), one without bias.
const ConvSpec kSpecs[] = {
  {3, 3, 1, 1, 1, 1, 1, true}, {3, 3, 2, 2, 1, 1, 1, true}, {3, 3, 1, 1, 2, 2, 2, true},
  {2, 3, 2, 1, 0, 1, 1, true}, {3, 3, 2, 2, 1, 1, 1, false}, {3, 3, 2, 2, 2, 2, 2, true},
  {3, 3, 1, 2, 0, 2, 1, true}};

template <typename TypeParam>
class DepthwiseConvolutionLayerTest : public MultiDeviceTest<TypeParam> {
  typedef typename TypeParam::Dtype Dtype;

 protected:
  DepthwiseConvolutionLayerTest()
      : bottom_(new Blob<Dtype>(2, 3, 6, 5)), top_(new Blob<Dtype>()) {
    Caffe::set_random_seed(1701);
    FillerParameter fp;
    GaussianFiller<Dtype>(fp).Fill(bottom_);
    bottom_vec_ = {bottom_};
    top_vec_ = {top_};
  }
  virtual ~DepthwiseConvolutionLayerTest() { delete bottom_; delete top_; }

  // The depthwise layer and a stock Convolution (group = channels) on the same weights, run
  // forward and backward on the same top diff: tops, bottom diffs and param diffs must agree.
  void CompareWithGroupedConvolution(const ConvSpec& spec) {
    DepthwiseConvolutionLayer<Dtype> depthwise(DepthwiseParam(bottom_->channels(), spec));
    depthwise.SetUp(bottom_vec_, top_vec_);
    CompareWithGroupedConvolution(spec, &depthwise);
  }

  // The same for a depthwise layer already set up (and reshaped to bottom_).
  void CompareWithGroupedConvolution(const ConvSpec& spec,
                                     DepthwiseConvolutionLayer<Dtype>* depthwise_layer) {
    DepthwiseConvolutionLayer<Dtype>& depthwise = *depthwise_layer;
    const int channels = bottom_->channels();
    LayerParameter param = DepthwiseParam(channels, spec);
    ConvolutionLayer<Dtype> stock(param);
    Blob<Dtype> stock_top, stock_bottom_diff;
    vector<Blob<Dtype>*> stock_top_vec = {&stock_top};
    stock.SetUp(bottom_vec_, stock_top_vec);
    ASSERT_EQ(top_->shape(), stock_top.shape());
    ASSERT_EQ(depthwise.blobs().size(), stock.blobs().size());
    for (int i = 0; i < depthwise.blobs().size(); ++i) {
      ASSERT_EQ(depthwise.blobs()[i]->shape(), stock.blobs()[i]->shape());
      stock.blobs()[i]->CopyFrom(*depthwise.blobs()[i]);
      caffe_set(stock.blobs()[i]->count(), Dtype(0), stock.blobs()[i]->mutable_cpu_diff());
      caffe_set(depthwise.blobs()[i]->count(), Dtype(0),
                depthwise.blobs()[i]->mutable_cpu_diff());
    }
    depthwise.Forward(bottom_vec_, top_vec_);
    stock.Forward(bottom_vec_, stock_top_vec);
    ExpectNear(stock_top, top_->cpu_data(), "top");

    FillerParameter fp;
    GaussianFiller<Dtype>(fp).Fill(&stock_top);  // a random top diff for both
    caffe_copy(stock_top.count(), stock_top.cpu_data(), stock_top.mutable_cpu_diff());
    caffe_copy(top_->count(), stock_top.cpu_data(), top_->mutable_cpu_diff());
    stock.Backward(stock_top_vec, vector<bool>(1, true), bottom_vec_);
    stock_bottom_diff.ReshapeLike(*bottom_);
    caffe_copy(bottom_->count(), bottom_->cpu_diff(), stock_bottom_diff.mutable_cpu_data());
    caffe_set(bottom_->count(), Dtype(7), bottom_->mutable_cpu_diff());  // must be overwritten
    depthwise.Backward(top_vec_, vector<bool>(1, true), bottom_vec_);
    ExpectNear(stock_bottom_diff, bottom_->cpu_diff(), "bottom diff");
    for (int i = 0; i < depthwise.blobs().size(); ++i) {
      Blob<Dtype> expected;
      expected.ReshapeLike(*stock.blobs()[i]);
      caffe_copy(expected.count(), stock.blobs()[i]->cpu_diff(), expected.mutable_cpu_data());
      // Each param diff sums a product per top pixel of its channel: allow for their rounding.
      ExpectNear(expected, depthwise.blobs()[i]->cpu_diff(), i == 0 ? "weight diff" : "bias diff",
                 top_->count() / channels);
    }
  }

  // |expected - actual| <= 1e-5 (1 + |expected|), plus 2 eps per term for a value summed from
  // `terms` products of unit-scale numbers (the tests' Gaussian data): a float sum over a
  // 208 x 208 plane rounds differently in another order (stock GEMM vs 8 partial sums).
  void ExpectNear(const Blob<Dtype>& expected, const Dtype* actual, const char* what,
                  int terms = 1) {
    const double summed = 2 * std::numeric_limits<Dtype>::epsilon() * terms;
    for (int i = 0; i < expected.count(); ++i) {
      const Dtype e = expected.cpu_data()[i];
      EXPECT_NEAR(e, actual[i], 1e-5 * (1 + std::fabs(e)) + summed) << what << " element " << i;
    }
  }

  void FillBottom(int num, int channels, int height, int width) {
    bottom_->Reshape(num, channels, height, width);
    FillerParameter fp;
    GaussianFiller<Dtype>(fp).Fill(bottom_);
  }

  Blob<Dtype>* const bottom_;
  Blob<Dtype>* const top_;
  vector<Blob<Dtype>*> bottom_vec_, top_vec_;
};

TYPED_TEST_CASE(DepthwiseConvolutionLayerTest, TestDtypesAndDevices);

TYPED_TEST(DepthwiseConvolutionLayerTest, TestSetUp) {
  typedef typename TypeParam::Dtype Dtype;
  LayerParameter param = DepthwiseParam(3, kSpecs[0]);
  DepthwiseConvolutionLayer<Dtype> layer(param);
  layer.SetUp(this->bottom_vec_, this->top_vec_);
  EXPECT_EQ(this->top_->shape(), (vector<int>{2, 3, 6, 5}));
  ASSERT_EQ(2, layer.blobs().size());
  EXPECT_EQ(layer.blobs()[0]->shape(), (vector<int>{3, 1, 3, 3}));
  EXPECT_EQ(layer.blobs()[1]->shape(), (vector<int>{3}));
  // Stride 2, pad 1: ceil(6 / 2) x ceil(5 / 2); group left out; no bias blob.
  param = DepthwiseParam(3, kSpecs[4]);
  param.mutable_convolution_param()->clear_group();
  DepthwiseConvolutionLayer<Dtype> strided(param);
  strided.SetUp(this->bottom_vec_, this->top_vec_);
  EXPECT_EQ(this->top_->shape(), (vector<int>{2, 3, 3, 3}));
  EXPECT_EQ(1, strided.blobs().size());
}

// One 3x3 plane 0..8, all-ones kernel, pad 1, bias 0.5: each output is its 3x3 neighbourhood's
// sum + 0.5, written out; stride 2 keeps the corners.
TYPED_TEST(DepthwiseConvolutionLayerTest, TestForwardHandComputed) {
  typedef typename TypeParam::Dtype Dtype;
  const double sums[9] = {8, 15, 12, 21, 36, 27, 20, 33, 24};
  this->bottom_->Reshape(1, 1, 3, 3);
  for (int i = 0; i < 9; ++i) this->bottom_->mutable_cpu_data()[i] = Dtype(i);
  for (int stride = 1; stride <= 2; ++stride) {
    ConvSpec spec = {3, 3, stride, stride, 1, 1, 1, true};
    LayerParameter param = DepthwiseParam(1, spec);
    param.mutable_convolution_param()->mutable_weight_filler()->set_type("constant");
    param.mutable_convolution_param()->mutable_weight_filler()->set_value(1);
    param.mutable_convolution_param()->mutable_bias_filler()->set_type("constant");
    param.mutable_convolution_param()->mutable_bias_filler()->set_value(0.5);
    DepthwiseConvolutionLayer<Dtype> layer(param);
    layer.SetUp(this->bottom_vec_, this->top_vec_);
    layer.Forward(this->bottom_vec_, this->top_vec_);
    const int side = stride == 1 ? 3 : 2;
    ASSERT_EQ(this->top_->shape(), (vector<int>{1, 1, side, side}));
    for (int y = 0; y < side; ++y) {
      for (int x = 0; x < side; ++x) {
        EXPECT_NEAR(sums[3 * y * stride + x * stride] + 0.5,
                    this->top_->cpu_data()[y * side + x], 1e-6)
            << "stride " << stride << " at (" << y << ", " << x << ")";
      }
    }
  }
}

TYPED_TEST(DepthwiseConvolutionLayerTest, TestMatchesGroupedConvolution) {
  for (const ConvSpec& spec : kSpecs) {
    SCOPED_TRACE(::testing::Message() << "kernel " << spec.kernel_h << "x" << spec.kernel_w
                 << " stride " << spec.stride_h << "x" << spec.stride_w << " dilation "
                 << spec.dilation << " bias " << spec.bias);
    this->CompareWithGroupedConvolution(spec);
  }
}

// A MobileNetV2-like plane (odd side, 13 -> 7 at stride 2) with more channels than taps.
TYPED_TEST(DepthwiseConvolutionLayerTest, TestMatchesGroupedConvolutionLarger) {
  this->FillBottom(2, 16, 13, 13);
  this->CompareWithGroupedConvolution(kSpecs[0]);
  this->CompareWithGroupedConvolution(kSpecs[1]);
}

// The 3x3 pad 1 code (strides 1 and 2) treats the first and last rows and columns apart and
// splits rows and columns by parity: every height and width from 1 to 9, odd and even, H != W.
TYPED_TEST(DepthwiseConvolutionLayerTest, TestMatchesGroupedConvolutionAllSmallSizes) {
  for (int h = 1; h <= 9; ++h) {
    for (int w = 1; w <= 9; ++w) {
      for (int s = 0; s < 2; ++s) {
        SCOPED_TRACE(::testing::Message() << h << " x " << w << " stride " << s + 1);
        this->FillBottom(2, 2, h, w);
        this->CompareWithGroupedConvolution(kSpecs[s]);
      }
    }
  }
}

// Stride 2 on even widths 16 .. 34 (one block of 8 outputs per row, blocks overlapping at the
// end, 2 full blocks, 2 and a bit; up to 32 the float planes are computed without the split) and
// 48 (the split), odd and even heights: the stock result.
TYPED_TEST(DepthwiseConvolutionLayerTest, TestMatchesGroupedConvolutionEvenWidthsStride2) {
  const int widths[] = {16, 18, 26, 30, 32, 34, 48};
  for (int w : widths) {
    for (int h = 15; h <= 16; ++h) {
      SCOPED_TRACE(::testing::Message() << h << " x " << w << " stride 2");
      this->FillBottom(2, 3, h, w);
      this->CompareWithGroupedConvolution(kSpecs[1]);
    }
  }
}

// Every depthwise convolution of MobileNetV2 at input 416 (channels, side, stride), batch 1.
TYPED_TEST(DepthwiseConvolutionLayerTest, TestMatchesGroupedConvolutionMobileNetV2At416) {
  const int shapes[][3] = {{32, 208, 1}, {96, 208, 2}, {144, 104, 1}, {144, 104, 2},
                           {192, 52, 1}, {192, 52, 2}, {384, 26, 1}, {576, 26, 1},
                           {576, 26, 2}, {960, 13, 1}};
  for (const auto& shape : shapes) {
    SCOPED_TRACE(::testing::Message() << shape[0] << " x " << shape[1] << " stride " << shape[2]);
    this->FillBottom(1, shape[0], shape[1], shape[1]);
    this->CompareWithGroupedConvolution(kSpecs[shape[2] - 1]);
  }
}

// One layer reshaped between sizes (the buffers are sized per Reshape): still the stock result.
// 45 x 47 and 46 x 45 at stride 2 take three bands of output rows (the last one short, odd and
// even last input rows).
TYPED_TEST(DepthwiseConvolutionLayerTest, TestMatchesGroupedConvolutionAfterReshape) {
  typedef typename TypeParam::Dtype Dtype;
  const int sizes[][2] = {{13, 13}, {6, 9}, {45, 47}, {27, 26}, {1, 4}, {46, 45}, {13, 13}};
  for (int s = 0; s < 2; ++s) {
    this->FillBottom(2, 3, sizes[0][0], sizes[0][1]);
    DepthwiseConvolutionLayer<Dtype> depthwise(DepthwiseParam(3, kSpecs[s]));
    depthwise.SetUp(this->bottom_vec_, this->top_vec_);
    for (const auto& size : sizes) {
      SCOPED_TRACE(::testing::Message() << size[0] << " x " << size[1] << " stride " << s + 1);
      this->FillBottom(2, 3, size[0], size[1]);
      depthwise.Reshape(this->bottom_vec_, this->top_vec_);
      this->CompareWithGroupedConvolution(kSpecs[s], &depthwise);
    }
  }
}

// Data, weights and bias (GradientChecker checks every bottom and param blob), stride 1 and 2.
TYPED_TEST(DepthwiseConvolutionLayerTest, TestGradientStride1) {
  typedef typename TypeParam::Dtype Dtype;
  DepthwiseConvolutionLayer<Dtype> layer(DepthwiseParam(3, kSpecs[0]));
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  checker.CheckGradientExhaustive(&layer, this->bottom_vec_, this->top_vec_);
}

TYPED_TEST(DepthwiseConvolutionLayerTest, TestGradientStride2) {
  typedef typename TypeParam::Dtype Dtype;
  DepthwiseConvolutionLayer<Dtype> layer(DepthwiseParam(3, kSpecs[1]));
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  checker.CheckGradientExhaustive(&layer, this->bottom_vec_, this->top_vec_);
}

TYPED_TEST(DepthwiseConvolutionLayerTest, TestGradientGenericKernel) {
  typedef typename TypeParam::Dtype Dtype;
  DepthwiseConvolutionLayer<Dtype> layer(DepthwiseParam(3, kSpecs[3]));
  GradientChecker<Dtype> checker(1e-2, 1e-3);
  checker.CheckGradientExhaustive(&layer, this->bottom_vec_, this->top_vec_);
}

// No images (an empty batch): empty top, forward and backward run and touch nothing.
TYPED_TEST(DepthwiseConvolutionLayerTest, TestZeroImages) {
  typedef typename TypeParam::Dtype Dtype;
  this->bottom_->Reshape(0, 3, 6, 5);
  DepthwiseConvolutionLayer<Dtype> layer(DepthwiseParam(3, kSpecs[1]));
  layer.SetUp(this->bottom_vec_, this->top_vec_);
  EXPECT_EQ(this->top_->shape(), (vector<int>{0, 3, 3, 3}));
  caffe_set(layer.blobs()[0]->count(), Dtype(0), layer.blobs()[0]->mutable_cpu_diff());
  layer.Forward(this->bottom_vec_, this->top_vec_);
  layer.Backward(this->top_vec_, vector<bool>(1, true), this->bottom_vec_);
  EXPECT_EQ(0, caffe_cpu_asum(layer.blobs()[0]->count(), layer.blobs()[0]->cpu_diff()));
}

typedef DepthwiseConvolutionLayerTest<CPUDevice<float> > DepthwiseConvolutionLayerDeathTest;

TEST_F(DepthwiseConvolutionLayerDeathTest, RejectsNumOutputOtherThanChannels) {
  LayerParameter param = DepthwiseParam(6, kSpecs[0]);
  param.mutable_convolution_param()->clear_group();
  param.set_name("dw_bad");
  DepthwiseConvolutionLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_vec_, this->top_vec_),
               "dw_bad: num_output must equal the input channels \\(3\\), got 6");
}

TEST_F(DepthwiseConvolutionLayerDeathTest, RejectsGroupOtherThanChannels) {
  LayerParameter param = DepthwiseParam(3, kSpecs[0]);
  param.mutable_convolution_param()->set_group(1);
  param.set_name("dw_bad");
  DepthwiseConvolutionLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_vec_, this->top_vec_),
               "dw_bad: group must equal the input channels \\(3\\) or be left out, got 1");
}

#ifndef CPU_ONLY
// The CUDA twin against the CPU code on the same seeded input and weights: tops, bottom diff
// and param diffs, stride 1 and 2.
template <typename Dtype>
class DepthwiseConvolutionLayerCPUvsGPUTest : public GPUDeviceTest<Dtype> {};

TYPED_TEST_CASE(DepthwiseConvolutionLayerCPUvsGPUTest, TestDtypes);

TYPED_TEST(DepthwiseConvolutionLayerCPUvsGPUTest, TestSameTopsAndDiffs) {
  typedef TypeParam Dtype;
  for (int s = 0; s < 2; ++s) {
    Blob<Dtype> in(2, 24, 27, 27), top_diff;
    Caffe::set_random_seed(1701);
    FillerParameter fp;
    GaussianFiller<Dtype>(fp).Fill(&in);
    vector<Blob<Dtype>*> bottom = {&in};
    Blob<Dtype> tops[2], in_diff[2], w_diff[2], b_diff[2];
    for (int dev = 0; dev < 2; ++dev) {
      Caffe::set_mode(dev == 0 ? Caffe::CPU : Caffe::GPU);
      Caffe::set_random_seed(1702);  // the same weights on both
      DepthwiseConvolutionLayer<Dtype> layer(DepthwiseParam(24, kSpecs[s]));
      vector<Blob<Dtype>*> top = {&tops[dev]};
      layer.SetUp(bottom, top);
      layer.Forward(bottom, top);
      if (dev == 0) {
        top_diff.ReshapeLike(tops[0]);
        GaussianFiller<Dtype>(fp).Fill(&top_diff);
      }
      caffe_copy(top_diff.count(), top_diff.cpu_data(), tops[dev].mutable_cpu_diff());
      for (int b = 0; b < 2; ++b) {
        caffe_set(layer.blobs()[b]->count(), Dtype(0), layer.blobs()[b]->mutable_cpu_diff());
      }
      layer.Backward(top, vector<bool>(1, true), bottom);
      in_diff[dev].ReshapeLike(in);
      in_diff[dev].CopyFrom(in, true);
      w_diff[dev].ReshapeLike(*layer.blobs()[0]);
      w_diff[dev].CopyFrom(*layer.blobs()[0], true);
      b_diff[dev].ReshapeLike(*layer.blobs()[1]);
      b_diff[dev].CopyFrom(*layer.blobs()[1], true);
    }
    Caffe::set_mode(Caffe::GPU);
    const Blob<Dtype>* pairs[4][2] = {{&tops[0], &tops[1]}, {&in_diff[0], &in_diff[1]},
                                      {&w_diff[0], &w_diff[1]}, {&b_diff[0], &b_diff[1]}};
    const bool diffs[4] = {false, true, true, true};
    for (int k = 0; k < 4; ++k) {
      ASSERT_EQ(pairs[k][0]->shape(), pairs[k][1]->shape());
      const Dtype* a = diffs[k] ? pairs[k][0]->cpu_diff() : pairs[k][0]->cpu_data();
      const Dtype* b = diffs[k] ? pairs[k][1]->cpu_diff() : pairs[k][1]->cpu_data();
      for (int i = 0; i < pairs[k][0]->count(); ++i) {
        EXPECT_NEAR(a[i], b[i], 1e-4 * (1 + std::fabs(a[i]))) << "stride " << s + 1
            << " blob " << k << " element " << i;
      }
    }
  }
}
#endif  // CPU_ONLY

}  // namespace caffe
