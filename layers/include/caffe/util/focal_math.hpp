#ifndef CAFFE_UTIL_FOCAL_MATH_HPP_
#define CAFFE_UTIL_FOCAL_MATH_HPP_

// Per-element sigmoid and sigmoid focal loss math, shared by the CPU (.cpp) and CUDA (.cu) code
// of SigmoidFocalLossLayer and DiceLossLayer, so both devices compute the same expressions.
//
// Stability: everything is written with e = exp(-|x|) in (0, 1], which never overflows; p and
// q = 1 - p are each formed directly (not as 1 - the other), so p(1 - p) = e / (1 + e)^2 and
// y - p = y q - (1 - y) p keep their precision for logits of +-100 and beyond.

#include <math.h>

#ifdef __CUDACC__
#define FOCAL_MATH_HD __host__ __device__ __forceinline__
#else
#define FOCAL_MATH_HD inline
#endif

namespace caffe {

// p = sigmoid(x), q = 1 - p, pq = p (1 - p), e = exp(-|x|).
template <typename Dtype>
FOCAL_MATH_HD void stable_sigmoid(Dtype x, Dtype* p, Dtype* q, Dtype* pq, Dtype* e) {
  const Dtype ex = exp(-fabs(x));
  const Dtype inv = Dtype(1) / (Dtype(1) + ex);
  const Dtype big = inv;        // sigmoid(|x|)
  const Dtype small = ex * inv;  // sigmoid(-|x|)
  *p = x >= 0 ? big : small;
  *q = x >= 0 ? small : big;
  *pq = small * inv;
  *e = ex;
}

// Binary cross-entropy with logits: -(y log p + (1 - y) log(1 - p)), for y in [0, 1].
template <typename Dtype>
FOCAL_MATH_HD Dtype bce_with_logits(Dtype x, Dtype y, Dtype e) {
  return (x > 0 ? x : Dtype(0)) - x * y + log1p(e);
}

// One element of the sigmoid focal loss, before its weight and normaliser:
//   loss = alpha_t |y - p|^gamma BCE,  alpha_t = alpha y + (1 - alpha)(1 - y) (1 if alpha < 0),
//   grad = d loss / d x = alpha_t [gamma |y - p|^(gamma - 1) sign(p - y) p (1 - p) BCE
//                                  + |y - p|^gamma (p - y)],
// the first term taken as 0 where y == p (its limit for gamma > 1; the convention for gamma <= 1)
// and for gamma == 0. Either output pointer may be null.
template <typename Dtype>
FOCAL_MATH_HD void sigmoid_focal_element(Dtype x, Dtype y, Dtype alpha, Dtype gamma,
                                         Dtype* loss, Dtype* grad) {
  Dtype p, q, pq, e;
  stable_sigmoid(x, &p, &q, &pq, &e);
  const Dtype bce = bce_with_logits(x, y, e);
  const Dtype d = y * q - (Dtype(1) - y) * p;  // y - p
  const Dtype ad = fabs(d);
  const Dtype m = gamma == Dtype(0) ? Dtype(1) : pow(ad, gamma);
  const Dtype alpha_t = alpha < 0 ? Dtype(1) : alpha * y + (Dtype(1) - alpha) * (Dtype(1) - y);
  if (loss) *loss = alpha_t * m * bce;
  if (grad) {
    Dtype focus = 0;
    if (gamma != Dtype(0) && ad > Dtype(0)) {
      // |d|^(gamma - 1) p (1 - p) as m (pq / |d|): pq / |d| stays bounded (it is p or q for
      // one-hot targets) where |d|^(gamma - 1) alone would overflow for gamma < 1 and tiny |d|.
      // sign(p - y) = -sign(d).
      focus = gamma * m * (pq / ad) * bce * (d > 0 ? Dtype(-1) : Dtype(1));
    }
    *grad = alpha_t * (focus - m * d);
  }
}

}  // namespace caffe

#endif  // CAFFE_UTIL_FOCAL_MATH_HPP_
