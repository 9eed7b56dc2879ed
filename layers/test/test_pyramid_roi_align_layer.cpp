#include <cmath>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/pyramid_roi_align_layer.hpp"
#include "caffe/util/math_functions.hpp"

#include "caffe/test/test_caffe_main.hpp"
#include "caffe/test/test_gradient_check_util.hpp"

namespace caffe {

// A 32x32 image at first_stride 4: P1 8x8, P2 4x4, P3 2x2; N = 2 images, C = 2 channels.
// pooled_size 1 keeps the tops tiny (R1 4x4, R2 2x2, R3 1x1) so exhaustive checks are fast.
template <typename TypeParam>
class PyramidROIAlignLayerTest : public MultiDeviceTest<TypeParam> {
  typedef typename TypeParam::Dtype Dtype;

 protected:
  PyramidROIAlignLayerTest()
      : p1_(new Blob<Dtype>(2, 2, 8, 8)), p2_(new Blob<Dtype>(2, 2, 4, 4)),
        p3_(new Blob<Dtype>(2, 2, 2, 2)), rois_(new Blob<Dtype>()),
        r1_(new Blob<Dtype>()), r2_(new Blob<Dtype>()), r3_(new Blob<Dtype>()) {
    Caffe::set_random_seed(1701);
    FillerParameter fp;
    GaussianFiller<Dtype> filler(fp);
    filler.Fill(p1_);
    filler.Fill(p2_);
    filler.Fill(p3_);
    // (batch, x1, y1, x2, y2) in image pixels.
    const Dtype rois[5 * 5] = {
        0, 0, 0, 32, 12,            // on the map border: full width, along the top edge
        1, -6, 20, 10, 40,          // partly outside the image (left and bottom)
        0, 13.3, 9.1, 14.9, 10.2,   // smaller than a P1 cell (4 px)
        1, 3, 5, 27, 22,            // in the second image
        0, 5.5, 2.25, 30.5, 29};
    SetROIs(5, rois);
    bottom_ = {p1_, p2_, p3_, rois_};
    top_ = {r1_, r2_, r3_};
  }
  virtual ~PyramidROIAlignLayerTest() {
    delete p1_; delete p2_; delete p3_; delete rois_; delete r1_; delete r2_; delete r3_;
  }

  void SetROIs(int n, const Dtype* rois) {
    rois_->Reshape(vector<int>{n, 5});
    caffe_copy(5 * n, rois, rois_->mutable_cpu_data());
  }

  static LayerParameter Param(int pooled, float stride, int sampling, bool aligned) {
    LayerParameter param;
    param.set_name("pyr");
    PyramidROIAlignParameter* p = param.mutable_pyramid_roi_align_param();
    p->set_pooled_size(pooled);
    p->set_first_stride(stride);
    p->set_sampling_ratio(sampling);
    p->set_aligned(aligned);
    return param;
  }

  void CheckAllGradients(const LayerParameter& param) {
    PyramidROIAlignLayer<Dtype> layer(param);
    GradientChecker<Dtype> checker(1e-2, 1e-3);
    for (int i = 0; i < 3; ++i) {
      checker.CheckGradientExhaustive(&layer, bottom_, top_, i);
    }
  }

  Blob<Dtype>* const p1_;
  Blob<Dtype>* const p2_;
  Blob<Dtype>* const p3_;
  Blob<Dtype>* const rois_;
  Blob<Dtype>* const r1_;
  Blob<Dtype>* const r2_;
  Blob<Dtype>* const r3_;
  vector<Blob<Dtype>*> bottom_, top_;
};

TYPED_TEST_CASE(PyramidROIAlignLayerTest, TestDtypesAndDevices);

TYPED_TEST(PyramidROIAlignLayerTest, TestSetUp) {
  typedef typename TypeParam::Dtype Dtype;
  {
    PyramidROIAlignLayer<Dtype> layer(this->Param(1, 4, 2, true));
    layer.SetUp(this->bottom_, this->top_);
    EXPECT_EQ((vector<int>{5, 2, 4, 4}), this->r1_->shape());
    EXPECT_EQ((vector<int>{5, 2, 2, 2}), this->r2_->shape());
    EXPECT_EQ((vector<int>{5, 2, 1, 1}), this->r3_->shape());
  }
  {
    LayerParameter param;  // the defaults: p = 7, so 28, 14, 7
    PyramidROIAlignLayer<Dtype> layer(param);
    layer.SetUp(this->bottom_, this->top_);
    EXPECT_EQ((vector<int>{5, 2, 28, 28}), this->r1_->shape());
    EXPECT_EQ((vector<int>{5, 2, 14, 14}), this->r2_->shape());
    EXPECT_EQ((vector<int>{5, 2, 7, 7}), this->r3_->shape());
  }
  {  // odd map sizes (a 40 px image at stride 8: 5x5, 3x3, 2x2) are accepted
    this->p1_->Reshape(2, 2, 5, 5);
    this->p2_->Reshape(2, 2, 3, 3);
    this->p3_->Reshape(2, 2, 2, 2);
    PyramidROIAlignLayer<Dtype> layer(this->Param(3, 8, 0, false));
    layer.SetUp(this->bottom_, this->top_);
    EXPECT_EQ((vector<int>{5, 2, 12, 12}), this->r1_->shape());
    EXPECT_EQ((vector<int>{5, 2, 3, 3}), this->r3_->shape());
  }
}

// first_stride 1 (scales 1, 1/2, 1/4), p = 1, 2x2 samples. Image 0 is an arange per level,
// value w y + x on a w x w map (5x5, 3x3, 2x2); image 1 is the same + 100. The arange is linear,
// so a cell whose samples all lie inside the map equals the value at the samples' centroid.
// ROI (b, 1, 1, 3, 3):
//   P1: box (0.5 .. 2.5) after the -0.5 shift, cell centres 0.75 .. 2.25: detectron2's table.
//   P2: box (0 .. 1), cell centres 0.25, 0.75: 3 y + x.
//   P3: box (-0.25 .. 0.25), samples -0.125 (clamped to 0) and 0.125: 2 (0.0625) + 0.0625.
// ROI (0, -2, -2, 2, 2) on P1 is roi_align_util's PartlyOutsideBox. On P2, box (-1.5 .. 0.5),
// sample rows and columns -1.25 (0), -0.75 and -0.25 (clamped to 0), 0.25: cell (1, 1) averages
// 3 y + x over y, x in {0, 0.25}: 0.5; cell (0, 1) has one live row: (0 + 0.25) / 4.
// On P3 its samples are at -0.75 and -0.25, both clamped to 0: the value at (0, 0).
TYPED_TEST(PyramidROIAlignLayerTest, TestForwardHandComputed) {
  typedef typename TypeParam::Dtype Dtype;
  Blob<Dtype>* levels[3] = {this->p1_, this->p2_, this->p3_};
  const int side[3] = {5, 3, 2};
  for (int k = 0; k < 3; ++k) {
    const int n = side[k] * side[k];
    levels[k]->Reshape(2, 1, side[k], side[k]);
    Dtype* d = levels[k]->mutable_cpu_data();
    for (int i = 0; i < n; ++i) {
      d[i] = Dtype(i);
      d[n + i] = Dtype(i + 100);
    }
  }
  const Dtype rois[3 * 5] = {0, 1, 1, 3, 3,   1, 1, 1, 3, 3,   0, -2, -2, 2, 2};
  this->SetROIs(3, rois);
  PyramidROIAlignLayer<Dtype> layer(this->Param(1, 1, 2, true));
  layer.SetUp(this->bottom_, this->top_);
  layer.Forward(this->bottom_, this->top_);
  const double r1[3][16] = {
      {4.5, 5.0, 5.5, 6.0, 7.0, 7.5, 8.0, 8.5, 9.5, 10.0, 10.5, 11.0, 12.0, 12.5, 13.0, 13.5},
      {104.5, 105.0, 105.5, 106.0, 107.0, 107.5, 108.0, 108.5,
       109.5, 110.0, 110.5, 111.0, 112.0, 112.5, 113.0, 113.5},
      {0, 0, 0, 0, 0, 0, .0625, .5, 0, .3125, .75, 1.625, 0, 2.5, 5.125, 6}};
  const double r2[3][4] = {{1, 1.5, 2.5, 3}, {101, 101.5, 102.5, 103}, {0, .0625, .1875, .5}};
  const double r3[3] = {0.1875, 100.1875, 0};
  for (int r = 0; r < 3; ++r) {
    for (int i = 0; i < 16; ++i) {
      EXPECT_NEAR(r1[r][i], this->r1_->cpu_data()[16 * r + i], 1e-4) << "R1 roi " << r << " " << i;
    }
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(r2[r][i], this->r2_->cpu_data()[4 * r + i], 1e-4) << "R2 roi " << r << " " << i;
    }
    EXPECT_NEAR(r3[r], this->r3_->cpu_data()[r], 1e-4) << "R3 roi " << r;
  }
}

// aligned: false is the legacy op: detectron2's "old" numbers for box (1, 1, 3, 3).
TYPED_TEST(PyramidROIAlignLayerTest, TestForwardLegacyUnaligned) {
  typedef typename TypeParam::Dtype Dtype;
  this->p1_->Reshape(1, 1, 5, 5);
  this->p2_->Reshape(1, 1, 3, 3);
  this->p3_->Reshape(1, 1, 2, 2);
  for (int i = 0; i < 25; ++i) this->p1_->mutable_cpu_data()[i] = Dtype(i);
  const Dtype roi[5] = {0, 1, 1, 3, 3};
  this->SetROIs(1, roi);
  PyramidROIAlignLayer<Dtype> layer(this->Param(1, 1, 0, false));
  layer.SetUp(this->bottom_, this->top_);
  layer.Forward(this->bottom_, this->top_);
  const double expect[16] = {7.5, 8, 8.5, 9, 10, 10.5, 11, 11.5,
                             12.5, 13, 13.5, 14, 15, 15.5, 16, 16.5};
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(expect[i], this->r1_->cpu_data()[i], 1e-4) << i;
}

TYPED_TEST(PyramidROIAlignLayerTest, TestGradient) {
  this->CheckAllGradients(this->Param(1, 4, 2, true));
}

// Adaptive sampling and the legacy (unaligned, >= 1 px) boxes.
TYPED_TEST(PyramidROIAlignLayerTest, TestGradientAdaptiveLegacy) {
  this->CheckAllGradients(this->Param(1, 4, 0, false));
}

// Zero ROIs: empty tops, forward and backward touch no top memory, bottom diffs are zero.
TYPED_TEST(PyramidROIAlignLayerTest, TestZeroROIs) {
  typedef typename TypeParam::Dtype Dtype;
  this->rois_->Reshape(vector<int>{0, 5});
  PyramidROIAlignLayer<Dtype> layer(this->Param(2, 4, 2, true));
  layer.SetUp(this->bottom_, this->top_);
  EXPECT_EQ((vector<int>{0, 2, 8, 8}), this->r1_->shape());
  EXPECT_EQ((vector<int>{0, 2, 4, 4}), this->r2_->shape());
  EXPECT_EQ((vector<int>{0, 2, 2, 2}), this->r3_->shape());
  layer.Forward(this->bottom_, this->top_);
  for (int k = 0; k < 3; ++k) {
    caffe_set(this->bottom_[k]->count(), Dtype(7), this->bottom_[k]->mutable_cpu_diff());
  }
  layer.Backward(this->top_, vector<bool>{true, true, true, false}, this->bottom_);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(Dtype(0), this->bottom_[k]->asum_diff()) << "P" << k + 1;
  }
}

// An ROI far outside the image pools zeros on every level and sends no gradient back; the
// boxes themselves get a zero diff when asked for one.
TYPED_TEST(PyramidROIAlignLayerTest, TestROIOutsideImage) {
  typedef typename TypeParam::Dtype Dtype;
  const Dtype rois[2 * 5] = {1, 100, 90, 140, 130,   0, 3, 5, 27, 22};
  this->SetROIs(2, rois);
  PyramidROIAlignLayer<Dtype> layer(this->Param(1, 4, 2, true));
  layer.SetUp(this->bottom_, this->top_);
  layer.Forward(this->bottom_, this->top_);
  for (int k = 0; k < 3; ++k) {
    const Blob<Dtype>& t = *this->top_[k];
    const int per_roi = t.count(1);
    Dtype inside = 0;
    for (int i = 0; i < per_roi; ++i) {
      EXPECT_EQ(Dtype(0), t.cpu_data()[i]) << "R" << k + 1 << " " << i;
      inside += std::abs(t.cpu_data()[per_roi + i]);
    }
    EXPECT_GT(inside, 0) << "R" << k + 1;  // the other ROI is really pooled
    // Gradient only on the outside ROI's cells.
    Dtype* diff = this->top_[k]->mutable_cpu_diff();
    caffe_set(t.count(), Dtype(0), diff);
    caffe_set(per_roi, Dtype(1), diff);
  }
  caffe_set(10, Dtype(3), this->rois_->mutable_cpu_diff());
  layer.Backward(this->top_, vector<bool>(4, true), this->bottom_);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(Dtype(0), this->bottom_[k]->asum_diff()) << "P" << k + 1;
  }
  EXPECT_EQ(Dtype(0), this->rois_->asum_diff());
}

typedef PyramidROIAlignLayerTest<CPUDevice<float> > PyramidROIAlignLayerDeathTest;

TEST_F(PyramidROIAlignLayerDeathTest, RejectsBatchIndexOutOfRange) {
  this->rois_->mutable_cpu_data()[5] = 2;  // row 1, N = 2
  PyramidROIAlignLayer<float> layer(this->Param(1, 4, 2, true));
  layer.SetUp(this->bottom_, this->top_);
  EXPECT_DEATH(layer.Forward(this->bottom_, this->top_),
               "pyr: rois row 1 has batch index 2, must be an integer in \\[0, 2\\)");
}

TEST_F(PyramidROIAlignLayerDeathTest, RejectsFractionalBatchIndex) {
  this->rois_->mutable_cpu_data()[10] = 0.5;  // row 2
  PyramidROIAlignLayer<float> layer(this->Param(1, 4, 2, true));
  layer.SetUp(this->bottom_, this->top_);
  EXPECT_DEATH(layer.Forward(this->bottom_, this->top_), "pyr: rois row 2 has batch index 0.5");
}

TEST_F(PyramidROIAlignLayerDeathTest, RejectsInvertedBoxWhenAligned) {
  this->rois_->mutable_cpu_data()[18] = 2;  // row 3: x2 = 2 < x1 = 3
  PyramidROIAlignLayer<float> layer(this->Param(1, 4, 2, true));
  layer.SetUp(this->bottom_, this->top_);
  EXPECT_DEATH(layer.Forward(this->bottom_, this->top_),
               "pyr: rois row 3 is inverted \\(x1, y1, x2, y2\\) = \\(3, 5, 2, 22\\)");
}

TEST_F(PyramidROIAlignLayerDeathTest, RejectsChannelMismatch) {
  this->p3_->Reshape(2, 3, 2, 2);
  PyramidROIAlignLayer<float> layer(this->Param(1, 4, 2, true));
  EXPECT_DEATH(layer.SetUp(this->bottom_, this->top_),
               "pyr: P1, P2, P3 must agree in batch size and channels, got "
               "2 2 8 8 \\(256\\), 2 2 4 4 \\(64\\), 2 3 2 2 \\(24\\)");
}

TEST_F(PyramidROIAlignLayerDeathTest, RejectsLevelsOutOfOrder) {
  this->bottom_ = {this->p3_, this->p2_, this->p1_, this->rois_};
  PyramidROIAlignLayer<float> layer(this->Param(1, 4, 2, true));
  EXPECT_DEATH(layer.SetUp(this->bottom_, this->top_),
               "pyr: each level must be half the previous one .*got 2x2, 4x4, 8x8");
}

#ifndef CPU_ONLY
// The CUDA forward and backward against the CPU code on the same seeded input.
template <typename Dtype>
class PyramidROIAlignGPUTest : public PyramidROIAlignLayerTest<CPUDevice<Dtype> > {};
typedef ::testing::Types<float, double> GPUDtypes;
TYPED_TEST_CASE(PyramidROIAlignGPUTest, GPUDtypes);

TYPED_TEST(PyramidROIAlignGPUTest, GPUMatchesCPU) {
  typedef TypeParam Dtype;
  for (int sampling = 0; sampling < 3; sampling += 2) {
    const LayerParameter param = this->Param(2, 4, sampling, true);
    vector<shared_ptr<Blob<Dtype> > > out[2], grad[2];
    for (int mode = 0; mode < 2; ++mode) {
      Caffe::set_mode(mode == 0 ? Caffe::CPU : Caffe::GPU);
      PyramidROIAlignLayer<Dtype> layer(param);
      layer.SetUp(this->bottom_, this->top_);
      layer.Forward(this->bottom_, this->top_);
      Caffe::set_random_seed(1702);
      FillerParameter fp;
      GaussianFiller<Dtype> filler(fp);
      for (int k = 0; k < 3; ++k) {
        out[mode].push_back(shared_ptr<Blob<Dtype> >(new Blob<Dtype>()));
        out[mode][k]->CopyFrom(*this->top_[k], false, true);
        filler.Fill(this->top_[k]);  // same seed: the same top diff in both modes
        caffe_copy(this->top_[k]->count(), this->top_[k]->cpu_data(),
                   this->top_[k]->mutable_cpu_diff());
      }
      layer.Backward(this->top_, vector<bool>{true, true, true, false}, this->bottom_);
      for (int k = 0; k < 3; ++k) {
        grad[mode].push_back(shared_ptr<Blob<Dtype> >(new Blob<Dtype>()));
        grad[mode][k]->CopyFrom(*this->bottom_[k], true, true);
      }
    }
    Caffe::set_mode(Caffe::CPU);
    for (int k = 0; k < 3; ++k) {
      for (int i = 0; i < out[0][k]->count(); ++i) {
        EXPECT_NEAR(out[0][k]->cpu_data()[i], out[1][k]->cpu_data()[i], 1e-5) << k << " " << i;
      }
      for (int i = 0; i < grad[0][k]->count(); ++i) {
        EXPECT_NEAR(grad[0][k]->cpu_diff()[i], grad[1][k]->cpu_diff()[i], 1e-5) << k << " " << i;
      }
    }
  }
}
#endif

}  // namespace caffe
