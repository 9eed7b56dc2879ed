// Pure-function tests of the bilinear x2 upsampling (no layer): tap table, adjointness, and the
// CUDA twin against the CPU code on the same seeded input.
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/util/bilinear_up2.hpp"

#include "caffe/test/test_caffe_main.hpp"

namespace caffe {

template <typename Dtype>
class BilinearUp2Test : public ::testing::Test {};
typedef ::testing::Types<float, double> Dtypes;
TYPED_TEST_CASE(BilinearUp2Test, Dtypes);

// Half-pixel x2 on a side of 3: outputs sample -0.25 (clamped to 0), 0.25, ..., 1.75, 2.25
// (past the end: both taps clamp to 2, so the weights still sum to 1 on pixel 2).
TYPED_TEST(BilinearUp2Test, TapsMatchHalfPixelTable) {
  const int expect_i0[6] = {0, 0, 0, 1, 1, 2};
  const int expect_i1[6] = {1, 1, 1, 2, 2, 2};
  const double expect_f[6] = {0, 0.25, 0.75, 0.25, 0.75, 0.25};
  for (int o = 0; o < 6; ++o) {
    int i0, i1;
    TypeParam f;
    bilinear_up2_taps(o, 3, &i0, &i1, &f);
    EXPECT_EQ(expect_i0[o], i0) << "o=" << o;
    EXPECT_EQ(expect_i1[o], i1) << "o=" << o;
    EXPECT_NEAR(expect_f[o], f, 1e-7) << "o=" << o;
  }
}

// 1x1 input: every output equals it (both taps clamp to the one pixel).
TYPED_TEST(BilinearUp2Test, SinglePixelReplicates) {
  TypeParam in = 3.5, out[4] = {1, 1, 1, 1};
  bilinear_up2_add_cpu(1, 1, 1, &in, out);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(TypeParam(4.5), out[i]);
}

// <up(x), y> == <x, up^T(y)> for random x, y: the backward is the true adjoint.
TYPED_TEST(BilinearUp2Test, AdjointIdentity) {
  const int planes = 3, H = 5, W = 4;
  Blob<TypeParam> x(planes, 1, H, W), y(planes, 1, 2 * H, 2 * W);
  FillerParameter fp;
  GaussianFiller<TypeParam> filler(fp);
  Caffe::set_random_seed(1701);
  filler.Fill(&x);
  filler.Fill(&y);
  std::vector<TypeParam> ux(y.count(), 0), uty(x.count(), 0);
  bilinear_up2_add_cpu(planes, H, W, x.cpu_data(), ux.data());
  bilinear_up2_adjoint_add_cpu(planes, H, W, y.cpu_data(), uty.data());
  double lhs = 0, rhs = 0;
  for (int i = 0; i < y.count(); ++i) lhs += ux[i] * y.cpu_data()[i];
  for (int i = 0; i < x.count(); ++i) rhs += x.cpu_data()[i] * uty[i];
  EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::abs(lhs)));
}

#ifndef CPU_ONLY
TYPED_TEST(BilinearUp2Test, GPUMatchesCPU) {
  const int planes = 4, H = 7, W = 6;
  Blob<TypeParam> x(planes, 1, H, W), y(planes, 1, 2 * H, 2 * W);
  Blob<TypeParam> up_cpu(planes, 1, 2 * H, 2 * W), up_gpu(planes, 1, 2 * H, 2 * W);
  Blob<TypeParam> adj_cpu(planes, 1, H, W), adj_gpu(planes, 1, H, W);
  FillerParameter fp;
  GaussianFiller<TypeParam> filler(fp);
  Caffe::set_random_seed(1701);
  filler.Fill(&x);
  filler.Fill(&y);
  caffe_set(up_cpu.count(), TypeParam(0), up_cpu.mutable_cpu_data());
  caffe_set(adj_cpu.count(), TypeParam(0), adj_cpu.mutable_cpu_data());
  caffe_gpu_set(up_gpu.count(), TypeParam(0), up_gpu.mutable_gpu_data());
  caffe_gpu_set(adj_gpu.count(), TypeParam(0), adj_gpu.mutable_gpu_data());
  bilinear_up2_add_cpu(planes, H, W, x.cpu_data(), up_cpu.mutable_cpu_data());
  bilinear_up2_adjoint_add_cpu(planes, H, W, y.cpu_data(), adj_cpu.mutable_cpu_data());
  bilinear_up2_add_gpu(planes, H, W, x.gpu_data(), up_gpu.mutable_gpu_data());
  bilinear_up2_adjoint_add_gpu(planes, H, W, y.gpu_data(), adj_gpu.mutable_gpu_data());
  for (int i = 0; i < up_cpu.count(); ++i) {
    EXPECT_NEAR(up_cpu.cpu_data()[i], up_gpu.cpu_data()[i], 1e-5);
  }
  for (int i = 0; i < adj_cpu.count(); ++i) {
    EXPECT_NEAR(adj_cpu.cpu_data()[i], adj_gpu.cpu_data()[i], 1e-5);
  }
}
#endif

}  // namespace caffe
