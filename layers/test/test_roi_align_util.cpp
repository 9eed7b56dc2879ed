// Pure-function tests of ROIAlign on one map (no layer): bilinear taps at the borders,
// detectron2's own 5x5 arange numbers, sub-pixel boxes, adjointness, and the CUDA twin against
// the CPU code on the same seeded input.
#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/util/roi_align_util.hpp"

#include "caffe/test/test_caffe_main.hpp"

namespace caffe {

template <typename Dtype>
class ROIAlignUtilTest : public ::testing::Test {
 protected:
  static ROIAlignParams<Dtype> Params(Dtype scale, int pooled, int sampling, bool aligned) {
    ROIAlignParams<Dtype> p;
    p.spatial_scale = scale;
    p.pooled_h = p.pooled_w = pooled;
    p.sampling_ratio = sampling;
    p.aligned = aligned;
    return p;
  }
  // 5x5 map with value 5 y + x (detectron2's test_roi_align.py input).
  static std::vector<Dtype> Arange5x5() {
    std::vector<Dtype> m(25);
    for (int i = 0; i < 25; ++i) m[i] = Dtype(i);
    return m;
  }
};
typedef ::testing::Types<float, double> Dtypes;
TYPED_TEST_CASE(ROIAlignUtilTest, Dtypes);

// On a 3x3 map: a sample in [-1, 0) reads the border row/column, one at y = H reads row H - 1,
// one beyond [-1, H] or NaN has no taps.
TYPED_TEST(ROIAlignUtilTest, BilinearTapsAtBorders) {
  typedef TypeParam Dtype;
  int off[4];
  Dtype w[4];
  // Interior: (1.25, 0.5) -> rows 1, 2 weighted .75/.25, columns 0, 1 weighted .5/.5.
  ASSERT_TRUE(roi_align_bilinear_taps(3, 3, Dtype(1.25), Dtype(0.5), off, w));
  const int off_in[4] = {3, 4, 6, 7};
  const double w_in[4] = {.375, .375, .125, .125};
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(off_in[t], off[t]) << t;
    EXPECT_NEAR(w_in[t], w[t], 1e-7) << t;
  }
  // y = -0.5 clamps to row 0 (ly = 0); x = 2.5 is past W - 1: both columns are 2.
  ASSERT_TRUE(roi_align_bilinear_taps(3, 3, Dtype(-0.5), Dtype(2.5), off, w));
  EXPECT_EQ(2, off[0]);
  EXPECT_EQ(2, off[1]);
  EXPECT_NEAR(1, w[0] + w[1], 1e-7);
  EXPECT_NEAR(0, w[2] + w[3], 1e-7);
  // y = H exactly is still in; x = -1 exactly is still in.
  ASSERT_TRUE(roi_align_bilinear_taps(3, 3, Dtype(3), Dtype(-1), off, w));
  EXPECT_EQ(6, off[0]);
  EXPECT_NEAR(1, w[0], 1e-7);
  EXPECT_FALSE(roi_align_bilinear_taps(3, 3, Dtype(-1.01), Dtype(1), off, w));
  EXPECT_FALSE(roi_align_bilinear_taps(3, 3, Dtype(1), Dtype(3.01), off, w));
  EXPECT_FALSE(roi_align_bilinear_taps(3, 3, std::numeric_limits<Dtype>::quiet_NaN(), Dtype(1),
                                       off, w));
}

// detectron2 tests/layers/test_roi_align.py test_forward_output: box (1, 1, 3, 3) on the 5x5
// arange, 4x4 cells, scale 1, adaptive sampling. aligned: cell centres at 0.75 .. 2.25, so
// cell (i, j) = 5 (0.75 + i/2) + 0.75 + j/2; legacy: centres at 1.25 .. 2.75.
TYPED_TEST(ROIAlignUtilTest, Detectron2Arange5x5) {
  typedef TypeParam Dtype;
  const std::vector<Dtype> in = this->Arange5x5();
  const Dtype roi[5] = {0, 1, 1, 3, 3};
  const double aligned[16] = {4.5, 5.0, 5.5, 6.0, 7.0, 7.5, 8.0, 8.5,
                              9.5, 10.0, 10.5, 11.0, 12.0, 12.5, 13.0, 13.5};
  const double legacy[16] = {7.5, 8, 8.5, 9, 10, 10.5, 11, 11.5,
                             12.5, 13, 13.5, 14, 15, 15.5, 16, 16.5};
  Dtype out[16];
  roi_align_forward_cpu(1, roi, 1, 5, 5, in.data(), this->Params(1, 4, 0, true), out);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(aligned[i], out[i], 1e-5) << i;
  roi_align_forward_cpu(1, roi, 1, 5, 5, in.data(), this->Params(1, 4, 0, false), out);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(legacy[i], out[i], 1e-5) << i;
}

// A 0.2 px box: aligned keeps its size (one sample at its centre, 1.6 after the -0.5 shift:
// 5 * 1.6 + 1.6 = 9.6); legacy widens it to 1 px from its corner (centre 2.5: 15).
TYPED_TEST(ROIAlignUtilTest, SubPixelBox) {
  typedef TypeParam Dtype;
  const std::vector<Dtype> in = this->Arange5x5();
  const Dtype roi[5] = {0, 2, 2, Dtype(2.2), Dtype(2.2)};
  Dtype out;
  roi_align_forward_cpu(1, roi, 1, 5, 5, in.data(), this->Params(1, 1, 1, true), &out);
  EXPECT_NEAR(9.6, out, 1e-5);
  roi_align_forward_cpu(1, roi, 1, 5, 5, in.data(), this->Params(1, 1, 1, false), &out);
  EXPECT_NEAR(15, out, 1e-5);
}

// Box (-2, -2, 2, 2), 4x4 cells, 2x2 samples: sample rows -2.25 .. 1.25 step 0.5; the three
// below -1 are 0, -0.75 and -0.25 read row 0. Cell (1, 3): rows -1.25 (0), -0.75 (row 0);
// columns 0.75, 1.25: (0.75 + 1.25) / 4 = 0.5. Cell (3, 3): rows 0.75, 1.25, columns the same:
// 5 * 1 + 1 = 6. The first row and column of cells are all 0.
TYPED_TEST(ROIAlignUtilTest, PartlyOutsideBox) {
  typedef TypeParam Dtype;
  const std::vector<Dtype> in = this->Arange5x5();
  const Dtype roi[5] = {0, -2, -2, 2, 2};
  const double expect[16] = {0, 0, 0, 0, 0, 0, .0625, .5, 0, .3125, .75, 1.625, 0, 2.5, 5.125, 6};
  Dtype out[16];
  roi_align_forward_cpu(1, roi, 1, 5, 5, in.data(), this->Params(1, 4, 2, true), out);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(expect[i], out[i], 1e-5) << i;
}

// <A x, y> == <x, A^T y> for random maps and boxes (inside, across borders, outside, tiny).
// C = 6: the backward's block of 4 channels and 2 left over.
TYPED_TEST(ROIAlignUtilTest, AdjointIdentity) {
  typedef TypeParam Dtype;
  const int N = 2, C = 6, H = 6, W = 5, R = 5, P = 3;
  const Dtype rois[R * 5] = {0, 1, 2, 9, 11,   1, -4, -3, 5, 6,   1, 8, 9, 30, 12,
                             0, 40, 40, 50, 60,   1, 4.2, 4.4, 4.5, 4.6};
  Blob<Dtype> x(N, C, H, W), y(R, C, P, P);
  FillerParameter fp;
  GaussianFiller<Dtype> filler(fp);
  Caffe::set_random_seed(1701);
  filler.Fill(&x);
  filler.Fill(&y);
  for (int sampling = 0; sampling < 3; sampling += 2) {
    for (int aligned = 0; aligned < 2; ++aligned) {
      const ROIAlignParams<Dtype> p = this->Params(Dtype(0.5), P, sampling, aligned);
      std::vector<Dtype> ax(y.count()), aty(x.count(), 0);
      roi_align_forward_cpu(R, rois, C, H, W, x.cpu_data(), p, ax.data());
      roi_align_backward_add_cpu(R, rois, C, H, W, y.cpu_data(), p, aty.data());
      double lhs = 0, rhs = 0;
      for (int i = 0; i < y.count(); ++i) lhs += ax[i] * y.cpu_data()[i];
      for (int i = 0; i < x.count(); ++i) rhs += x.cpu_data()[i] * aty[i];
      EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::abs(lhs))) << sampling << " " << aligned;
    }
  }
}

#ifndef CPU_ONLY
TYPED_TEST(ROIAlignUtilTest, GPUMatchesCPU) {
  typedef TypeParam Dtype;
  const int N = 2, C = 4, H = 9, W = 7, R = 6, P = 4;
  Blob<Dtype> x(N, C, H, W), g(R, C, P, P), rois(R, 5, 1, 1);
  Blob<Dtype> out_cpu(R, C, P, P), out_gpu(R, C, P, P), din_cpu(N, C, H, W), din_gpu(N, C, H, W);
  const Dtype r[R * 5] = {0, 1, 2, 9, 11,   1, -4, -3, 5, 6,   1, 8, 9, 30, 12,
                          0, 40, 40, 50, 60,   1, 4.2, 4.4, 4.5, 4.6,   0, 0, 0, 14, 18};
  caffe_copy(R * 5, r, rois.mutable_cpu_data());
  FillerParameter fp;
  GaussianFiller<Dtype> filler(fp);
  Caffe::set_random_seed(1701);
  filler.Fill(&x);
  filler.Fill(&g);
  for (int sampling = 0; sampling < 3; sampling += 2) {
    const ROIAlignParams<Dtype> p = this->Params(Dtype(0.5), P, sampling, true);
    caffe_set(din_cpu.count(), Dtype(0), din_cpu.mutable_cpu_data());
    caffe_gpu_set(din_gpu.count(), Dtype(0), din_gpu.mutable_gpu_data());
    roi_align_forward_cpu(R, rois.cpu_data(), C, H, W, x.cpu_data(), p, out_cpu.mutable_cpu_data());
    roi_align_backward_add_cpu(R, rois.cpu_data(), C, H, W, g.cpu_data(), p,
                               din_cpu.mutable_cpu_data());
    roi_align_forward_gpu(R, rois.gpu_data(), C, H, W, x.gpu_data(), p, out_gpu.mutable_gpu_data());
    roi_align_backward_add_gpu(R, rois.gpu_data(), C, H, W, g.gpu_data(), p,
                               din_gpu.mutable_gpu_data());
    for (int i = 0; i < out_cpu.count(); ++i) {
      EXPECT_NEAR(out_cpu.cpu_data()[i], out_gpu.cpu_data()[i], 1e-5) << i;
    }
    for (int i = 0; i < din_cpu.count(); ++i) {
      EXPECT_NEAR(din_cpu.cpu_data()[i], din_gpu.cpu_data()[i], 1e-5) << i;
    }
  }
}
#endif

}  // namespace caffe
