// winograd3x3_forward_cpu (the overlay's path for 3x3 stride-1 convolutions) against the
// definition, a direct convolution summed in double: sizes not a multiple of the 4 x 4 tile,
// 1 x 1 outputs, pads 0-2 and unequal, channel counts off the vector width, batches split into
// chunks. Then through Caffe's own ConvolutionLayer: the overlay's hook is what runs (bit-equal
// to the function), declines every other geometry, and Caffe's backward is still the gradient of
// this forward (GradientChecker).
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/conv_layer.hpp"
#include "caffe/util/winograd_conv.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

namespace {

int OutH(const WinogradConvShape& s) { return s.height + 2 * s.pad_h - 2; }
int OutW(const WinogradConvShape& s) { return s.width + 2 * s.pad_w - 2; }

// The definition, summed in double; scale[k] = |bias| + sum |w x| over output k's terms, the
// size rounding is relative to.
template <typename Dtype>
void DirectConvolution(const WinogradConvShape& s, const std::vector<Dtype>& bottom,
                       const std::vector<Dtype>& weight, const Dtype* bias,
                       std::vector<double>* top, std::vector<double>* scale) {
  const int oh = OutH(s), ow = OutW(s);
  top->assign(static_cast<size_t>(s.num) * s.num_output * oh * ow, 0.0);
  scale->assign(top->size(), 0.0);
  size_t k = 0;
  for (int n = 0; n < s.num; ++n)
    for (int o = 0; o < s.num_output; ++o)
      for (int y = 0; y < oh; ++y)
        for (int x = 0; x < ow; ++x, ++k) {
          double sum = bias ? bias[o] : 0.0, mag = bias ? std::fabs(bias[o]) : 0.0;
          for (int c = 0; c < s.channels; ++c)
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 3; ++j) {
                const int iy = y - s.pad_h + i, ix = x - s.pad_w + j;
                if (iy < 0 || iy >= s.height || ix < 0 || ix >= s.width) continue;
                const double term = static_cast<double>(
                    weight[((o * s.channels + c) * 3 + i) * 3 + j]) *
                    bottom[((static_cast<size_t>(n) * s.channels + c) * s.height + iy) *
                           s.width + ix];
                sum += term;
                mag += std::fabs(term);
              }
          (*top)[k] = sum;
          (*scale)[k] = mag;
        }
}

template <typename Dtype>
std::vector<Dtype> Uniform(size_t n, Dtype lo, Dtype hi) {
  std::vector<Dtype> v(n);
  caffe_rng_uniform<Dtype>(static_cast<int>(n), lo, hi, v.data());
  return v;
}

LayerParameter ConvParam(int num_output, int kernel, int stride, int pad, int dilation,
                         int group, bool bias) {
  LayerParameter param;
  ConvolutionParameter* p = param.mutable_convolution_param();
  p->set_num_output(num_output);
  p->add_kernel_size(kernel);
  p->add_stride(stride);
  p->add_pad(pad);
  p->add_dilation(dilation);
  p->set_group(group);
  p->set_bias_term(bias);
  p->mutable_weight_filler()->set_type("gaussian");
  p->mutable_bias_filler()->set_type("gaussian");
  return param;
}

// A 2-D parameter as ConvolutionLayer keeps it: the same value along both axes.
void Both(Blob<int>* b, int value) {
  b->Reshape(vector<int>(1, 2));
  b->mutable_cpu_data()[0] = b->mutable_cpu_data()[1] = value;
}

}  // namespace

template <typename Dtype>
class WinogradConvTest : public ::testing::Test {
 protected:
  WinogradConvTest() { Caffe::set_random_seed(1701); }

  // A ConvolutionLayer 12 -> 10, 3x3, pad 1, with bias and `engine`, forward on a Gaussian
  // 2 x 12 x 9 x 10 bottom (kLayerShape): bottom_, top_, layer_.
  void RunLayer(ConvolutionParameter_Engine engine) {
    bottom_.Reshape(kLayerShape.num, kLayerShape.channels, kLayerShape.height, kLayerShape.width);
    FillerParameter fp;
    GaussianFiller<Dtype>(fp).Fill(&bottom_);
    vector<Blob<Dtype>*> bottom_vec(1, &bottom_), top_vec(1, &top_);
    LayerParameter param = ConvParam(kLayerShape.num_output, 3, 1, 1, 1, 1, true);
    param.mutable_convolution_param()->set_engine(engine);
    layer_.reset(new ConvolutionLayer<Dtype>(param));
    layer_->SetUp(bottom_vec, top_vec);
    layer_->Forward(bottom_vec, top_vec);
  }

  // winograd3x3_forward_cpu on RunLayer's bottom, weights and bias.
  std::vector<Dtype> WinogradOfLayer() {
    std::vector<Dtype> out(top_.count());
    winograd3x3_forward_cpu(kLayerShape, bottom_.cpu_data(), layer_->blobs()[0]->cpu_data(),
                            layer_->blobs()[1]->cpu_data(), out.data());
    return out;
  }

  const WinogradConvShape kLayerShape = {2, 12, 9, 10, 10, 1, 1};
  Blob<Dtype> bottom_, top_;
  shared_ptr<ConvolutionLayer<Dtype> > layer_;

  // Rounding allowed, relative to an output's scale: float carries 24 bits, and the transforms'
  // constants (up to 8 and 1/24) cost a few more than a direct sum's.
  static double Tolerance() { return sizeof(Dtype) == 4 ? 1e-5 : 1e-13; }

  void Check(const WinogradConvShape& s, bool with_bias) {
    SCOPED_TRACE(::testing::Message() << s.num << " x " << s.channels << " x " << s.height
                 << " x " << s.width << " -> " << s.num_output << ", pad " << s.pad_h << ","
                 << s.pad_w << (with_bias ? ", bias" : ""));
    const std::vector<Dtype> bottom =
        Uniform<Dtype>(static_cast<size_t>(s.num) * s.channels * s.height * s.width, -1, 1);
    const std::vector<Dtype> weight =
        Uniform<Dtype>(static_cast<size_t>(s.num_output) * s.channels * 9, -1, 1);
    const std::vector<Dtype> bias = Uniform<Dtype>(s.num_output, -1, 1);
    const Dtype* b = with_bias ? bias.data() : NULL;
    std::vector<double> expect, scale;
    DirectConvolution(s, bottom, weight, b, &expect, &scale);
    // Filled with a marker first: every output must be written.
    std::vector<Dtype> top(expect.size(), Dtype(-777));
    winograd3x3_forward_cpu(s, bottom.data(), weight.data(), b, top.data());
    double worst = 0;
    for (size_t k = 0; k < top.size(); ++k) {
      const double err = std::fabs(top[k] - expect[k]) / scale[k];
      ASSERT_LE(err, Tolerance()) << "output " << k << ": " << top[k] << " vs " << expect[k];
      worst = std::max(worst, err);
    }
    ::testing::Test::RecordProperty("worst_relative_error",
                                    ::testing::PrintToString(worst).c_str());
  }
};
typedef ::testing::Types<float, double> Dtypes;
TYPED_TEST_CASE(WinogradConvTest, Dtypes);

TYPED_TEST(WinogradConvTest, MatchesDirectConvolution) {
  // num, channels, height, width, num_output, pad_h, pad_w
  const WinogradConvShape shapes[] = {
      {1, 1, 1, 1, 1, 1, 1},     // one pixel, all padding around it
      {2, 3, 5, 7, 4, 1, 1},     // edges of partial tiles both ways
      {1, 8, 8, 8, 8, 0, 0},     // 6 x 6 output: one whole tile and a half one
      {3, 16, 13, 11, 9, 2, 1},  // pads past the kernel's reach, unequal
      {2, 5, 3, 3, 6, 0, 0},     // 1 x 1 output
      {1, 2, 4, 9, 3, 0, 2},
      {2, 17, 28, 28, 19, 1, 1},  // the tail's 28 x 28, channels off the vector width
      {1, 9, 6, 3, 10, 1, 0}};  // one column
  for (const WinogradConvShape& s : shapes) {
    this->Check(s, true);
    this->Check(s, false);
  }
}

// Enough images that the batch goes in chunks (at 1024 channels and 49 tiles per image, at most
// 4 images per chunk of kChunkFloats, 8 << 20: here 3 + 2, each on two workers).
TYPED_TEST(WinogradConvTest, MatchesDirectConvolutionAcrossChunks) {
  const WinogradConvShape s = {5, 1024, 28, 28, 8, 1, 1};
  this->Check(s, true);
}

// Through Caffe's ConvolutionLayer: the overlay's hook runs the function above (bit-equal)...
TYPED_TEST(WinogradConvTest, ConvolutionLayerTakesIt) {
  this->RunLayer(ConvolutionParameter_Engine_DEFAULT);
  const std::vector<TypeParam> expect = this->WinogradOfLayer();
  for (int k = 0; k < this->top_.count(); ++k)
    ASSERT_EQ(expect[k], this->top_.cpu_data()[k]) << k;
}

// engine: CAFFE keeps Caffe's im2col + GEMM (the benchmarks' baseline): the same function
// (direct convolution's rounding), not the Winograd path's values.
TYPED_TEST(WinogradConvTest, EngineCaffeKeepsIm2col) {
  typedef TypeParam Dtype;
  this->RunLayer(ConvolutionParameter_Engine_CAFFE);
  const Blob<Dtype>& x = this->bottom_;
  const Blob<Dtype>& w = *this->layer_->blobs()[0];
  std::vector<double> expect, scale;
  DirectConvolution(this->kLayerShape, std::vector<Dtype>(x.cpu_data(), x.cpu_data() + x.count()),
                    std::vector<Dtype>(w.cpu_data(), w.cpu_data() + w.count()),
                    this->layer_->blobs()[1]->cpu_data(), &expect, &scale);
  const std::vector<Dtype> winograd = this->WinogradOfLayer();
  int differ = 0;
  for (int k = 0; k < this->top_.count(); ++k) {
    const Dtype got = this->top_.cpu_data()[k];
    ASSERT_LE(std::fabs(got - expect[k]), this->Tolerance() * scale[k]) << k;
    differ += got != winograd[k];
  }
  EXPECT_GT(differ, 0) << "engine: CAFFE ran the Winograd path";
}

// ... and declines every other geometry, leaving it to Caffe's im2col + GEMM.
TYPED_TEST(WinogradConvTest, HookDeclinesOtherGeometries) {
  typedef TypeParam Dtype;
  struct Case {
    int num_output, channels, kernel, stride, pad, dilation, group, num, side;
    bool takes;
  };
  const Case cases[] = {
      {8, 8, 3, 1, 1, 1, 1, 2, 6, true},   {8, 8, 3, 1, 0, 1, 1, 2, 10, true},
      {8, 8, 3, 2, 1, 1, 1, 2, 10, false}, {8, 8, 1, 1, 0, 1, 1, 2, 10, false},
      {8, 8, 5, 1, 2, 1, 1, 2, 10, false}, {8, 8, 3, 1, 2, 2, 1, 2, 10, false},
      {8, 8, 3, 1, 1, 1, 2, 2, 10, false}, {7, 8, 3, 1, 1, 1, 1, 2, 10, false},
      {8, 7, 3, 1, 1, 1, 1, 2, 10, false},
      {8, 8, 3, 1, 1, 1, 1, 1, 6, false}};  // 4 tiles (< kWinogradMinTiles); two images: 8
  for (const Case& c : cases) {
    Blob<Dtype> bottom(c.num, c.channels, c.side, c.side), top;
    vector<Blob<Dtype>*> bottom_vec(1, &bottom), top_vec(1, &top);
    ConvolutionLayer<Dtype> layer(
        ConvParam(c.num_output, c.kernel, c.stride, c.pad, c.dilation, c.group, false));
    layer.SetUp(bottom_vec, top_vec);
    caffe_set(top.count(), Dtype(-777), top.mutable_cpu_data());
    Blob<int> kernel, stride, pad, dilation;
    Both(&kernel, c.kernel);
    Both(&stride, c.stride);
    Both(&pad, c.pad);
    Both(&dilation, c.dilation);
    SCOPED_TRACE(::testing::Message() << c.num << " x " << c.channels << " x " << c.side << " -> "
                 << c.num_output << ", kernel "
                 << c.kernel << " stride " << c.stride << " pad " << c.pad << " dilation "
                 << c.dilation << " group " << c.group);
    const Blob<Dtype>* no_bias = NULL;
    EXPECT_EQ(c.takes, winograd3x3_layer_forward_cpu(kernel, stride, pad, dilation, c.group,
                                                     *layer.blobs()[0], no_bias, bottom_vec,
                                                     top_vec));
    if (!c.takes)  // declined: nothing written
      for (int k = 0; k < top.count(); ++k) ASSERT_EQ(Dtype(-777), top.cpu_data()[k]);
  }
}

// Caffe's backward (im2col + GEMM) is still the gradient of the Winograd forward: data, weights
// and bias, with pad 1 and pad 0. In double: float finite differences of outputs near 10 with
// the transforms' extra rounding (a few 1e-6 relative) already miss the checker's 1e-3.
TEST(WinogradConvGradientTest, ConvolutionLayerDouble) {
  Caffe::set_random_seed(1701);
  for (int pad = 0; pad <= 1; ++pad) {
    Blob<double> bottom(1, 8, 5, 4), top;
    FillerParameter fp;
    GaussianFiller<double>(fp).Fill(&bottom);
    vector<Blob<double>*> bottom_vec(1, &bottom), top_vec(1, &top);
    ConvolutionLayer<double> layer(ConvParam(8, 3, 1, pad, 1, 1, true));
    GradientChecker<double> checker(1e-2, 1e-3);
    checker.CheckGradientExhaustive(&layer, bottom_vec, top_vec);
  }
}

}  // namespace caffe
