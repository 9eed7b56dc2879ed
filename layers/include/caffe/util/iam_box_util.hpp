#ifndef CAFFE_UTIL_IAM_BOX_UTIL_HPP_
#define CAFFE_UTIL_IAM_BOX_UTIL_HPP_

// Per-slot decoding of the Instance Attention Module (IAM) output, shared by the CPU and CUDA
// paths of IAMDecodeLayer (so both run the same arithmetic) and unit-tested without a layer.
//
// Box convention: continuous input-pixel coordinates, no +1. A box (x1, y1, x2, y2) spans
// [x1, x2] x [y1, y2] with width x2 - x1; the image spans [0, W] x [0, H]. An IAM slot's edges
// t, l, b, r are fractions of the image: x1 = l W, y1 = t H, x2 = r W, y2 = b H. With the
// cell coding each edge is first moved to the slot's cell: e = c + 2 s - 1 (iam_cell_edge).
//
// A slot's values are 4 + C numbers, the i-th at v[i * stride]: raw t, l, b, r, then C class
// logits. Everything goes through a sigmoid (no background class).

#ifdef __CUDACC__
#define IAM_BOX_HD __host__ __device__ __forceinline__
#else
#define IAM_BOX_HD inline
#endif

#include <cmath>

namespace caffe {

template <typename Dtype>
IAM_BOX_HD Dtype iam_sigmoid(Dtype x) {
  using std::exp;  // the float overload for float, on the host as on the device
  return Dtype(1) / (Dtype(1) + exp(-x));
}

// Makes the interval [*lo, *hi] inside [0, extent] at least min_size long: grown symmetrically
// about its centre, then shifted back inside. If extent <= min_size it becomes [0, extent].
// Expects 0 <= *lo <= *hi <= extent.
template <typename Dtype>
IAM_BOX_HD void iam_min_side(Dtype extent, Dtype min_size, Dtype* lo, Dtype* hi) {
  if (*hi - *lo >= min_size) return;
  if (extent <= min_size) {
    *lo = 0;
    *hi = extent;
    return;
  }
  const Dtype c = Dtype(0.5) * (*lo + *hi);
  *lo = c - Dtype(0.5) * min_size;
  *hi = c + Dtype(0.5) * min_size;
  if (*lo < 0) {
    *lo = 0;
    *hi = min_size;
  } else if (*hi > extent) {
    *lo = extent - min_size;
    *hi = extent;
  }
}

// One axis of a box from its two edge fractions a, b: scaled by extent, ordered (crossed edges
// are swapped, see below), clipped to [0, extent], grown to min_size.
// Why swap: early in training the sigmoid head can put the "left" edge right of the "right"
// edge. The two predicted edges still bound an extent; swapping keeps it (a valid x1 <= x2 ROI)
// instead of collapsing it to a point or giving ROIAlign a negative size.
template <typename Dtype>
IAM_BOX_HD void iam_box_side(Dtype a, Dtype b, Dtype extent, Dtype min_size,
                             Dtype* lo, Dtype* hi) {
  Dtype p = a * extent, q = b * extent;
  if (p > q) {
    const Dtype s = p;
    p = q;
    q = s;
  }
  p = p < 0 ? Dtype(0) : (p > extent ? extent : p);
  q = q < 0 ? Dtype(0) : (q > extent ? extent : q);
  *lo = p;
  *hi = q;
  iam_min_side(extent, min_size, lo, hi);
}

// Box in pixels from edge fractions t, l, b, r (already through the sigmoid).
// box = (x1, y1, x2, y2).
template <typename Dtype>
IAM_BOX_HD void iam_box_from_edges(Dtype t, Dtype l, Dtype b, Dtype r, Dtype width,
                                   Dtype height, Dtype min_size, Dtype* box) {
  iam_box_side(l, r, width, min_size, &box[0], &box[2]);
  iam_box_side(t, b, height, min_size, &box[1], &box[3]);
}

// The cell coding (IAMDecodeParameter.box_coding CELL): an edge's sigmoid s is its offset from
// the slot's cell centre c (an image fraction), mapped from [-1, 1] into [0, 1], so the edge is
// c + 2 s - 1. Why: the IAM ends in a convolution, which answers the same for the same object
// wherever it lies; with image fractions each cell has to learn its own position (YOLO, which
// the paper follows for the regression, predicts boxes relative to the cell too).
template <typename Dtype>
IAM_BOX_HD Dtype iam_cell_edge(Dtype s, Dtype centre) {
  return centre + Dtype(2) * s - Dtype(1);
}

// Decodes one slot: v[i * stride] is its i-th raw value (t, l, b, r, C logits).
// cell: the edges are cell-coded about the cell centre (cx, cy), image fractions.
// label = argmax of the logits (the lowest index on an exact tie), score = sigmoid(max logit),
// which is the max class probability (the sigmoid is monotonic). Taking the argmax on logits
// keeps the label meaningful where float sigmoids of large logits saturate to the same 1.0.
template <typename Dtype>
IAM_BOX_HD void iam_decode_slot(const Dtype* v, int stride, int num_classes, Dtype width,
                                Dtype height, Dtype min_size, Dtype* box, Dtype* score,
                                int* label, bool cell = false, Dtype cx = 0, Dtype cy = 0) {
  Dtype t = iam_sigmoid(v[0]), l = iam_sigmoid(v[stride]);
  Dtype b = iam_sigmoid(v[2 * stride]), r = iam_sigmoid(v[3 * stride]);
  if (cell) {
    t = iam_cell_edge(t, cy);
    l = iam_cell_edge(l, cx);
    b = iam_cell_edge(b, cy);
    r = iam_cell_edge(r, cx);
  }
  iam_box_from_edges(t, l, b, r, width, height, min_size, box);
  const Dtype* logits = v + 4 * stride;
  int best = 0;
  Dtype best_logit = logits[0];
  for (int c = 1; c < num_classes; ++c) {
    if (logits[c * stride] > best_logit) {
      best_logit = logits[c * stride];
      best = c;
    }
  }
  *score = iam_sigmoid(best_logit);
  *label = best;
}

}  // namespace caffe

#endif  // CAFFE_UTIL_IAM_BOX_UTIL_HPP_
