// im2col_rows_cpu / col2im_rows_cpu (the overlay's fast paths inside Caffe's im2col_cpu and
// col2im_cpu) against the definition written out element by element: every kernel size 1-5,
// pads 0 to beyond the kernel, stride_h 1-3, dilation_h 1-2, planes narrower than the shift,
// one row or one column; and non-overlapping windows (kernel == stride). Bit-exact: both only
// move values, and col2im adds in the same order.
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/common.hpp"
#include "caffe/util/im2col_rows.hpp"

#include "caffe/test/test_caffe_main.hpp"

namespace caffe {

namespace {

struct Geometry {
  int channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, dilation_h;
  int stride_w = 1;
  int out_h() const {
    return (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  }
  int out_w() const { return (width + 2 * pad_w - kernel_w) / stride_w + 1; }
};

// Calls visit(k, i) for every column element k in Caffe's order, column (c, kr, kc) row-major
// over (out_h, out_w), with i the input element it reads, input (y stride_h - pad_h + kr
// dilation_h, x - pad_w + kc) of channel c, or -1 where that is outside (a zero).
template <typename Visit>
void ForEachColumnElement(const Geometry& g, Visit visit) {
  const int oh = g.out_h(), ow = g.out_w();
  int k = 0;
  for (int c = 0; c < g.channels; ++c)
    for (int kr = 0; kr < g.kernel_h; ++kr)
      for (int kc = 0; kc < g.kernel_w; ++kc)
        for (int y = 0; y < oh; ++y)
          for (int x = 0; x < ow; ++x, ++k) {
            const int r = y * g.stride_h - g.pad_h + kr * g.dilation_h;
            const int s = x * g.stride_w - g.pad_w + kc;
            const bool inside = r >= 0 && r < g.height && s >= 0 && s < g.width;
            visit(k, inside ? (c * g.height + r) * g.width + s : -1);
          }
}

// The definition of im2col, element by element.
template <typename Dtype>
std::vector<Dtype> NaiveIm2col(const Geometry& g, const std::vector<Dtype>& im) {
  std::vector<Dtype> col(g.channels * g.kernel_h * g.kernel_w * g.out_h() * g.out_w());
  ForEachColumnElement(g, [&](int k, int i) { col[k] = i >= 0 ? im[i] : Dtype(0); });
  return col;
}

// The adjoint, adding in the same order as the definition's loops.
template <typename Dtype>
std::vector<Dtype> NaiveCol2im(const Geometry& g, const std::vector<Dtype>& col) {
  std::vector<Dtype> im(g.channels * g.height * g.width, Dtype(0));
  ForEachColumnElement(g, [&](int k, int i) { if (i >= 0) im[i] += col[k]; });
  return im;
}

}  // namespace

template <typename Dtype>
class Im2colRowsTest : public ::testing::Test {
 protected:
  // Distinct, non-integer values, so any misplaced element shows.
  static std::vector<Dtype> Values(int n, Dtype offset) {
    std::vector<Dtype> v(n);
    for (int i = 0; i < n; ++i) v[i] = offset + Dtype(0.37) * i - Dtype(0.001) * i * i;
    return v;
  }
  static void Check(const Geometry& g) {
    SCOPED_TRACE(::testing::Message() << g.channels << " x " << g.height << " x " << g.width
                 << " kernel " << g.kernel_h << "x" << g.kernel_w << " pad " << g.pad_h << ","
                 << g.pad_w << " stride_h " << g.stride_h << " dilation_h " << g.dilation_h);
    const std::vector<Dtype> im = Values(g.channels * g.height * g.width, Dtype(1.5));
    const std::vector<Dtype> expect_col = NaiveIm2col(g, im);
    // Filled with a marker first: every element must be written.
    std::vector<Dtype> col(expect_col.size(), Dtype(-777));
    ASSERT_TRUE(im2col_rows_cpu(&im[0], g.channels, g.height, g.width, g.kernel_h, g.kernel_w,
                                g.pad_h, g.pad_w, g.stride_h, g.stride_w, g.dilation_h, 1,
                                &col[0]));
    for (size_t k = 0; k < col.size(); ++k) ASSERT_EQ(expect_col[k], col[k]) << "col " << k;

    const std::vector<Dtype> dcol = Values(expect_col.size(), Dtype(-2.25));
    const std::vector<Dtype> expect_im = NaiveCol2im(g, dcol);
    std::vector<Dtype> back(im.size(), Dtype(-777));
    ASSERT_TRUE(col2im_rows_cpu(&dcol[0], g.channels, g.height, g.width, g.kernel_h, g.kernel_w,
                                g.pad_h, g.pad_w, g.stride_h, g.stride_w, g.dilation_h, 1,
                                &back[0]));
    for (size_t k = 0; k < back.size(); ++k) ASSERT_EQ(expect_im[k], back[k]) << "im " << k;
  }
};
typedef ::testing::Types<float, double> Dtypes;
TYPED_TEST_CASE(Im2colRowsTest, Dtypes);

// "Same" padding at stride_h 1 takes the whole-block copy; the rest the row by row one.
TYPED_TEST(Im2colRowsTest, MatchesDefinition) {
  const int sizes[][2] = {{1, 1}, {1, 7}, {6, 1}, {5, 4}, {7, 9}, {28, 28}};
  for (const auto& size : sizes) {
    for (int k = 1; k <= 5; ++k) {
      for (int pad = 0; pad <= k; ++pad) {
        for (int stride_h = 1; stride_h <= 3; ++stride_h) {
          for (int dilation_h = 1; dilation_h <= 2; ++dilation_h) {
            const Geometry g = {2, size[0], size[1], k, k, pad, pad, stride_h, dilation_h};
            if (g.out_h() <= 0 || g.out_w() <= 0) continue;
            this->Check(g);
          }
        }
      }
    }
  }
  // Unequal kernel and pads: a wide kernel whose shift exceeds a narrow plane.
  this->Check(Geometry{3, 4, 2, 1, 5, 0, 2, 1, 1});
  this->Check(Geometry{3, 5, 3, 3, 7, 1, 3, 1, 1});
  this->Check(Geometry{1, 3, 3, 2, 3, 2, 0, 2, 1});
}

// Kernel == stride, no pad (the tail's 2x2 stride-2 deconvolution): windows that do not overlap,
// with planes whose sides are not multiples of the kernel (pixels in no window).
TYPED_TEST(Im2colRowsTest, MatchesDefinitionNonOverlapping) {
  const int sizes[][2] = {{2, 2}, {5, 7}, {28, 28}, {3, 8}, {9, 4}};
  const int kernels[][2] = {{2, 2}, {3, 2}, {2, 3}, {1, 3}, {3, 3}};
  for (const auto& size : sizes) {
    for (const auto& k : kernels) {
      Geometry g = {2, size[0], size[1], k[0], k[1], 0, 0, k[0], 1};
      g.stride_w = k[1];
      if (size[0] < k[0] || size[1] < k[1]) continue;  // no window fits
      this->Check(g);
    }
  }
}

// As the stock col2im (a zeroed image, then +=), a -0 in the columns gives +0 in the image.
TYPED_TEST(Im2colRowsTest, NonOverlappingCol2imZeroSign) {
  typedef TypeParam Dtype;
  std::vector<Dtype> col(3 * 4 * 2 * 2, -Dtype(0)), im(3 * 4 * 4, Dtype(-777));
  ASSERT_TRUE(col2im_rows_cpu(&col[0], 3, 4, 4, 2, 2, 0, 0, 2, 2, 1, 1, &im[0]));
  for (Dtype v : im) EXPECT_FALSE(std::signbit(v));
}

TYPED_TEST(Im2colRowsTest, DeclinesOtherStridesAndDilations) {
  typedef TypeParam Dtype;
  std::vector<Dtype> im(2 * 5 * 5, Dtype(1)), col(2 * 9 * 25, Dtype(-777));
  EXPECT_FALSE(im2col_rows_cpu(&im[0], 2, 5, 5, 3, 3, 1, 1, 1, 2, 1, 1, &col[0]));
  EXPECT_FALSE(im2col_rows_cpu(&im[0], 2, 5, 5, 3, 3, 2, 2, 1, 1, 1, 2, &col[0]));
  EXPECT_FALSE(col2im_rows_cpu(&col[0], 2, 5, 5, 3, 3, 1, 1, 1, 2, 1, 1, &im[0]));
  for (Dtype v : col) EXPECT_EQ(Dtype(-777), v);  // declined: nothing written
  for (Dtype v : im) EXPECT_EQ(Dtype(1), v);
}

}  // namespace caffe
