#include <cmath>

#include "gtest/gtest.h"

#include "caffe/util/iam_box_util.hpp"

#include "caffe/test/test_caffe_main.hpp"

namespace caffe {

template <typename Dtype>
class IAMBoxUtilTest : public ::testing::Test {};

TYPED_TEST_CASE(IAMBoxUtilTest, TestDtypes);

TYPED_TEST(IAMBoxUtilTest, TestSigmoidKnownValues) {
  typedef TypeParam Dtype;
  EXPECT_EQ(Dtype(0.5), iam_sigmoid(Dtype(0)));
  EXPECT_NEAR(0.75, iam_sigmoid(Dtype(std::log(3.0))), 1e-7);
  EXPECT_NEAR(0.25, iam_sigmoid(Dtype(-std::log(3.0))), 1e-7);
  EXPECT_NEAR(4.5397868702434395e-05, iam_sigmoid(Dtype(-10)), 1e-11);
}

// Intervals in an extent of 10, min_size 4.
TYPED_TEST(IAMBoxUtilTest, TestMinSide) {
  typedef TypeParam Dtype;
  Dtype lo = 2, hi = 7;  // long enough: unchanged
  iam_min_side(Dtype(10), Dtype(4), &lo, &hi);
  EXPECT_EQ(2, lo); EXPECT_EQ(7, hi);
  lo = 5; hi = 5;  // a point in the middle grows about it
  iam_min_side(Dtype(10), Dtype(4), &lo, &hi);
  EXPECT_EQ(3, lo); EXPECT_EQ(7, hi);
  lo = 0.5; hi = 1.5;  // near the left border: grown to [-0.5, 3.5], shifted to [0, 4]
  iam_min_side(Dtype(10), Dtype(4), &lo, &hi);
  EXPECT_EQ(0, lo); EXPECT_EQ(4, hi);
  lo = 9; hi = 10;  // touching the right border: shifted to [6, 10]
  iam_min_side(Dtype(10), Dtype(4), &lo, &hi);
  EXPECT_EQ(6, lo); EXPECT_EQ(10, hi);
  lo = 1; hi = 2;  // extent below min_size: the whole extent
  iam_min_side(Dtype(3), Dtype(4), &lo, &hi);
  EXPECT_EQ(0, lo); EXPECT_EQ(3, hi);
  lo = 1; hi = 2;  // extent equal to min_size: the whole extent too
  iam_min_side(Dtype(4), Dtype(4), &lo, &hi);
  EXPECT_EQ(0, lo); EXPECT_EQ(4, hi);
  lo = 5; hi = 5;  // min_size 0 leaves a degenerate interval alone
  iam_min_side(Dtype(10), Dtype(0), &lo, &hi);
  EXPECT_EQ(5, lo); EXPECT_EQ(5, hi);
}

// Fractions outside [0, 1] (not reachable through a sigmoid, but the contract) are clipped;
// crossed edges are swapped before clipping.
TYPED_TEST(IAMBoxUtilTest, TestBoxSideSwapAndClip) {
  typedef TypeParam Dtype;
  Dtype lo, hi;
  iam_box_side(Dtype(0.75), Dtype(0.25), Dtype(100), Dtype(1), &lo, &hi);  // crossed
  EXPECT_EQ(25, lo); EXPECT_EQ(75, hi);
  iam_box_side(Dtype(-0.1), Dtype(1.25), Dtype(100), Dtype(1), &lo, &hi);  // both outside
  EXPECT_EQ(0, lo); EXPECT_EQ(100, hi);
  iam_box_side(Dtype(1.5), Dtype(0.5), Dtype(100), Dtype(1), &lo, &hi);  // crossed and outside
  EXPECT_EQ(50, lo); EXPECT_EQ(100, hi);
  iam_box_side(Dtype(1.5), Dtype(1.25), Dtype(100), Dtype(4), &lo, &hi);  // clipped to a point
  EXPECT_EQ(96, lo); EXPECT_EQ(100, hi);                                  // on the border, grown
}

TYPED_TEST(IAMBoxUtilTest, TestBoxFromEdgesAxes) {
  typedef TypeParam Dtype;
  Dtype box[4];
  // t = 0.25, l = 0.5, b = 0.75, r = 1 in a 400 x 200 image.
  iam_box_from_edges(Dtype(0.25), Dtype(0.5), Dtype(0.75), Dtype(1), Dtype(400), Dtype(200),
                     Dtype(1), box);
  EXPECT_EQ(200, box[0]);  // x1 = l W
  EXPECT_EQ(50, box[1]);   // y1 = t H
  EXPECT_EQ(400, box[2]);  // x2 = r W
  EXPECT_EQ(150, box[3]);  // y2 = b H
}

// One slot stored with stride 3 (as in the (N, 4 + C, H, W) layout), junk in between.
TYPED_TEST(IAMBoxUtilTest, TestDecodeSlotStridedAndTies) {
  typedef TypeParam Dtype;
  const Dtype L3 = std::log(3.0);
  const Dtype vals[7] = {-L3, 0, L3, L3, 2, 2, -1};  // t, l, b, r, 3 logits (a tie at 2)
  Dtype v[21];
  for (int i = 0; i < 21; ++i) v[i] = 99;
  for (int i = 0; i < 7; ++i) v[i * 3] = vals[i];
  Dtype box[4], score;
  int label;
  iam_decode_slot(v, 3, 3, Dtype(400), Dtype(200), Dtype(1), box, &score, &label);
  EXPECT_NEAR(200, box[0], 1e-4);
  EXPECT_NEAR(50, box[1], 1e-4);
  EXPECT_NEAR(300, box[2], 1e-4);
  EXPECT_NEAR(150, box[3], 1e-4);
  EXPECT_EQ(0, label);  // the tie goes to the lower class
  EXPECT_NEAR(1 / (1 + std::exp(-2.0)), score, 1e-7);
  // Logits 20 and 30 both give a float probability of 1; the label is still the larger logit.
  const Dtype sat[6] = {0, 0, 0, 0, 20, 30};
  iam_decode_slot(sat, 1, 2, Dtype(10), Dtype(10), Dtype(1), box, &score, &label);
  EXPECT_EQ(1, label);
  EXPECT_NEAR(1, score, 1e-12);
}

// The cell coding: sigmoid 0.5 is the cell centre, 0 and 1 are one image away on either side.
TYPED_TEST(IAMBoxUtilTest, TestCellEdgeAndDecode) {
  typedef TypeParam Dtype;
  EXPECT_EQ(Dtype(0.25), iam_cell_edge(Dtype(0.5), Dtype(0.25)));
  EXPECT_EQ(Dtype(-0.75), iam_cell_edge(Dtype(0), Dtype(0.25)));
  EXPECT_EQ(Dtype(1.25), iam_cell_edge(Dtype(1), Dtype(0.25)));
  const Dtype L3 = std::log(3.0);  // sigmoid 0.75; -L3 gives 0.25
  // Cell centre (0.5, 0.25) of a 400 x 200 image: t = 0.25 - 0.5, l = 0.5 - 0.5,
  // b = 0.25 + 0.5, r = 0.5 + 0.5; t is clipped to the top border.
  const Dtype v[5] = {-L3, -L3, L3, L3, 1};
  Dtype box[4], score;
  int label;
  iam_decode_slot(v, 1, 1, Dtype(400), Dtype(200), Dtype(1), box, &score, &label, true,
                  Dtype(0.5), Dtype(0.25));
  EXPECT_NEAR(0, box[0], 1e-4);
  EXPECT_NEAR(0, box[1], 1e-4);
  EXPECT_NEAR(400, box[2], 1e-4);
  EXPECT_NEAR(150, box[3], 1e-4);
  // The same values with the image coding: (100, 50, 300, 150).
  iam_decode_slot(v, 1, 1, Dtype(400), Dtype(200), Dtype(1), box, &score, &label);
  EXPECT_NEAR(100, box[0], 1e-4);
  EXPECT_NEAR(50, box[1], 1e-4);
}

}  // namespace caffe
