#include <cmath>
#include <vector>

#include "gtest/gtest.h"

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layers/iam_decode_layer.hpp"
#include "caffe/util/math_functions.hpp"

#include "caffe/test/test_caffe_main.hpp"

namespace caffe {

// Expected output row: batch index, box, score, label, slot.
struct IAMRoi {
  int batch;
  double x1, y1, x2, y2, score;
  int label, slot;
};

template <typename TypeParam>
class IAMDecodeLayerTest : public MultiDeviceTest<TypeParam> {
  typedef typename TypeParam::Dtype Dtype;

 protected:
  IAMDecodeLayerTest()
      : bottom_(new Blob<Dtype>()), rois_(new Blob<Dtype>()), scores_(new Blob<Dtype>()),
        labels_(new Blob<Dtype>()), slots_(new Blob<Dtype>()) {
    bottom_vec_ = {bottom_};
    top_vec_ = {rois_, scores_, labels_, slots_};
  }
  virtual ~IAMDecodeLayerTest() {
    delete bottom_; delete rois_; delete scores_; delete labels_; delete slots_;
  }

  static LayerParameter Param(int num_classes, float threshold, int top_k, int width,
                              int height, float min_box_size) {
    LayerParameter param;
    param.set_name("iam");
    IAMDecodeParameter* p = param.mutable_iam_decode_param();
    p->set_num_classes(num_classes);
    p->set_score_threshold(threshold);
    p->set_top_k(top_k);
    p->set_image_width(width);
    p->set_image_height(height);
    p->set_min_box_size(min_box_size);
    return param;
  }

  // Writes slot s of image i of the (N, n, 4 + C) bottom: raw t, l, b, r, then the logits.
  void SetSlot(int i, int s, double t, double l, double b, double r,
               const vector<double>& logits) {
    const int values = bottom_->shape(2);
    ASSERT_EQ(values, 4 + static_cast<int>(logits.size()));
    Dtype* v = bottom_->mutable_cpu_data() + (i * bottom_->shape(1) + s) * values;
    v[0] = t; v[1] = l; v[2] = b; v[3] = r;
    for (int c = 0; c < logits.size(); ++c) v[4 + c] = logits[c];
  }

  // The hand-computed example of TestForwardHandComputed: one 400 x 200 image, 5 slots, C = 3.
  void FillHandExample() {
    const double L3 = std::log(3.0);  // sigmoid 0.75; -L3 gives 0.25
    bottom_->Reshape(vector<int>{1, 5, 7});
    SetSlot(0, 0, -L3, -L3, L3, L3, {0, L3, -10});   // box (100, 50, 300, 150), 0.75, class 1
    SetSlot(0, 1, 0, -10, 10, 0, {10, -10, -10});    // near the left edge, score sig(10)
    SetSlot(0, 2, L3, 0, 0, -L3, {-10, -10, 0});     // crossed t > b and l > r, score 0.5
    SetSlot(0, 3, 0, 0, 0, 0, {-10, -10, -10});      // below any usual threshold
    SetSlot(0, 4, 0, 0, 0, 0, {L3, -10, -10});       // a point box; ties slot 0's score
  }

  static vector<IAMRoi> HandExpected() {
    const double s10 = 1 / (1 + std::exp(-10.0));  // 0.9999546...
    return {{0, 400 * (1 - s10), 100, 200, 200 * s10, s10, 0, 1},
            {0, 100, 50, 300, 150, 0.75, 1, 0},
            {0, 199.5, 99.5, 200.5, 100.5, 0.75, 0, 4},  // min_box_size 1 about (200, 100)
            {0, 100, 100, 200, 150, 0.5, 2, 2}};          // edges swapped
  }

  void ExpectTops(const vector<IAMRoi>& want) {
    const double tol = sizeof(Dtype) == 4 ? 1e-4 : 1e-9;
    const int R = want.size();
    ASSERT_EQ(vector<int>({R, 5}), rois_->shape());
    ASSERT_EQ(vector<int>({R}), scores_->shape());
    ASSERT_EQ(vector<int>({R}), labels_->shape());
    ASSERT_EQ(vector<int>({R}), slots_->shape());
    const Dtype* rois = rois_->cpu_data();
    for (int k = 0; k < R; ++k) {
      EXPECT_EQ(want[k].batch, rois[k * 5]) << "roi " << k;
      EXPECT_NEAR(want[k].x1, rois[k * 5 + 1], tol) << "roi " << k;
      EXPECT_NEAR(want[k].y1, rois[k * 5 + 2], tol) << "roi " << k;
      EXPECT_NEAR(want[k].x2, rois[k * 5 + 3], tol) << "roi " << k;
      EXPECT_NEAR(want[k].y2, rois[k * 5 + 4], tol) << "roi " << k;
      EXPECT_NEAR(want[k].score, scores_->cpu_data()[k], tol * 1e-2) << "roi " << k;
      EXPECT_EQ(want[k].label, labels_->cpu_data()[k]) << "roi " << k;
      EXPECT_EQ(want[k].slot, slots_->cpu_data()[k]) << "roi " << k;
    }
  }

  // bottom_ := the slot-major (N, H W, V) transpose of `map` (N, V, H, W), slot = y * W + x.
  void SetSlotsFromMap(const Blob<Dtype>& map) {
    const int N = map.shape(0), V = map.shape(1), n = map.shape(2) * map.shape(3);
    bottom_->Reshape(vector<int>{N, n, V});
    const Dtype* m = map.cpu_data();
    Dtype* flat = bottom_->mutable_cpu_data();
    for (int i = 0; i < N; ++i)
      for (int v = 0; v < V; ++v)
        for (int s = 0; s < n; ++s) flat[(i * n + s) * V + v] = m[(i * V + v) * n + s];
  }

  // Copies of the tops as the last Run left them.
  vector<Blob<Dtype>*> CopyTops() {
    vector<Blob<Dtype>*> copies;
    for (Blob<Dtype>* b : top_vec_) {
      copies.push_back(new Blob<Dtype>());
      copies.back()->CopyFrom(*b, false, true);
    }
    return copies;
  }

  // Runs `param` on `map` and expects exactly the tops in `want` (which it deletes).
  void ExpectSameTopsOn(const LayerParameter& param, Blob<Dtype>* map,
                        const vector<Blob<Dtype>*>& want) {
    vector<Blob<Dtype>*> map_vec(1, map);
    IAMDecodeLayer<Dtype> layer(param);
    layer.SetUp(map_vec, top_vec_);
    layer.Forward(map_vec, top_vec_);
    for (int t = 0; t < 4; ++t) {
      EXPECT_EQ(want[t]->shape(), top_vec_[t]->shape()) << "top " << t;
      if (want[t]->shape() == top_vec_[t]->shape()) {
        for (int j = 0; j < want[t]->count(); ++j)
          EXPECT_EQ(want[t]->cpu_data()[j], top_vec_[t]->cpu_data()[j]) << "top " << t;
      }
      delete want[t];
    }
  }

  void Run(const LayerParameter& param) {
    IAMDecodeLayer<Dtype> layer(param);
    layer.SetUp(bottom_vec_, top_vec_);
    layer.Forward(bottom_vec_, top_vec_);
  }

  Blob<Dtype>* const bottom_;
  Blob<Dtype>* const rois_;
  Blob<Dtype>* const scores_;
  Blob<Dtype>* const labels_;
  Blob<Dtype>* const slots_;
  vector<Blob<Dtype>*> bottom_vec_, top_vec_;
};

TYPED_TEST_CASE(IAMDecodeLayerTest, TestDtypesAndDevices);

// Reshape sizes the tops for the most ROIs possible, N min(n, top_k), in both layouts.
TYPED_TEST(IAMDecodeLayerTest, TestSetUpShapes) {
  typedef typename TypeParam::Dtype Dtype;
  const vector<vector<int> > shapes = {{2, 36, 84}, {2, 84, 6, 6}};
  for (const vector<int>& shape : shapes) {
    this->bottom_->Reshape(shape);
    LayerParameter param;  // defaults: num_classes 80, top_k 0
    IAMDecodeLayer<Dtype> layer(param);
    layer.SetUp(this->bottom_vec_, this->top_vec_);
    EXPECT_EQ(vector<int>({72, 5}), this->rois_->shape());
    EXPECT_EQ(vector<int>({72}), this->scores_->shape());
    EXPECT_EQ(vector<int>({72}), this->labels_->shape());
    EXPECT_EQ(vector<int>({72}), this->slots_->shape());
    param.mutable_iam_decode_param()->set_top_k(10);
    IAMDecodeLayer<Dtype> top10(param);
    top10.SetUp(this->bottom_vec_, this->top_vec_);
    EXPECT_EQ(vector<int>({20, 5}), this->rois_->shape());
    param.mutable_iam_decode_param()->set_top_k(100);  // more than n: n
    IAMDecodeLayer<Dtype> top100(param);
    top100.SetUp(this->bottom_vec_, this->top_vec_);
    EXPECT_EQ(vector<int>({72, 5}), this->rois_->shape());
  }
  // Three tops (no slot indices) are fine too.
  vector<Blob<Dtype>*> three(this->top_vec_.begin(), this->top_vec_.begin() + 3);
  LayerParameter param;
  IAMDecodeLayer<Dtype> layer(param);
  layer.SetUp(this->bottom_vec_, three);
  layer.Forward(this->bottom_vec_, three);
  EXPECT_EQ(2, this->rois_->num_axes());
}

TYPED_TEST(IAMDecodeLayerTest, TestForwardHandComputed) {
  this->FillHandExample();
  this->Run(this->Param(3, 0.05, 0, 400, 200, 1));
  this->ExpectTops(this->HandExpected());
}

// Keep score > threshold (strictly: slot 2's 0.5 is dropped at 0.5), then at most top_k.
TYPED_TEST(IAMDecodeLayerTest, TestThresholdAndTopK) {
  const vector<IAMRoi> all = this->HandExpected();
  this->FillHandExample();
  this->Run(this->Param(3, 0.5, 0, 400, 200, 1));
  this->ExpectTops({all[0], all[1], all[2]});
  this->Run(this->Param(3, 0.05, 2, 400, 200, 1));
  this->ExpectTops({all[0], all[1]});
  this->Run(this->Param(3, 0.05, 10, 400, 200, 1));
  this->ExpectTops(all);
  this->Run(this->Param(3, 0.9, 3, 400, 200, 1));
  this->ExpectTops({all[0]});
  // Threshold 0 keeps every slot, even slot 3 (score sig(-10)), last.
  this->Run(this->Param(3, 0, 0, 400, 200, 1));
  EXPECT_EQ(5, this->scores_->count());
  EXPECT_EQ(3, this->slots_->cpu_data()[4]);
}

// min_box_size 8 in a 32 x 32 image: a point box in the middle, point boxes on two corners
// (sigmoid(+-20) is within 3e-9 of 1 / 0) and a box spanning the whole image (+-30).
TYPED_TEST(IAMDecodeLayerTest, TestMinBoxSizeAndBorders) {
  this->bottom_->Reshape(vector<int>{1, 4, 5});
  this->SetSlot(0, 0, 0, 0, 0, 0, {4});
  this->SetSlot(0, 1, -20, -20, -20, -20, {3});
  this->SetSlot(0, 2, 20, 20, 20, 20, {2});
  this->SetSlot(0, 3, -30, -30, 30, 30, {1});
  this->Run(this->Param(1, 0.05, 0, 32, 32, 8));
  const double s4 = 1 / (1 + std::exp(-4.0)), s3 = 1 / (1 + std::exp(-3.0));
  const double s2 = 1 / (1 + std::exp(-2.0)), s1 = 1 / (1 + std::exp(-1.0));
  this->ExpectTops({{0, 12, 12, 20, 20, s4, 0, 0},
                    {0, 0, 0, 8, 8, s3, 0, 1},
                    {0, 24, 24, 32, 32, s2, 0, 2},
                    {0, 0, 0, 32, 32, s1, 0, 3}});
}

// An image side below min_box_size: that side of every box is the whole side.
TYPED_TEST(IAMDecodeLayerTest, TestImageSmallerThanMinBoxSize) {
  this->bottom_->Reshape(vector<int>{1, 1, 5});
  this->SetSlot(0, 0, 0, 0, 0, 0, {0});
  this->Run(this->Param(1, 0.05, 0, 6, 100, 8));
  this->ExpectTops({{0, 0, 46, 6, 54, 0.5, 0, 0}});
}

// Three images keeping 2, 0 and 3 slots: batch indices, per-image order, slot indices.
TYPED_TEST(IAMDecodeLayerTest, TestMultipleImages) {
  this->bottom_->Reshape(vector<int>{3, 4, 6});
  const double L3 = std::log(3.0);
  for (int i = 0; i < 3; ++i)
    for (int s = 0; s < 4; ++s) this->SetSlot(i, s, 0, 0, 0, 0, {-10, -10});
  this->SetSlot(0, 3, -L3, -L3, L3, L3, {-10, 0});   // 0.5, class 1
  this->SetSlot(0, 1, 0, 0, L3, L3, {L3, -10});      // 0.75, class 0
  this->SetSlot(2, 0, -L3, 0, 0, L3, {-10, 1});
  this->SetSlot(2, 2, 0, -L3, L3, 0, {2, -10});
  this->SetSlot(2, 3, -L3, -L3, 0, 0, {-10, 3});
  this->Run(this->Param(2, 0.3, 0, 100, 100, 1));
  const double s1 = 1 / (1 + std::exp(-1.0)), s2 = 1 / (1 + std::exp(-2.0));
  const double s3 = 1 / (1 + std::exp(-3.0));
  this->ExpectTops({{0, 50, 50, 75, 75, 0.75, 0, 1},
                    {0, 25, 25, 75, 75, 0.5, 1, 3},
                    {2, 25, 25, 50, 50, s3, 1, 3},
                    {2, 25, 50, 50, 75, s2, 0, 2},
                    {2, 50, 25, 75, 50, s1, 1, 0}});
  // top_k applies per image.
  this->Run(this->Param(2, 0.3, 1, 100, 100, 1));
  this->ExpectTops({{0, 50, 50, 75, 75, 0.75, 0, 1}, {2, 25, 25, 50, 50, s3, 1, 3}});
}

// Everything below the threshold: empty tops, no crash, backward still zeroes the diff. Also
// an empty batch.
TYPED_TEST(IAMDecodeLayerTest, TestZeroROIs) {
  typedef typename TypeParam::Dtype Dtype;
  this->bottom_->Reshape(vector<int>{2, 36, 84});
  caffe_set(this->bottom_->count(), Dtype(-10), this->bottom_->mutable_cpu_data());
  IAMDecodeLayer<Dtype> layer(this->Param(80, 0.05, 0, 416, 416, 1));
  layer.SetUp(this->bottom_vec_, this->top_vec_);
  layer.Forward(this->bottom_vec_, this->top_vec_);
  this->ExpectTops({});
  caffe_set(this->bottom_->count(), Dtype(3), this->bottom_->mutable_cpu_diff());
  layer.Backward(this->top_vec_, vector<bool>(1, true), this->bottom_vec_);
  EXPECT_EQ(0, caffe_cpu_asum(this->bottom_->count(), this->bottom_->cpu_diff()));
  this->bottom_->Reshape(vector<int>{0, 84, 6, 6});
  this->Run(this->Param(80, 0.05, 0, 416, 416, 1));
  this->ExpectTops({});
}

// Backward writes exact zeros when asked (Split sums this branch with the losses') and leaves
// the diff alone when not.
TYPED_TEST(IAMDecodeLayerTest, TestBackwardZeros) {
  typedef typename TypeParam::Dtype Dtype;
  this->FillHandExample();
  IAMDecodeLayer<Dtype> layer(this->Param(3, 0.05, 0, 400, 200, 1));
  layer.SetUp(this->bottom_vec_, this->top_vec_);
  layer.Forward(this->bottom_vec_, this->top_vec_);
  const int n = this->bottom_->count();
  caffe_set(n, Dtype(7), this->bottom_->mutable_cpu_diff());
  layer.Backward(this->top_vec_, vector<bool>(1, false), this->bottom_vec_);
  EXPECT_EQ(7 * n, caffe_cpu_asum(n, this->bottom_->cpu_diff()));
  layer.Backward(this->top_vec_, vector<bool>(1, true), this->bottom_vec_);
  for (int i = 0; i < n; ++i) EXPECT_EQ(0, this->bottom_->cpu_diff()[i]);
}

// (N, 4 + C, H, W) with H != W gives the same tops as its (N, H W, 4 + C) transpose, with
// slot = y * W + x.
TYPED_TEST(IAMDecodeLayerTest, TestLayoutsAgree) {
  typedef typename TypeParam::Dtype Dtype;
  const int N = 2, V = 7, H = 2, W = 3;
  Blob<Dtype> map(vector<int>{N, V, H, W});
  Caffe::set_random_seed(1701);
  FillerParameter fp;
  fp.set_std(2);
  GaussianFiller<Dtype> filler(fp);
  filler.Fill(&map);
  Dtype* m = map.mutable_cpu_data();
  for (int i = 0; i < N; ++i)  // one unmistakable winner at (y 1, x 2) = slot 5 of image 1
    for (int c = 0; c < 3; ++c) m[((i * V + 4 + c) * H + 1) * W + 2] = i == 1 && c == 2 ? 20 : -20;
  this->SetSlotsFromMap(map);
  const LayerParameter param = this->Param(3, 0.3, 0, 64, 48, 2);
  this->Run(param);
  const vector<Blob<Dtype>*> want = this->CopyTops();
  EXPECT_GT(want[0]->num(), 2);
  bool found = false;
  for (int k = 0; k < want[0]->num(); ++k)
    found |= want[0]->cpu_data()[k * 5] == 1 && want[3]->cpu_data()[k] == 5;
  EXPECT_TRUE(found);
  this->ExpectSameTopsOn(param, &map, want);
}

// A non-square slot count is fine for the (N, n, 4 + C) layout.
TYPED_TEST(IAMDecodeLayerTest, TestNonSquareSlotCount) {
  this->bottom_->Reshape(vector<int>{1, 5, 5});
  for (int s = 0; s < 5; ++s) this->SetSlot(0, s, 0, 0, 0, 0, {s - 2.0});
  this->Run(this->Param(1, 0.6, 0, 10, 10, 1));
  EXPECT_EQ(2, this->scores_->count());  // logits 1 and 2
  EXPECT_EQ(4, this->slots_->cpu_data()[0]);
  EXPECT_EQ(3, this->slots_->cpu_data()[1]);
}

// box_coding CELL, worked by hand: a 300 x 200 image, a 2 x 3 slot grid, C = 1.
TYPED_TEST(IAMDecodeLayerTest, TestCellCodingHandComputed) {
  typedef typename TypeParam::Dtype Dtype;
  const int H = 2, W = 3, V = 5;
  this->bottom_->Reshape(vector<int>{1, V, H, W});
  Dtype* m = this->bottom_->mutable_cpu_data();
  caffe_set(this->bottom_->count(), Dtype(-20), m);  // every slot: edges 0, no class
  auto logit = [](double p) { return std::log(p / (1 - p)); };
  // Slot 5 = (y 1, x 2), centre (2.5 / 3, 0.75): sigmoids 0.4, 0.45, 0.55, 0.6 put the edges
  // at t = 0.75 - 0.2, l = 5/6 - 0.1, b = 0.75 + 0.1, r = 5/6 + 0.2 (past the right border).
  const double slot5[V] = {logit(0.4), logit(0.45), logit(0.55), logit(0.6), 3};
  // Slot 0, centre (1/6, 1/4): sigmoids 0.5 put all four edges on the centre, a point grown
  // to min_box_size 2 about (50, 50).
  const double slot0[V] = {0, 0, 0, 0, 1};
  for (int v = 0; v < V; ++v) {
    m[v * H * W + 5] = slot5[v];
    m[v * H * W + 0] = slot0[v];
  }
  LayerParameter param = this->Param(1, 0.5, 0, 300, 200, 2);
  param.mutable_iam_decode_param()->set_box_coding(IAMDecodeParameter_BoxCoding_CELL);
  this->Run(param);
  const double s3 = 1 / (1 + std::exp(-3.0)), s1 = 1 / (1 + std::exp(-1.0));
  this->ExpectTops({{0, 300 * (2.5 / 3 - 0.1), 200 * 0.55, 300, 200 * 0.85, s3, 0, 5},
                    {0, 49, 49, 51, 51, s1, 0, 0}});
}

// With box_coding CELL the (N, n, 4 + C) layout of a square n decodes like the S x S map.
TYPED_TEST(IAMDecodeLayerTest, TestCellCodingLayoutsAgree) {
  typedef typename TypeParam::Dtype Dtype;
  const int N = 2, V = 6, S = 3;
  Blob<Dtype> map(vector<int>{N, V, S, S});
  Caffe::set_random_seed(1702);
  FillerParameter fp;
  fp.set_std(2);
  GaussianFiller<Dtype> filler(fp);
  filler.Fill(&map);
  this->SetSlotsFromMap(map);
  LayerParameter param = this->Param(2, 0.3, 0, 90, 60, 1);
  param.mutable_iam_decode_param()->set_box_coding(IAMDecodeParameter_BoxCoding_CELL);
  this->Run(param);
  const vector<Blob<Dtype>*> want = this->CopyTops();
  EXPECT_GT(want[0]->num(), 4);
  this->ExpectSameTopsOn(param, &map, want);
}

typedef IAMDecodeLayerTest<CPUDevice<float> > IAMDecodeLayerDeathTest;

TEST_F(IAMDecodeLayerDeathTest, RejectsValueCount3Axis) {
  this->bottom_->Reshape(vector<int>{2, 36, 83});
  LayerParameter param;
  param.set_name("iam_bad");
  IAMDecodeLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_vec_, this->top_vec_),
               "iam_bad: bottom 2 36 83 .* has 83 values per slot, expected "
               "4 \\+ num_classes = 4 \\+ 80");
}

TEST_F(IAMDecodeLayerDeathTest, RejectsValueCount4Axis) {
  this->bottom_->Reshape(vector<int>{1, 10, 3, 3});
  IAMDecodeLayer<float> layer(this->Param(5, 0.05, 0, 416, 416, 1));
  EXPECT_DEATH(layer.SetUp(this->bottom_vec_, this->top_vec_),
               "iam: bottom 1 10 3 3 .* has 10 values per slot, expected 4 \\+ num_classes = "
               "4 \\+ 5");
}

TEST_F(IAMDecodeLayerDeathTest, RejectsCellCodingWithoutGrid) {
  this->bottom_->Reshape(vector<int>{1, 5, 5});
  LayerParameter param = this->Param(1, 0.05, 0, 10, 10, 1);
  param.mutable_iam_decode_param()->set_box_coding(IAMDecodeParameter_BoxCoding_CELL);
  IAMDecodeLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_vec_, this->top_vec_),
               "iam: box_coding CELL needs the slot grid; bottom 1 5 5 .* has 5 slots, not a "
               "square");
}

TEST_F(IAMDecodeLayerDeathTest, RejectsAxes) {
  this->bottom_->Reshape(vector<int>{36, 84});
  LayerParameter param;
  IAMDecodeLayer<float> layer(param);
  EXPECT_DEATH(layer.SetUp(this->bottom_vec_, this->top_vec_),
               "bottom must be \\(N, n, 4 \\+ C\\) or \\(N, 4 \\+ C, H, W\\), got 36 84");
}

TEST_F(IAMDecodeLayerDeathTest, RejectsParams) {
  this->bottom_->Reshape(vector<int>{1, 4, 84});
  IAMDecodeLayer<float> threshold(this->Param(80, 1, 0, 416, 416, 1));
  EXPECT_DEATH(threshold.SetUp(this->bottom_vec_, this->top_vec_),
               "score_threshold must be in \\[0, 1\\), got 1");
  IAMDecodeLayer<float> width(this->Param(80, 0.05, 0, 0, 416, 1));
  EXPECT_DEATH(width.SetUp(this->bottom_vec_, this->top_vec_),
               "image_width and image_height must be > 0, got 0 x 416");
  IAMDecodeLayer<float> classes(this->Param(0, 0.05, 0, 416, 416, 1));
  EXPECT_DEATH(classes.SetUp(this->bottom_vec_, this->top_vec_), "num_classes must be > 0");
  IAMDecodeLayer<float> min_size(this->Param(80, 0.05, 0, 416, 416, -1));
  EXPECT_DEATH(min_size.SetUp(this->bottom_vec_, this->top_vec_),
               "min_box_size must be >= 0, got -1");
}

#ifndef CPU_ONLY
// The same seeded input on the CPU and the GPU: the same ROIs, labels and slots in the same
// order; boxes and scores equal up to the last bits of exp (CUDA's and glibc's differ by ulps).
template <typename Dtype>
class IAMDecodeLayerCPUvsGPUTest : public GPUDeviceTest<Dtype> {};

TYPED_TEST_CASE(IAMDecodeLayerCPUvsGPUTest, TestDtypes);

TYPED_TEST(IAMDecodeLayerCPUvsGPUTest, TestSameTops) {
  typedef TypeParam Dtype;
  for (int coding = 0; coding < 2; ++coding) {
  SCOPED_TRACE(coding == 0 ? "box_coding IMAGE" : "box_coding CELL");
  Blob<Dtype> in(vector<int>{4, 84, 6, 6});
  Caffe::set_random_seed(1701);
  FillerParameter fp;
  fp.set_std(2);
  GaussianFiller<Dtype> filler(fp);
  filler.Fill(&in);
  vector<Blob<Dtype>*> bottom(1, &in);
  Blob<Dtype> tops[2][4];
  for (int dev = 0; dev < 2; ++dev) {
    Caffe::set_mode(dev == 0 ? Caffe::CPU : Caffe::GPU);
    vector<Blob<Dtype>*> top = {&tops[dev][0], &tops[dev][1], &tops[dev][2], &tops[dev][3]};
    LayerParameter param;
    param.mutable_iam_decode_param()->set_score_threshold(0.9);
    param.mutable_iam_decode_param()->set_top_k(20);
    param.mutable_iam_decode_param()->set_box_coding(
        static_cast<IAMDecodeParameter_BoxCoding>(coding));
    IAMDecodeLayer<Dtype> layer(param);
    layer.SetUp(bottom, top);
    layer.Forward(bottom, top);
    caffe_set(in.count(), Dtype(5), in.mutable_cpu_diff());
    layer.Backward(top, vector<bool>(1, true), bottom);
    EXPECT_EQ(0, caffe_cpu_asum(in.count(), in.cpu_diff()));
  }
  Caffe::set_mode(Caffe::GPU);
  EXPECT_GT(tops[0][0].num(), 10);
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(tops[0][t].shape(), tops[1][t].shape());
    const double tol = t == 0 ? 1e-4 : 1e-6;
    for (int j = 0; j < tops[0][t].count(); ++j) {
      if (t >= 2 || (t == 0 && j % 5 == 0)) {
        EXPECT_EQ(tops[0][t].cpu_data()[j], tops[1][t].cpu_data()[j]) << "top " << t;
      } else {
        EXPECT_NEAR(tops[0][t].cpu_data()[j], tops[1][t].cpu_data()[j], tol) << "top " << t;
      }
    }
  }
  }
}
#endif  // CPU_ONLY

}  // namespace caffe
