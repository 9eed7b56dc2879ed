// The overlay's batched GPU forward and backward of Convolution and Deconvolution
// (caffe/util/batched_conv.hpp).
// On the CPU: the element functions its kernels run, against Caffe's own im2col_cpu / col2im_cpu
// image by image (the batch indexing, padding, strides, dilation). On a GPU: the hooks and the
// layers against Caffe's CPU forward and backward over geometries, chunked batches, declines,
// TF32, and the backward the gradient of the forward (GradientChecker).
#include <cmath>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/conv_layer.hpp"
#include "caffe/layers/deconv_layer.hpp"
#include "caffe/util/batched_conv.hpp"
#include "caffe/util/im2col.hpp"
#include "caffe/util/math_functions.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

namespace {

struct Case {
  const char* name;
  int channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h,
      dilation_w;
};

const Case kCases[] = {
    {"tail 3x3", 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},
    {"tail 2x2 stride 2", 2, 8, 6, 2, 2, 0, 0, 2, 2, 1, 1},
    {"3x2, unequal pads and strides", 2, 9, 7, 3, 2, 2, 0, 2, 3, 1, 1},
    {"dilation 2", 3, 10, 8, 3, 3, 2, 1, 1, 1, 2, 2},
    {"1x1", 4, 5, 5, 1, 1, 0, 0, 1, 1, 1, 1},
    {"4x4 stride 2, overlapping", 2, 6, 7, 4, 4, 1, 1, 2, 2, 1, 1},
};

ConvGeometry GeometryOf(const Case& c) {
  ConvGeometry g = {c.channels, c.height,   c.width,    c.kernel_h,   c.kernel_w,  c.pad_h,
                    c.pad_w,    c.stride_h, c.stride_w, c.dilation_h, c.dilation_w};
  return g;
}

template <typename Dtype>
std::vector<Dtype> Uniform(size_t n) {
  std::vector<Dtype> v(n);
  caffe_rng_uniform<Dtype>(static_cast<int>(n), Dtype(-1), Dtype(1), v.data());
  return v;
}

void Im2colCpu(const ConvGeometry& g, const double* image, double* cols) {
  im2col_cpu(image, g.channels, g.height, g.width, g.kernel_h, g.kernel_w, g.pad_h, g.pad_w,
             g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, cols);
}

void Col2imCpu(const ConvGeometry& g, const double* cols, double* image) {
  col2im_cpu(cols, g.channels, g.height, g.width, g.kernel_h, g.kernel_w, g.pad_h, g.pad_w,
             g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, image);
}

const int kImages = 3;

}  // namespace

TEST(BatchedConvElementTest, Im2colIsCaffesImageByImage) {
  Caffe::set_random_seed(1701);
  for (const Case& c : kCases) {
    const ConvGeometry g = GeometryOf(c);
    const std::vector<double> images = Uniform<double>(kImages * g.image_count());
    std::vector<double> cols(kImages * g.col_count(), -7.0);
    const int n = kImages * g.channels * g.col_h() * g.col_w();
    for (int i = 0; i < n; ++i) batched_im2col_element(i, g, images.data(), cols.data());
    std::vector<double> expected(g.col_count());
    for (int b = 0; b < kImages; ++b) {
      Im2colCpu(g, images.data() + b * g.image_count(), expected.data());
      for (int k = 0; k < g.col_count(); ++k)
        ASSERT_EQ(expected[k], cols[b * g.col_count() + k]) << c.name << ", image " << b << ", " << k;
    }
  }
}

TEST(BatchedConvElementTest, Col2imIsCaffesImageByImage) {
  Caffe::set_random_seed(1702);
  for (const Case& c : kCases) {
    const ConvGeometry g = GeometryOf(c);
    const std::vector<double> cols = Uniform<double>(kImages * g.col_count());
    std::vector<double> expected(g.image_count());
    for (int b = 0; b < kImages; ++b) {
      Col2imCpu(g, cols.data() + b * g.col_count(), expected.data());
      for (int k = 0; k < g.image_count(); ++k) {
        // the same terms, summed in another order where windows overlap
        const double got = batched_col2im_element(b * g.image_count() + k, g, cols.data());
        ASSERT_NEAR(expected[k], got, 1e-12) << c.name << ", image " << b << ", " << k;
      }
    }
  }
}

#ifndef CPU_ONLY

namespace {

// The layers' members for one case, as BaseConvolutionLayer keeps them.
struct Members {
  Blob<int> kernel, stride, pad, dilation;
  explicit Members(const Case& c)
      : kernel(std::vector<int>(1, 2)), stride(std::vector<int>(1, 2)),
        pad(std::vector<int>(1, 2)), dilation(std::vector<int>(1, 2)) {
    Set(&kernel, c.kernel_h, c.kernel_w);
    Set(&stride, c.stride_h, c.stride_w);
    Set(&pad, c.pad_h, c.pad_w);
    Set(&dilation, c.dilation_h, c.dilation_w);
  }
  static void Set(Blob<int>* b, int h, int w) {
    b->mutable_cpu_data()[0] = h;
    b->mutable_cpu_data()[1] = w;
  }
  ConvLayerShape Shape(int group) const {
    ConvLayerShape shape = {kernel, stride, pad, dilation, group};
    return shape;
  }
};

LayerParameter ParamOf(const Case& c, int num_output, bool bias, bool caffe_engine) {
  LayerParameter param;
  ConvolutionParameter* p = param.mutable_convolution_param();
  p->set_num_output(num_output);
  p->set_kernel_h(c.kernel_h);
  p->set_kernel_w(c.kernel_w);
  p->set_pad_h(c.pad_h);
  p->set_pad_w(c.pad_w);
  p->set_stride_h(c.stride_h);
  p->set_stride_w(c.stride_w);
  p->add_dilation(c.dilation_h);
  p->add_dilation(c.dilation_w);
  p->set_bias_term(bias);
  p->mutable_weight_filler()->set_type("gaussian");
  p->mutable_bias_filler()->set_type("gaussian");
  if (caffe_engine) p->set_engine(ConvolutionParameter_Engine_CAFFE);
  return param;
}

}  // namespace

template <typename Dtype>
class BatchedConvGPUTest : public GPUDeviceTest<Dtype> {
 protected:
  BatchedConvGPUTest() : saved_(batched_conv_options()) {}
  ~BatchedConvGPUTest() { batched_conv_options() = saved_; }

  // Layer's top from bottom (filled with Uniform(-1, 1), seeded) on mode, its blobs copied from
  // `blobs` when given, else filled by its fillers; the blobs it ran with go to *used.
  template <typename LayerT>
  std::vector<Dtype> Run(const LayerParameter& param, const std::vector<int>& bottom_shape,
                         Caffe::Brew mode, const std::vector<shared_ptr<Blob<Dtype> > >* blobs,
                         std::vector<shared_ptr<Blob<Dtype> > >* used) {
    Caffe::set_mode(mode);
    Caffe::set_random_seed(1703);
    Blob<Dtype> bottom(bottom_shape), top;
    caffe_rng_uniform<Dtype>(bottom.count(), Dtype(-1), Dtype(1), bottom.mutable_cpu_data());
    std::vector<Blob<Dtype>*> bottoms(1, &bottom), tops(1, &top);
    LayerT layer(param);
    layer.SetUp(bottoms, tops);
    if (blobs)
      for (size_t i = 0; i < blobs->size(); ++i) layer.blobs()[i]->CopyFrom(*(*blobs)[i]);
    layer.Forward(bottoms, tops);
    if (used) *used = layer.blobs();
    Caffe::set_mode(Caffe::GPU);
    return std::vector<Dtype>(top.cpu_data(), top.cpu_data() + top.count());
  }

  // The GPU layer (the overlay's hook) against Caffe's CPU forward on the same blobs.
  template <typename LayerT>
  void ExpectLikeCpu(const Case& c, int images, int filters, int channels, bool bias) {
    const std::vector<int> shape = BottomShape<LayerT>(c, images, filters);
    std::vector<shared_ptr<Blob<Dtype> > > blobs;
    const std::vector<Dtype> gpu =
        Run<LayerT>(ParamOf(c, channels, bias, false), shape, Caffe::GPU, NULL, &blobs);
    const std::vector<Dtype> cpu =
        Run<LayerT>(ParamOf(c, channels, bias, true), shape, Caffe::CPU, &blobs, NULL);
    ExpectNear(cpu, gpu, Tolerance(), c.name);
  }

  // The GPU layer's backward (the hooks) against Caffe's CPU backward on the same blobs, bottom
  // and top diff. Parameter diffs start at 0.5: they must be added to, as Caffe does, and the
  // weights' left alone when weight_down is false.
  template <typename LayerT>
  void ExpectBackwardLikeCpu(const Case& c, int images, int filters, int channels, bool bias,
                             bool weight_down) {
    const std::vector<int> shape = BottomShape<LayerT>(c, images, filters);
    std::vector<std::vector<Dtype> > diffs[2];  // GPU, CPU: bottom diff, then each parameter's
    std::vector<shared_ptr<Blob<Dtype> > > blobs;
    for (int dev = 0; dev < 2; ++dev) {
      Caffe::set_mode(dev == 0 ? Caffe::GPU : Caffe::CPU);
      Caffe::set_random_seed(1706);
      Blob<Dtype> bottom(shape), top;
      caffe_rng_uniform<Dtype>(bottom.count(), Dtype(-1), Dtype(1), bottom.mutable_cpu_data());
      std::vector<Blob<Dtype>*> bottoms(1, &bottom), tops(1, &top);
      LayerT layer(ParamOf(c, channels, bias, dev == 1));
      layer.SetUp(bottoms, tops);
      if (dev == 0) blobs = layer.blobs();
      for (size_t i = 0; i < layer.blobs().size(); ++i) {
        if (dev == 1) layer.blobs()[i]->CopyFrom(*blobs[i]);
        caffe_set(layer.blobs()[i]->count(), Dtype(0.5), layer.blobs()[i]->mutable_cpu_diff());
      }
      layer.set_param_propagate_down(0, weight_down);
      layer.Forward(bottoms, tops);
      caffe_rng_uniform<Dtype>(top.count(), Dtype(-1), Dtype(1), top.mutable_cpu_diff());
      layer.Backward(tops, std::vector<bool>(1, true), bottoms);
      diffs[dev].emplace_back(bottom.cpu_diff(), bottom.cpu_diff() + bottom.count());
      for (size_t i = 0; i < layer.blobs().size(); ++i) {
        const Blob<Dtype>& b = *layer.blobs()[i];
        diffs[dev].emplace_back(b.cpu_diff(), b.cpu_diff() + b.count());
      }
    }
    Caffe::set_mode(Caffe::GPU);
    ASSERT_EQ(diffs[1].size(), diffs[0].size());
    for (size_t k = 0; k < diffs[0].size(); ++k)
      ExpectNear(diffs[1][k], diffs[0][k], Tolerance(), c.name);
    if (!weight_down)
      for (Dtype v : diffs[0][1]) ASSERT_EQ(Dtype(0.5), v) << c.name;
  }

  // Convolution's bottom is the image side; Deconvolution's is the cols side, whose spatial
  // size follows from the case's image.
  template <typename LayerT>
  static std::vector<int> BottomShape(const Case& c, int images, int filters);

  static Dtype Tolerance() { return sizeof(Dtype) == 4 ? Dtype(1e-4) : Dtype(1e-10); }

  static void ExpectNear(const std::vector<Dtype>& want, const std::vector<Dtype>& got,
                         Dtype tolerance, const char* name) {
    ASSERT_EQ(want.size(), got.size()) << name;
    for (size_t k = 0; k < want.size(); ++k)
      ASSERT_NEAR(want[k], got[k], tolerance * (1 + std::fabs(want[k]))) << name << ", " << k;
  }

  // The hooks' backward is the gradient of their forward; two images, so both are the hooks'.
  void CheckGradient(Layer<Dtype>* layer, const std::vector<int>& bottom_shape) {
    Blob<Dtype> bottom(bottom_shape), top;
    Caffe::set_random_seed(1704);
    caffe_rng_uniform<Dtype>(bottom.count(), Dtype(-1), Dtype(1), bottom.mutable_cpu_data());
    std::vector<Blob<Dtype>*> bottoms(1, &bottom), tops(1, &top);
    GradientChecker<Dtype> checker(1e-2, 1e-3);
    checker.CheckGradientExhaustive(layer, bottoms, tops);
  }

  BatchedConvOptions saved_;
};

template <typename Dtype>
template <typename LayerT>
std::vector<int> BatchedConvGPUTest<Dtype>::BottomShape(const Case& c, int images, int filters) {
  std::vector<int> shape(4, images);
  const ConvGeometry g = GeometryOf(c);
  if (std::is_same<LayerT, ConvolutionLayer<Dtype> >::value) {
    shape[1] = c.channels, shape[2] = c.height, shape[3] = c.width;
  } else {
    shape[1] = filters, shape[2] = g.col_h(), shape[3] = g.col_w();
  }
  return shape;
}

TYPED_TEST_CASE(BatchedConvGPUTest, TestDtypes);

TYPED_TEST(BatchedConvGPUTest, ConvolutionLikeCpu) {
  for (const Case& c : kCases) {
    this->template ExpectLikeCpu<ConvolutionLayer<TypeParam> >(c, 5, 0, 7, true);
    this->template ExpectLikeCpu<ConvolutionLayer<TypeParam> >(c, 2, 0, 3, false);
  }
}

TYPED_TEST(BatchedConvGPUTest, DeconvolutionLikeCpu) {
  for (const Case& c : kCases) {
    // the case's channels are the deconvolution's top; 5 filters on its bottom
    this->template ExpectLikeCpu<DeconvolutionLayer<TypeParam> >(c, 4, 5, c.channels, true);
    this->template ExpectLikeCpu<DeconvolutionLayer<TypeParam> >(c, 2, 3, c.channels, false);
  }
}

TYPED_TEST(BatchedConvGPUTest, ConvolutionBackwardLikeCpu) {
  for (const Case& c : kCases) {
    this->template ExpectBackwardLikeCpu<ConvolutionLayer<TypeParam> >(c, 5, 0, 7, true, true);
    this->template ExpectBackwardLikeCpu<ConvolutionLayer<TypeParam> >(c, 2, 0, 3, false, false);
  }
}

TYPED_TEST(BatchedConvGPUTest, DeconvolutionBackwardLikeCpu) {
  for (const Case& c : kCases) {
    this->template ExpectBackwardLikeCpu<DeconvolutionLayer<TypeParam> >(c, 4, 5, c.channels,
                                                                          true, true);
    this->template ExpectBackwardLikeCpu<DeconvolutionLayer<TypeParam> >(c, 2, 3, c.channels,
                                                                          false, false);
  }
}

TYPED_TEST(BatchedConvGPUTest, ChunksGiveTheSameResults) {
  const Case& c = kCases[0];
  const ConvGeometry g = GeometryOf(c);
  const size_t one = g.col_count() * sizeof(TypeParam);
  for (size_t bytes : {2 * one + 1, one - 1, size_t(1)}) {  // chunks of 2, 2, 1; then 1 each
    batched_conv_options().workspace_bytes = bytes;
    this->template ExpectLikeCpu<ConvolutionLayer<TypeParam> >(c, 5, 0, 7, true);
    this->template ExpectLikeCpu<DeconvolutionLayer<TypeParam> >(kCases[1], 5, 4, 2, true);
    this->template ExpectBackwardLikeCpu<ConvolutionLayer<TypeParam> >(c, 5, 0, 7, true, true);
    this->template ExpectBackwardLikeCpu<DeconvolutionLayer<TypeParam> >(kCases[1], 5, 4, 2,
                                                                          true, true);
  }
}

TYPED_TEST(BatchedConvGPUTest, LayerRunsTheHook) {
  // the GPU layer's top is bit for bit the hook's, called with the layer's blobs
  typedef TypeParam Dtype;
  const Case& c = kCases[0];
  const std::vector<int> shape = this->template BottomShape<ConvolutionLayer<Dtype> >(c, 4, 0);
  std::vector<shared_ptr<Blob<Dtype> > > blobs;
  const std::vector<Dtype> layer = this->template Run<ConvolutionLayer<Dtype> >(
      ParamOf(c, 6, true, false), shape, Caffe::GPU, NULL, &blobs);
  Caffe::set_random_seed(1703);
  Blob<Dtype> bottom(shape), top(4, 6, c.height, c.width);
  caffe_rng_uniform<Dtype>(bottom.count(), Dtype(-1), Dtype(1), bottom.mutable_cpu_data());
  const Members m(c);
  ASSERT_TRUE(batched_conv_forward_gpu(false, m.Shape(1), *blobs[0], blobs[1].get(),
                                       std::vector<Blob<Dtype>*>(1, &bottom),
                                       std::vector<Blob<Dtype>*>(1, &top)));
  for (int k = 0; k < top.count(); ++k) ASSERT_EQ(layer[k], top.cpu_data()[k]) << k;
}

TYPED_TEST(BatchedConvGPUTest, DeclinesAndWritesNothing) {
  typedef TypeParam Dtype;
  const Case& c = kCases[0];
  const Members m(c);
  Blob<Dtype> weight(6, c.channels, 3, 3);
  const auto decline = [&](int images, int group) {
    Blob<Dtype> bottom(images, c.channels, c.height, c.width), top(images, 6, c.height, c.width);
    for (Blob<Dtype>* b : {&top, &bottom, &weight}) {
      caffe_set(b->count(), Dtype(5), b->mutable_cpu_data());
      caffe_set(b->count(), Dtype(5), b->mutable_cpu_diff());
    }
    const std::vector<Blob<Dtype>*> bottoms(1, &bottom), tops(1, &top);
    const std::vector<bool> down(1, true);
    Blob<Dtype>* none = NULL;
    const bool any =
        batched_conv_forward_gpu(false, m.Shape(group), weight, none, bottoms, tops) ||
        batched_conv_forward_gpu(true, m.Shape(group), weight, none, tops, bottoms) ||
        batched_conv_backward_gpu(false, m.Shape(group), &weight, none, down, tops, down,
                                  bottoms) ||
        batched_conv_backward_gpu(true, m.Shape(group), &weight, none, down, bottoms, down, tops);
    for (Blob<Dtype>* b : {&top, &bottom, &weight}) {
      for (int k = 0; k < b->count(); ++k) EXPECT_EQ(Dtype(5), b->cpu_data()[k]);
      for (int k = 0; k < b->count(); ++k) EXPECT_EQ(Dtype(5), b->cpu_diff()[k]);
    }
    return any;
  };
  EXPECT_FALSE(decline(1, 1));  // one image: Caffe's loop is one GEMM already
  EXPECT_FALSE(decline(0, 1));  // zero ROIs
  EXPECT_FALSE(decline(3, 2));  // groups
  Blob<int> kernel3d(std::vector<int>(1, 3));
  const ConvLayerShape shape3d = {kernel3d, kernel3d, kernel3d, kernel3d, 1};
  Blob<Dtype> bottom(std::vector<int>(5, 2)), top(std::vector<int>(5, 2));
  EXPECT_FALSE(batched_conv_forward_gpu(false, shape3d, weight, static_cast<Blob<Dtype>*>(NULL),
                                        std::vector<Blob<Dtype>*>(1, &bottom),
                                        std::vector<Blob<Dtype>*>(1, &top)));
}

TYPED_TEST(BatchedConvGPUTest, Tf32IsCloseAndOnlyForFloat) {
  typedef TypeParam Dtype;
  const Case& c = kCases[0];
  const std::vector<int> shape = this->template BottomShape<ConvolutionLayer<Dtype> >(c, 5, 0);
  std::vector<shared_ptr<Blob<Dtype> > > blobs;
  const std::vector<Dtype> fp = this->template Run<ConvolutionLayer<Dtype> >(
      ParamOf(c, 16, true, false), shape, Caffe::GPU, NULL, &blobs);
  batched_conv_options().tf32 = true;
  const std::vector<Dtype> tf32 = this->template Run<ConvolutionLayer<Dtype> >(
      ParamOf(c, 16, true, false), shape, Caffe::GPU, &blobs, NULL);
  if (sizeof(Dtype) == 8) {
    for (size_t k = 0; k < fp.size(); ++k) ASSERT_EQ(fp[k], tf32[k]) << k;
  } else {
    // 27 products of inputs rounded to 10-bit mantissas (relative 2^-11 each), |w x| ~ 1
    this->ExpectNear(fp, tf32, Dtype(2e-2), c.name);
  }
}

TYPED_TEST(BatchedConvGPUTest, ConvolutionGradient) {
  ConvolutionLayer<TypeParam> layer(ParamOf(kCases[0], 3, true, false));
  this->CheckGradient(&layer, std::vector<int>{2, 3, 5, 6});
}

TYPED_TEST(BatchedConvGPUTest, DeconvolutionGradient) {
  DeconvolutionLayer<TypeParam> layer(ParamOf(kCases[1], 2, true, false));
  this->CheckGradient(&layer, std::vector<int>{2, 3, 3, 4});
}

#endif  // !CPU_ONLY

}  // namespace caffe
