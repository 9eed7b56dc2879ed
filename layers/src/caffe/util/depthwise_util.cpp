#include <algorithm>
#include <cstring>
#include <vector>

#include "caffe/util/cpu_clones.hpp"
#include "caffe/util/depthwise_util.hpp"

// How each layout reads (the header lists them).
//
// 3x3, pad 1, stride 1. Output pixel i = y W + x (flattened) sums w[ky][kx] at input
// i + (ky - 1) W + (kx - 1). Read straight from the plane, the left and right taps would wrap
// into the neighbouring row at x = 0 and x = W - 1; read from left_ / right_ (the plane shifted
// by one column, with a zero column where the shift wraps) they need no per-pixel test, and
// each tap is one run over a whole range of rows: rows 1 .. H - 2 are one loop summing 9 runs,
// rows 0 and H - 1 (whose outer tap row is padding) one more loop each, reading a zero row.
// The bottom diff is the same sum over the top diff with the filter turned by 180 degrees.
//
// 3x3, pad 1, stride 2. Output (oy, ox) reads input rows 2 oy - 1, 2 oy, 2 oy + 1 and columns
// 2 ox - 1, 2 ox, 2 ox + 1. One pass over the input rows writes, per row parity, the even
// columns and the odd ones shifted by one (zero first): four blocks with rows Wo apart, so every
// tap is one run over a band of output rows, written straight to the top (no padded output to
// copy back); the left and right taps read the odd block at ox and ox + 1. Bands of ~256
// outputs keep the blocks in the L1 cache. The bottom diff is gathered row pair by row pair
// from the top diff (each input pixel receives 1, 2 or 4 taps by its parity), no scatter.
//
// General (any kernel, stride, pad, dilation). Each plane is copied once into `padded_`, zero
// padded and split by phase along both axes: padded coordinate p = i stride + r goes to phase
// r, index i (DepthwiseAxis). Tap k of output o then reads phase (k dilation) % stride at
// index o + (k dilation) / stride. With the rows of a phase block ax_.len apart, every tap reads
// one contiguous run of (Ho - 1) ax_.len + Wo values for the whole output plane (columns past
// Wo are dropped). The bottom diff is the same kind of sum read the other way (a gather): each
// bottom phase block sums the runs of the zero-padded top diff of the taps in that phase.
//
// Weight gradients are dot products of the top diff with the same runs, in 8 partial sums per
// tap so that they vectorise without -ffast-math (the 3x3 paths do all 9 taps in one pass).

namespace caffe {

namespace {

// Asks for the cache lines of n values at p (rw 1: to be written), ahead of a plain loop over
// them: blobs of the early layers do not fit the caches, and the hardware prefetcher alone left
// the plane copies waiting on memory (96 x 208 x 208 at stride 2: 3.4 -> 2.5 ms forward).
template <typename Dtype>
inline void Prefetch(const Dtype* p, int n, int rw) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int b = 0; b < n * static_cast<int>(sizeof(Dtype)); b += 64) {
    if (rw) {
      __builtin_prefetch(c + b, 1);
    } else {
      __builtin_prefetch(c + b, 0);
    }
  }
}

// The 3x3 row loops ask for the row about kPrefetchAhead bytes on: splitting a cold 96 x 208 x
// 208 input took 1.7 ms with no prefetch, 1.7 two rows (1.7 KB) ahead, 1.3 with 4-7 KB.
const int kPrefetchAhead = 4096;

// Rows of `row` values that make kPrefetchAhead bytes.
template <typename Dtype>
inline int RowsAhead(int row) {
  return 1 + kPrefetchAhead / (row * static_cast<int>(sizeof(Dtype)));
}

// a / b rounded up, for b > 0 and any sign of a.
inline int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -(-a / b); }

// d[i] (+)= init + sum_m w[m] src[m][i], i < n, for M <= 9 runs; FIRST writes, else adds.
template <int M, bool FIRST, typename Dtype>
FASSST_AVX2_CLONES void SumRunsFixed(int n, const Dtype* w, const Dtype* const* src, Dtype init,
                                   Dtype* __restrict__ d) {
  const Dtype* __restrict__ s0 = src[0];
  const Dtype* __restrict__ s1 = src[M > 1 ? 1 : 0];
  const Dtype* __restrict__ s2 = src[M > 2 ? 2 : 0];
  const Dtype* __restrict__ s3 = src[M > 3 ? 3 : 0];
  const Dtype* __restrict__ s4 = src[M > 4 ? 4 : 0];
  const Dtype* __restrict__ s5 = src[M > 5 ? 5 : 0];
  const Dtype* __restrict__ s6 = src[M > 6 ? 6 : 0];
  const Dtype* __restrict__ s7 = src[M > 7 ? 7 : 0];
  const Dtype* __restrict__ s8 = src[M > 8 ? 8 : 0];
  const Dtype w0 = w[0], w1 = w[M > 1 ? 1 : 0], w2 = w[M > 2 ? 2 : 0], w3 = w[M > 3 ? 3 : 0],
              w4 = w[M > 4 ? 4 : 0], w5 = w[M > 5 ? 5 : 0], w6 = w[M > 6 ? 6 : 0],
              w7 = w[M > 7 ? 7 : 0], w8 = w[M > 8 ? 8 : 0];
  for (int i = 0; i < n; ++i) {
    Dtype v = (FIRST ? init : d[i]) + w0 * s0[i];
    if (M > 1) v += w1 * s1[i];
    if (M > 2) v += w2 * s2[i];
    if (M > 3) v += w3 * s3[i];
    if (M > 4) v += w4 * s4[i];
    if (M > 5) v += w5 * s5[i];
    if (M > 6) v += w6 * s6[i];
    if (M > 7) v += w7 * s7[i];
    if (M > 8) v += w8 * s8[i];
    d[i] = v;
  }
}

// d[i] = init + sum_m w[m] src[m][i] over `count` runs: nine at once (a 3x3 kernel's inner
// rows), else in passes of three.
template <typename Dtype>
void SumRuns(int n, int count, const Dtype* w, const Dtype* const* src, Dtype init, Dtype* d) {
  if (count == 9) {
    SumRunsFixed<9, true>(n, w, src, init, d);
    return;
  }
  if (count == 0) {
    std::fill(d, d + n, init);
    return;
  }
  for (int m = 0; m < count; m += 3) {
    const int k = std::min(3, count - m);
    if (m == 0) {
      if (k == 3) SumRunsFixed<3, true>(n, w, src, init, d);
      if (k == 2) SumRunsFixed<2, true>(n, w, src, init, d);
      if (k == 1) SumRunsFixed<1, true>(n, w, src, init, d);
    } else {
      if (k == 3) SumRunsFixed<3, false>(n, w + m, src + m, init, d);
      if (k == 2) SumRunsFixed<2, false>(n, w + m, src + m, init, d);
      if (k == 1) SumRunsFixed<1, false>(n, w + m, src + m, init, d);
    }
  }
}

// acc[k] += sum over i = k mod 8 of a[i] b[i]: eight independent sums, so the loop vectorises
// (a single running sum would need -ffast-math to reorder).
template <typename Dtype>
FASSST_AVX2_CLONES void Dot8(int n, const Dtype* __restrict__ a, const Dtype* __restrict__ b,
                           Dtype* acc) {
  Dtype r[8];
  for (int k = 0; k < 8; ++k) r[k] = acc[k];
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) r[k] += a[i + k] * b[i + k];
  }
  for (int k = 0; i < n; ++i, ++k) r[k] += a[i] * b[i];
  for (int k = 0; k < 8; ++k) acc[k] = r[k];
}

// acc[m][k] += sum over i = k mod 8 of t[i] src[m][i], i < n, m < 9: Dot8 for the nine taps
// of a 3x3 kernel in one pass, so the top diff is read once and the sums stay in registers.
template <typename Dtype>
FASSST_AVX2_CLONES void DotRuns9(int n, const Dtype* __restrict__ t, const Dtype* const* src,
                               Dtype (*acc)[8]) {
  const Dtype* __restrict__ s0 = src[0];
  const Dtype* __restrict__ s1 = src[1];
  const Dtype* __restrict__ s2 = src[2];
  const Dtype* __restrict__ s3 = src[3];
  const Dtype* __restrict__ s4 = src[4];
  const Dtype* __restrict__ s5 = src[5];
  const Dtype* __restrict__ s6 = src[6];
  const Dtype* __restrict__ s7 = src[7];
  const Dtype* __restrict__ s8 = src[8];
  Dtype a0[8], a1[8], a2[8], a3[8], a4[8], a5[8], a6[8], a7[8], a8[8];
  for (int k = 0; k < 8; ++k) {
    a0[k] = acc[0][k];
    a1[k] = acc[1][k];
    a2[k] = acc[2][k];
    a3[k] = acc[3][k];
    a4[k] = acc[4][k];
    a5[k] = acc[5][k];
    a6[k] = acc[6][k];
    a7[k] = acc[7][k];
    a8[k] = acc[8][k];
  }
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) {
      const Dtype v = t[i + k];
      a0[k] += v * s0[i + k];
      a1[k] += v * s1[i + k];
      a2[k] += v * s2[i + k];
      a3[k] += v * s3[i + k];
      a4[k] += v * s4[i + k];
      a5[k] += v * s5[i + k];
      a6[k] += v * s6[i + k];
      a7[k] += v * s7[i + k];
      a8[k] += v * s8[i + k];
    }
  }
  for (int k = 0; i < n; ++i, ++k) {
    const Dtype v = t[i];
    a0[k] += v * s0[i];
    a1[k] += v * s1[i];
    a2[k] += v * s2[i];
    a3[k] += v * s3[i];
    a4[k] += v * s4[i];
    a5[k] += v * s5[i];
    a6[k] += v * s6[i];
    a7[k] += v * s7[i];
    a8[k] += v * s8[i];
  }
  for (int k = 0; k < 8; ++k) {
    acc[0][k] = a0[k];
    acc[1][k] = a1[k];
    acc[2][k] = a2[k];
    acc[3][k] = a3[k];
    acc[4][k] = a4[k];
    acc[5][k] = a5[k];
    acc[6][k] = a6[k];
    acc[7][k] = a7[k];
    acc[8][k] = a8[k];
  }
}

// sum of a[i], i < n, by the same eight partial sums.
template <typename Dtype>
FASSST_AVX2_CLONES Dtype Sum8(int n, const Dtype* __restrict__ a) {
  Dtype r[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) r[k] += a[i + k];
  }
  for (int k = 0; i < n; ++i, ++k) r[k] += a[i];
  Dtype sum = 0;
  for (int k = 0; k < 8; ++k) sum += r[k];
  return sum;
}

// One input row r into its even columns (de[j] = r[2 j]) and odd columns one place on
// (dl[j + 1] = r[2 j + 1]), `pairs` of each. Pointer parameters, so that `restrict` spares the
// vectorised loop its run-time overlap checks (a third of the time on 13-pair rows).
template <typename Dtype>
inline void SplitRow(int pairs, const Dtype* __restrict__ r, Dtype* __restrict__ de,
                     Dtype* __restrict__ dl) {
  for (int j = 0; j < pairs; ++j) {
    de[j] = r[2 * j];
    dl[j + 1] = r[2 * j + 1];
  }
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define DEPTHWISE_SHUFFLE  // __builtin_shufflevector
#endif

#ifdef DEPTHWISE_SHUFFLE
// The same for float rows, 8 pairs at a time as two shuffles of two 8-float vectors (one AVX2
// instruction each, or two SSE2 ones); the last 8 overlap the ones before (writing the same
// values again) instead of a scalar tail. 13-pair rows (576 x 26 x 26 input): 0.073 -> 0.054 ms.
typedef float Float8 __attribute__((vector_size(32)));
inline void SplitRow(int pairs, const float* __restrict__ r, float* __restrict__ de,
                     float* __restrict__ dl) {
  if (pairs < 8) {
    SplitRow<float>(pairs, r, de, dl);
    return;
  }
  for (int j = 0;; j += 8) {
    if (j + 8 > pairs) j = pairs - 8;
    Float8 a, b;
    std::memcpy(&a, r + 2 * j, sizeof(a));
    std::memcpy(&b, r + 2 * j + 8, sizeof(b));
    const Float8 even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
    const Float8 odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
    std::memcpy(de + j, &even, sizeof(even));
    std::memcpy(dl + j + 1, &odd, sizeof(odd));
    if (j + 8 == pairs) break;
  }
}
#endif

// The parity blocks of output rows [a0, a1) of an (h, w) plane, out_w = wo
// (DepthwisePlanes::split_): input rows 2 a0 - 1 .. 2 a1 - 1, those inside the plane, in
// memory order. When w is even each row writes dl[wo] past its end (its last odd column): that
// is the next row's dl[0], zeroed when that row is written, or past the block's last row.
// Rows up to in_end (the next planes' too) are prefetched: stopping at the plane's end left
// the 192 x 52 x 52 forward at 0.16 ms against 0.13.
template <typename Dtype>
FASSST_AVX2_CLONES void SplitRowsS2(int h, int w, int wo, int a0, int a1, const Dtype* in,
                                  const Dtype* in_end, Dtype* const* e, Dtype* const* ol) {
  const int pairs = w / 2;
  const int ahead = RowsAhead<Dtype>(w);
  const int last = static_cast<int>((in_end - in) / w) - ahead;  // rows that may prefetch
  const int end = std::min(h, 2 * a1);
  int y = 2 * a0;
  if (a0 > 0) {  // input row 2 a0 - 1: the odd blocks' first row
    const Dtype* r = in + (y - 1) * w;
    SplitRow(pairs, r, e[1], ol[1]);
    ol[1][0] = 0;
    if (w & 1) e[1][pairs] = r[w - 1];
  }
  // Then rows y (even blocks, row k) and y + 1 (odd blocks, row k + 1) two at a time, the
  // pointers stepped rather than recomputed (26-wide rows, stand-alone: 11 % less time).
  const Dtype* r = in + y * w;
  Dtype* de = e[0];
  Dtype* dl = ol[0];
  Dtype* oe = e[1] + wo;
  Dtype* odl = ol[1] + wo;
  for (; y < end; y += 2, r += 2 * w, de += wo, dl += wo, oe += wo, odl += wo) {
    if (y + 1 < last) Prefetch(r + ahead * w, 2 * w, 0);
    SplitRow(pairs, r, de, dl);
    dl[0] = 0;
    if (w & 1) de[pairs] = r[w - 1];
    if (y + 1 == end) break;
    SplitRow(pairs, r + w, oe, odl);
    odl[0] = 0;
    if (w & 1) oe[pairs] = r[2 * w - 1];
  }
}

// Bottom diff rows 2a (b0) and 2a + 1 (b1) from top diff rows a (t0) and a + 1 (t1), over the
// column pairs (2b, 2b + 1), b < n, whose right neighbour b + 1 is inside the top; w = the
// 3x3 filter. Input pixel (2a + i, 2b + j) receives the taps of parity (i, j) (see the layout
// comment).
template <typename Dtype>
inline void BackwardDataRowPair(int n, const Dtype* w, const Dtype* __restrict__ t0,
                                const Dtype* __restrict__ t1, Dtype* __restrict__ b0,
                                Dtype* __restrict__ b1) {
  const Dtype w00 = w[0], w01 = w[1], w02 = w[2], w10 = w[3], w11 = w[4], w12 = w[5],
              w20 = w[6], w21 = w[7], w22 = w[8];
  for (int b = 0; b < n; ++b) {
    b0[2 * b] = w11 * t0[b];
    b0[2 * b + 1] = w12 * t0[b] + w10 * t0[b + 1];
    b1[2 * b] = w21 * t0[b] + w01 * t1[b];
    b1[2 * b + 1] = w22 * t0[b] + w20 * t0[b + 1] + w02 * t1[b] + w00 * t1[b + 1];
  }
}

#ifdef DEPTHWISE_SHUFFLE
// The same for float rows, 8 column pairs at a time (the same sums in the same order), the two
// parities interleaved by vector shuffles; the last 8 overlap the ones before instead of a
// scalar tail (576 x 26 x 26, by perf samples: 0.079 -> 0.067 ms).
inline void BackwardDataRowPair(int n, const float* w, const float* __restrict__ t0,
                                const float* __restrict__ t1, float* __restrict__ b0,
                                float* __restrict__ b1) {
  if (n < 8) {
    BackwardDataRowPair<float>(n, w, t0, t1, b0, b1);
    return;
  }
  const float w00 = w[0], w01 = w[1], w02 = w[2], w10 = w[3], w11 = w[4], w12 = w[5],
              w20 = w[6], w21 = w[7], w22 = w[8];
  for (int b = 0;; b += 8) {
    if (b + 8 > n) b = n - 8;
    Float8 t0b, t0r, t1b, t1r;  // top rows a and a + 1 at columns b.. and b + 1..
    std::memcpy(&t0b, t0 + b, sizeof(t0b));
    std::memcpy(&t0r, t0 + b + 1, sizeof(t0r));
    std::memcpy(&t1b, t1 + b, sizeof(t1b));
    std::memcpy(&t1r, t1 + b + 1, sizeof(t1r));
    const Float8 ee = w11 * t0b;
    const Float8 eo = w12 * t0b + w10 * t0r;
    const Float8 oe = w21 * t0b + w01 * t1b;
    const Float8 oo = w22 * t0b + w20 * t0r + w02 * t1b + w00 * t1r;
    const Float8 b0lo = __builtin_shufflevector(ee, eo, 0, 8, 1, 9, 2, 10, 3, 11);
    const Float8 b0hi = __builtin_shufflevector(ee, eo, 4, 12, 5, 13, 6, 14, 7, 15);
    const Float8 b1lo = __builtin_shufflevector(oe, oo, 0, 8, 1, 9, 2, 10, 3, 11);
    const Float8 b1hi = __builtin_shufflevector(oe, oo, 4, 12, 5, 13, 6, 14, 7, 15);
    std::memcpy(b0 + 2 * b, &b0lo, sizeof(b0lo));
    std::memcpy(b0 + 2 * b + 8, &b0hi, sizeof(b0hi));
    std::memcpy(b1 + 2 * b, &b1lo, sizeof(b1lo));
    std::memcpy(b1 + 2 * b + 8, &b1hi, sizeof(b1hi));
    if (b + 8 == n) break;
  }
}
#endif

// 3x3 pad 1 stride 2 forward of a narrow plane (kFusedMaxWidth) straight from the input: see
// ForwardS2Fused. Double and other widths take the split path (returns false).
template <typename Dtype>
inline bool ForwardS2Fused(int, int, const Dtype*, const Dtype*, Dtype, Dtype*) {
  return false;
}

#ifdef DEPTHWISE_SHUFFLE
// The widest plane ForwardS2Fused takes. On 26-wide planes (576 x 26 at 416) the split path
// spent half its time writing and re-reading the parity blocks and a tenth on the last-column
// fix-up, per plane set-up on top: this path keeps the deinterleaved rows in registers.
const int kFusedMaxWidth = 32;

// Input row r's taps for outputs j .. j + 7: e (column 2 ox), o (2 ox + 1) and l (2 ox - 1,
// zero left of the plane), from two 8-float loads and shuffles.
inline void TapsS2(const float* r, int j, Float8* l, Float8* e, Float8* o) {
  Float8 a, b;
  std::memcpy(&a, r + 2 * j, sizeof(a));
  std::memcpy(&b, r + 2 * j + 8, sizeof(b));
  *e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
  *o = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
  const Float8 prev = Float8{} + (j > 0 ? r[2 * j - 1] : 0.f);
  *l = __builtin_shufflevector(*o, prev, 8, 0, 1, 2, 3, 4, 5, 6);
}

// Float planes of even width w = 2 wo, 8 <= wo, w <= kFusedMaxWidth: output rows in blocks of 8
// columns (the last block overlapping the one before rather than a scalar tail), each from its
// three input rows' taps, the lowest row's kept for the next output row. The sum runs in the
// split path's tap order; the last column's right taps are read as an odd column here (the
// split path adds them after), so that column may differ from it by rounding.
FASSST_AVX2_CLONES bool ForwardS2Fused(int h, int w, const float* in, const float* wt,
                                     float bias, float* out) {
  const int wo = w / 2, ho = (h + 1) / 2;
  if ((w & 1) || wo < 8 || w > kFusedMaxWidth) return false;
  Float8 k[9];
  for (int m = 0; m < 9; ++m) k[m] = Float8{} + wt[m];
  const Float8 zero = {};
  for (int j = 0;; j += 8) {
    if (j + 8 > wo) j = wo - 8;
    Float8 l0 = zero, e0 = zero, o0 = zero;  // input row 2 oy - 1: padding for oy = 0
    for (int oy = 0; oy < ho; ++oy) {
      const float* r = in + 2 * oy * w;
      Float8 l1, e1, o1, l2 = zero, e2 = zero, o2 = zero;
      TapsS2(r, j, &l1, &e1, &o1);
      if (2 * oy + 1 < h) TapsS2(r + w, j, &l2, &e2, &o2);
      Float8 v = bias + k[0] * l0;
      v += k[1] * e0;
      v += k[2] * o0;
      v += k[3] * l1;
      v += k[4] * e1;
      v += k[5] * o1;
      v += k[6] * l2;
      v += k[7] * e2;
      v += k[8] * o2;
      std::memcpy(out + oy * wo + j, &v, sizeof(v));
      l0 = l2;
      e0 = e2;
      o0 = o2;
    }
    if (j + 8 == wo) break;
  }
  return true;
}
#endif

// The bottom diff (h, w) of a 3x3 pad 1 stride 2 plane from its top diff (ho, wo), row pair by
// row pair; `zero` stands for top row ho, `spare` takes bottom row h (h odd).
template <typename Dtype>
FASSST_AVX2_CLONES void BackwardDataRowsS2(int h, int w, int ho, int wo, const Dtype* top,
                                         const Dtype* wt, const Dtype* zero, Dtype* spare,
                                         Dtype* bottom) {
  const int inner = (w & 1) ? w / 2 : w / 2 - 1;
  const int ahead = RowsAhead<Dtype>(2 * w);  // row pairs
  for (int a = 0; a < ho; ++a) {
    const Dtype* t0 = top + a * wo;
    const Dtype* t1 = a + 1 < ho ? t0 + wo : zero;
    Dtype* b0 = bottom + 2 * a * w;
    Dtype* b1 = 2 * a + 1 < h ? b0 + w : spare;
    if (2 * (a + ahead) + 1 < h) Prefetch(b0 + 2 * ahead * w, 2 * w, 1);
    BackwardDataRowPair(inner, wt, t0, t1, b0, b1);
    const int b = inner;  // the last column, or pair of columns when w is even
    b0[2 * b] = wt[4] * t0[b];
    b1[2 * b] = wt[7] * t0[b] + wt[1] * t1[b];
    if (!(w & 1)) {
      b0[2 * b + 1] = wt[5] * t0[b];
      b1[2 * b + 1] = wt[8] * t0[b] + wt[2] * t1[b];
    }
  }
}

// General layout: one row `src` (input coordinates 0..in-1) into its phase rows dst[r]
// (a.len values each), zero where the padded coordinate lies outside the input.
template <typename Dtype>
void PadRow(const DepthwiseAxis& a, const Dtype* src, Dtype* const* dst) {
  const int s = a.stride, pad = a.pad, len = a.len;
  const int* lo = &a.read_lo[0];
  const int* hi = &a.read_hi[0];
  if (s == 1) {
    std::fill(dst[0], dst[0] + lo[0], Dtype(0));
    std::copy(src + lo[0] - pad, src + hi[0] - pad, dst[0] + lo[0]);
    std::fill(dst[0] + hi[0], dst[0] + len, Dtype(0));
  } else if (s == 2) {
    // Both phases in one pass: a deinterleaving loop over the indices both have.
    Dtype* __restrict__ d0 = dst[0];
    Dtype* __restrict__ d1 = dst[1];
    const int a0 = std::max(lo[0], lo[1]), b0 = std::max(a0, std::min(hi[0], hi[1]));
    std::fill(d0, d0 + lo[0], Dtype(0));
    std::fill(d1, d1 + lo[1], Dtype(0));
    for (int j = lo[0]; j < a0; ++j) d0[j] = src[2 * j - pad];
    for (int j = lo[1]; j < a0; ++j) d1[j] = src[2 * j + 1 - pad];
    const Dtype* __restrict__ p = src + 2 * a0 - pad;
    for (int j = 0; j < b0 - a0; ++j) {
      d0[a0 + j] = p[2 * j];
      d1[a0 + j] = p[2 * j + 1];
    }
    for (int j = b0; j < hi[0]; ++j) d0[j] = src[2 * j - pad];
    for (int j = b0; j < hi[1]; ++j) d1[j] = src[2 * j + 1 - pad];
    std::fill(d0 + hi[0], d0 + len, Dtype(0));
    std::fill(d1 + hi[1], d1 + len, Dtype(0));
  } else {
    for (int r = 0; r < s; ++r) {
      for (int j = 0; j < len; ++j) {
        const int x = j * s + r - pad;
        dst[r][j] = x >= 0 && x < a.in ? src[x] : Dtype(0);
      }
    }
  }
}

// The inverse: input row `dst` from its phase rows src[r] (indices past a.len count as 0).
template <typename Dtype>
void UnpadRow(const DepthwiseAxis& a, const Dtype* const* src, Dtype* dst) {
  const int s = a.stride, pad = a.pad;
  if (s == 1) {
    const int end = std::min(a.hi[0], a.len);
    std::copy(src[0] + a.lo[0], src[0] + end, dst + a.lo[0] - pad);
    std::fill(dst + end - pad, dst + a.in, Dtype(0));
  } else if (s == 2) {
    const Dtype* __restrict__ s0 = src[0];
    const Dtype* __restrict__ s1 = src[1];
    const int e0 = std::max(a.lo[0], std::min(a.hi[0], a.len));
    const int e1 = std::max(a.lo[1], std::min(a.hi[1], a.len));
    const int a0 = std::max(a.lo[0], a.lo[1]), b0 = std::max(a0, std::min(e0, e1));
    for (int j = a.lo[0]; j < a0; ++j) dst[2 * j - pad] = s0[j];
    for (int j = a.lo[1]; j < a0; ++j) dst[2 * j + 1 - pad] = s1[j];
    Dtype* __restrict__ d = dst + 2 * a0 - pad;
    for (int j = 0; j < b0 - a0; ++j) {
      d[2 * j] = s0[a0 + j];
      d[2 * j + 1] = s1[a0 + j];
    }
    for (int j = b0; j < e0; ++j) dst[2 * j - pad] = s0[j];
    for (int j = b0; j < e1; ++j) dst[2 * j + 1 - pad] = s1[j];
    for (int j = e0; j < a.hi[0]; ++j) dst[2 * j - pad] = Dtype(0);
    for (int j = e1; j < a.hi[1]; ++j) dst[2 * j + 1 - pad] = Dtype(0);
  } else {
    for (int r = 0; r < s; ++r) {
      for (int j = a.lo[r]; j < a.hi[r]; ++j) {
        dst[j * s + r - pad] = j < a.len ? src[r][j] : Dtype(0);
      }
    }
  }
}

// Rounds n up to whole cache lines of floats, for the blocks of split_.
inline int round16(int n) { return (n + 15) / 16 * 16; }

// Outputs per band of the stride-2 split: its blocks (about 16 bytes per output) stay in the L1
// cache between the split and the runs that read them. With the whole plane in one band a cold
// 144 x 104 x 104 input took 0.65 ms, with bands of 256 outputs 0.40 (bands of 512: 0.48).
const int kBandOutputs = 256;

}  // namespace

DepthwiseAxis MakeDepthwiseAxis(int in, int out, int kernel, int stride, int pad,
                                int dilation) {
  DepthwiseAxis a;
  a.in = in;
  a.out = out;
  a.stride = stride;
  a.pad = pad;
  a.shift_max = (kernel - 1) * dilation / stride;
  a.len = out + a.shift_max;
  for (int k = 0; k < kernel; ++k) {
    a.phase.push_back(k * dilation % stride);
    a.shift.push_back(k * dilation / stride);
  }
  for (int r = 0; r < stride; ++r) {
    a.lo.push_back(std::max(0, ceil_div(pad - r, stride)));
    a.hi.push_back(std::max(a.lo.back(), ceil_div(in + pad - r, stride)));
    a.read_lo.push_back(std::min(a.len, a.lo.back()));
    a.read_hi.push_back(std::max(a.read_lo.back(), std::min(a.len, a.hi.back())));
  }
  return a;
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::Reshape(const DepthwiseGeometry& g) {
  g_ = g;
  const bool k3 = g.kernel_h == 3 && g.kernel_w == 3 && g.pad_h == 1 && g.pad_w == 1 &&
                  g.dilation_h == 1 && g.dilation_w == 1;
  if (k3 && g.stride_h == 1 && g.stride_w == 1) {
    path_ = k3x3Stride1;
  } else if (k3 && g.stride_h == 2 && g.stride_w == 2) {
    path_ = k3x3Stride2;
  } else {
    path_ = kGeneral;
  }
  zero_.assign(std::max(g.width, g.out_w) + 1, Dtype(0));
  if (path_ == k3x3Stride1) {
    left_.resize(g.height * g.width);
    right_.resize(g.height * g.width);
  } else if (path_ == k3x3Stride2) {
    band_ = std::max(1, std::min(g.out_h, kBandOutputs / g.out_w));
    // +1: the value past a block's last row, which the right taps read (zero).
    const int even = round16(band_ * g.out_w + 1), odd = round16((band_ + 1) * g.out_w + 1);
    split_.assign(2 * (even + odd), Dtype(0));  // zero: the odd blocks' first row stays so
    spare_.resize(g.width);
    Dtype* p = &split_[0];
    const int block[2] = {even, odd};
    for (int parity = 0; parity < 2; ++parity) {
      e_[parity] = p;
      ol_[parity] = p + block[parity];
      p += 2 * block[parity];
    }
  } else {
    ay_ = MakeDepthwiseAxis(g.height, g.out_h, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
    ax_ = MakeDepthwiseAxis(g.width, g.out_w, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
    const int tlen = g.out_w + 2 * ax_.shift_max;
    padded_.resize(ay_.stride * ax_.stride * ay_.len * ax_.len);
    tcol_.resize(g.out_h * ax_.len);
    top_pad_.resize((g.out_h + 2 * ay_.shift_max) * tlen);
    scratch_.resize(std::max(g.out_h * ax_.len, ay_.stride * ax_.stride * ay_.len * tlen));
    run_w_.resize(g.kernel_h * g.kernel_w);
    run_src_.resize(g.kernel_h * g.kernel_w);
    row_ptr_.resize(ax_.stride);
    row_cptr_.resize(ax_.stride);
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::Forward(const Dtype* bottom, const Dtype* weight, const Dtype* bias,
                                     Dtype* top) {
  const int planes = g_.num * g_.channels, taps = g_.kernel_h * g_.kernel_w;
  const int in_size = g_.height * g_.width, out_size = g_.out_h * g_.out_w;
  const Dtype* bottom_end = bottom + planes * in_size;
  for (int p = 0; p < planes; ++p) {
    const int c = p % g_.channels;
    ForwardPlane(bottom + p * in_size, bottom_end, weight + c * taps, bias ? bias[c] : Dtype(0),
                 top + p * out_size);
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::Backward(const Dtype* top_diff, const Dtype* bottom,
    const Dtype* weight, Dtype* bias_diff, Dtype* weight_diff, Dtype* bottom_diff) {
  const int planes = g_.num * g_.channels, taps = g_.kernel_h * g_.kernel_w;
  const int in_size = g_.height * g_.width, out_size = g_.out_h * g_.out_w;
  const Dtype* bottom_end = bottom + planes * in_size;
  // Plane by plane, all three gradients while that plane's top diff is in the cache.
  for (int p = 0; p < planes; ++p) {
    const int c = p % g_.channels;
    const Dtype* t = top_diff + p * out_size;
    if (bias_diff) bias_diff[c] += Sum8(out_size, t);
    if (weight_diff) {
      BackwardWeightPlane(bottom + p * in_size, bottom_end, t, weight_diff + c * taps);
    }
    if (bottom_diff) BackwardDataPlane(t, weight + c * taps, bottom_diff + p * in_size);
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::ForwardPlane(const Dtype* in, const Dtype* in_end,
                                          const Dtype* weight, Dtype bias, Dtype* out) {
  if (path_ == k3x3Stride1) {
    ForwardS1(in, weight, bias, out);
  } else if (path_ == k3x3Stride2) {
    if (ForwardS2Fused(g_.height, g_.width, in, weight, bias, out)) return;
    const int wo = g_.out_w;
    const Dtype* src[9];
    RunsS2(src);
    for (int a0 = 0; a0 < g_.out_h; a0 += band_) {
      const int a1 = std::min(g_.out_h, a0 + band_);
      SplitS2(in, in_end, a0, a1);
      SumRunsFixed<9, true>((a1 - a0) * wo, weight, src, bias, out + a0 * wo);
    }
    if (!(g_.width & 1)) {  // the right taps of output column Wo - 1 (input column W - 1)
      const int h = g_.height, w = g_.width;
      const Dtype* col = in + w - 1;
      for (int oy = 0, y = 0; oy < g_.out_h; ++oy, y += 2) {  // input rows y - 1, y, y + 1
        Dtype sum = weight[5] * col[y * w];
        if (y > 0) sum += weight[2] * col[(y - 1) * w];
        if (y + 1 < h) sum += weight[8] * col[(y + 1) * w];
        out[oy * wo + wo - 1] += sum;
      }
    }
  } else {
    ForwardGeneral(in, weight, bias, out);
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::BackwardWeightPlane(const Dtype* in, const Dtype* in_end,
                                                 const Dtype* top_diff, Dtype* weight_diff) {
  if (path_ == kGeneral) {
    BackwardWeightGeneral(in, top_diff, weight_diff);
    return;
  }
  Dtype acc[9][8] = {};
  const Dtype* src[9];
  if (path_ == k3x3Stride1) {
    ShiftColumns(in);
    const int h = g_.height, w = g_.width;
    const int rows[4] = {0, 1, std::max(1, h - 1), h};  // row 0, rows 1 .. H - 2, row H - 1
    for (int r = 0; r < 3; ++r) {
      if (rows[r] >= rows[r + 1]) continue;
      RunsS1(in, rows[r], rows[r + 1], src);
      DotRuns9((rows[r + 1] - rows[r]) * w, top_diff + rows[r] * w, src, acc);
    }
  } else {
    const int wo = g_.out_w;
    RunsS2(src);
    for (int a0 = 0; a0 < g_.out_h; a0 += band_) {
      const int a1 = std::min(g_.out_h, a0 + band_);
      SplitS2(in, in_end, a0, a1);
      DotRuns9((a1 - a0) * wo, top_diff + a0 * wo, src, acc);
    }
  }
  for (int m = 0; m < 9; ++m) {
    Dtype sum = 0;
    for (int k = 0; k < 8; ++k) sum += acc[m][k];
    weight_diff[m] += sum;
  }
  if (path_ == k3x3Stride2 && !(g_.width & 1)) {  // the right taps at output column Wo - 1
    const int h = g_.height, w = g_.width, wo = g_.out_w;
    const Dtype* col = in + w - 1;
    Dtype sum[3] = {0, 0, 0};
    for (int oy = 0, y = 0; oy < g_.out_h; ++oy, y += 2) {  // input rows y - 1, y, y + 1
      const Dtype t = top_diff[oy * wo + wo - 1];
      if (y > 0) sum[0] += t * col[(y - 1) * w];
      sum[1] += t * col[y * w];
      if (y + 1 < h) sum[2] += t * col[(y + 1) * w];
    }
    for (int ky = 0; ky < 3; ++ky) weight_diff[3 * ky + 2] += sum[ky];
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::BackwardDataPlane(const Dtype* top_diff, const Dtype* weight,
                                               Dtype* bottom_diff) {
  if (path_ == k3x3Stride1) {
    Dtype turned[9];
    for (int m = 0; m < 9; ++m) turned[m] = weight[8 - m];
    ForwardS1(top_diff, turned, Dtype(0), bottom_diff);
  } else if (path_ == k3x3Stride2) {
    BackwardDataRowsS2(g_.height, g_.width, g_.out_h, g_.out_w, top_diff, weight, &zero_[0],
                       &spare_[0], bottom_diff);
  } else {
    BackwardDataGeneral(top_diff, weight, bottom_diff);
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::ShiftColumns(const Dtype* plane) {
  const int h = g_.height, w = g_.width, n = h * w;
  Dtype* l = &left_[0];
  Dtype* r = &right_[0];
  l[0] = 0;
  std::copy(plane, plane + n - 1, l + 1);
  std::copy(plane + 1, plane + n, r);
  r[n - 1] = 0;
  for (int y = 1; y < h; ++y) {
    l[y * w] = 0;
    r[y * w - 1] = 0;
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::RunsS1(const Dtype* centre, int y0, int y1,
                                    const Dtype** src) const {
  // Kernel row ky reads plane rows y0 + ky - 1 .. y1 + ky - 2; a range that would read a row
  // outside is a single row (0 or H - 1) and reads zero_ there.
  const int h = g_.height, w = g_.width;
  const Dtype* planes[3] = {&left_[0], centre, &right_[0]};
  for (int ky = 0; ky < 3; ++ky) {
    const int y = y0 + ky - 1;
    const bool inside = y >= 0 && y1 + ky - 1 <= h;
    for (int kx = 0; kx < 3; ++kx) src[3 * ky + kx] = inside ? planes[kx] + y * w : &zero_[0];
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::ForwardS1(const Dtype* in, const Dtype* weight, Dtype bias,
                                       Dtype* out) {
  ShiftColumns(in);
  const int h = g_.height, w = g_.width;
  const int rows[4] = {0, 1, std::max(1, h - 1), h};  // row 0, rows 1 .. H - 2, row H - 1
  const Dtype* src[9];
  for (int r = 0; r < 3; ++r) {
    if (rows[r] >= rows[r + 1]) continue;
    RunsS1(in, rows[r], rows[r + 1], src);
    SumRunsFixed<9, true>((rows[r + 1] - rows[r]) * w, weight, src, bias, out + rows[r] * w);
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::SplitS2(const Dtype* in, const Dtype* in_end, int a0, int a1) {
  const int rows = a1 - a0, wo = g_.out_w;
  SplitRowsS2(g_.height, g_.width, wo, a0, a1, in, in_end, e_, ol_);
  if (a0 == 0) {  // input row -1 is padding
    std::fill(e_[1], e_[1] + wo, Dtype(0));
    std::fill(ol_[1], ol_[1] + wo, Dtype(0));
  }
  if (2 * a1 - 1 >= g_.height) {  // input row H too (H odd); a row may have spilled into it
    std::fill(e_[1] + rows * wo, e_[1] + (rows + 1) * wo, Dtype(0));
    std::fill(ol_[1] + rows * wo, ol_[1] + (rows + 1) * wo, Dtype(0));
  }
  ol_[0][rows * wo] = 0;  // past the blocks' last rows, where the last row may have spilled
  ol_[1][(rows + 1) * wo] = 0;
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::RunsS2(const Dtype** src) const {
  // Kernel row 0 reads odd-block row oy (input row 2 oy - 1), row 1 even-block row oy, row 2
  // odd-block row oy + 1; columns 2 ox - 1, 2 ox, 2 ox + 1 are ol_, e_, ol_ + 1 at ox. The last
  // of these reads, at ox = Wo - 1, the next row's leading zero: right for an odd width (column
  // W is padding), for an even one the caller adds column W - 1 (a third store per pair, into
  // a separate array, made the split 1.6-1.7x slower).
  const int wo = g_.out_w;
  const Dtype* runs[9] = {ol_[1], e_[1], ol_[1] + 1, ol_[0], e_[0], ol_[0] + 1,
                          ol_[1] + wo, e_[1] + wo, ol_[1] + wo + 1};
  std::copy(runs, runs + 9, src);
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::PadPlane(const Dtype* in) {
  // Input rows in order (a plain stream from memory; going phase by phase would read every
  // other row); rows of the y padding are zero.
  const int sh = ay_.stride, sw = ax_.stride, rows = ay_.len, len = ax_.len;
  Dtype** dst = &row_ptr_[0];
  for (int ry = 0; ry < sh; ++ry) {
    const int lo = std::min(rows, ay_.lo[ry]), hi = std::max(lo, std::min(rows, ay_.hi[ry]));
    for (int rx = 0; rx < sw; ++rx) {
      Dtype* block = &padded_[(ry * sw + rx) * rows * len];
      std::fill(block, block + lo * len, Dtype(0));
      std::fill(block + hi * len, block + rows * len, Dtype(0));
    }
  }
  for (int y = 0; y < g_.height; ++y) {
    const int ry = (y + ay_.pad) % sh, i = (y + ay_.pad) / sh;
    if (i >= rows) continue;  // a row no tap reads
    for (int rx = 0; rx < sw; ++rx) dst[rx] = &padded_[((ry * sw + rx) * rows + i) * len];
    if (y + 2 < g_.height) Prefetch(in + (y + 2) * g_.width, g_.width, 0);
    PadRow(ax_, in + y * g_.width, dst);
  }
}

template <typename Dtype>
const Dtype* DepthwisePlanes<Dtype>::TapRun(int ky, int kx) const {
  const int block = ay_.phase[ky] * ax_.stride + ax_.phase[kx];
  return &padded_[((block * ay_.len) + ay_.shift[ky]) * ax_.len + ax_.shift[kx]];
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::ForwardGeneral(const Dtype* in, const Dtype* weight, Dtype bias,
                                            Dtype* out) {
  PadPlane(in);
  const int kh = g_.kernel_h, kw = g_.kernel_w, wo = g_.out_w, len = ax_.len;
  for (int ky = 0; ky < kh; ++ky) {
    for (int kx = 0; kx < kw; ++kx) {
      run_w_[ky * kw + kx] = weight[ky * kw + kx];
      run_src_[ky * kw + kx] = TapRun(ky, kx);
    }
  }
  const int n = (g_.out_h - 1) * len + wo;
  if (len == wo) {
    SumRuns(n, kh * kw, &run_w_[0], &run_src_[0], bias, out);
    return;
  }
  SumRuns(n, kh * kw, &run_w_[0], &run_src_[0], bias, &scratch_[0]);
  for (int oy = 0; oy < g_.out_h; ++oy) {
    if (oy + 2 < g_.out_h) Prefetch(out + (oy + 2) * wo, wo, 1);
    std::copy(&scratch_[oy * len], &scratch_[oy * len] + wo, out + oy * wo);
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::BackwardWeightGeneral(const Dtype* in, const Dtype* top_diff,
                                                   Dtype* weight_diff) {
  PadPlane(in);
  const int kh = g_.kernel_h, kw = g_.kernel_w, wo = g_.out_w, len = ax_.len;
  const Dtype* t = top_diff;
  if (len != wo) {  // the top diff with rows len apart and zeros between, as the runs read
    for (int oy = 0; oy < g_.out_h; ++oy) {
      std::copy(top_diff + oy * wo, top_diff + (oy + 1) * wo, &tcol_[oy * len]);
      std::fill(&tcol_[oy * len] + wo, &tcol_[oy * len] + len, Dtype(0));
    }
    t = &tcol_[0];
  }
  const int n = (g_.out_h - 1) * len + wo;
  for (int ky = 0; ky < kh; ++ky) {
    for (int kx = 0; kx < kw; ++kx) {
      Dtype acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      Dot8(n, t, TapRun(ky, kx), acc);
      Dtype sum = 0;
      for (int lane = 0; lane < 8; ++lane) sum += acc[lane];
      weight_diff[ky * kw + kx] += sum;
    }
  }
}

template <typename Dtype>
void DepthwisePlanes<Dtype>::BackwardDataGeneral(const Dtype* top_diff, const Dtype* weight,
                                                 Dtype* bottom_diff) {
  // Bottom phase (ry, rx), index (i, j) sums w[ky][kx] top_diff[i - shift_y][j - shift_x] over
  // the taps of that phase: runs of the top diff zero-padded by shift_max on every side, whose
  // rows are tlen apart; so are the results in scratch_ (one block per phase).
  const int kh = g_.kernel_h, kw = g_.kernel_w, sh = ay_.stride, sw = ax_.stride;
  const int tlen = g_.out_w + 2 * ax_.shift_max, trows = g_.out_h + 2 * ay_.shift_max;
  std::fill(top_pad_.begin(), top_pad_.begin() + ay_.shift_max * tlen, Dtype(0));
  for (int oy = 0; oy < g_.out_h; ++oy) {
    if (oy + 2 < g_.out_h) Prefetch(top_diff + (oy + 2) * g_.out_w, g_.out_w, 0);
    Dtype* d = &top_pad_[(oy + ay_.shift_max) * tlen];
    std::fill(d, d + ax_.shift_max, Dtype(0));
    std::copy(top_diff + oy * g_.out_w, top_diff + (oy + 1) * g_.out_w, d + ax_.shift_max);
    std::fill(d + ax_.shift_max + g_.out_w, d + tlen, Dtype(0));
  }
  std::fill(top_pad_.begin() + (g_.out_h + ay_.shift_max) * tlen,
            top_pad_.begin() + trows * tlen, Dtype(0));
  const int block = ay_.len * tlen, n = (ay_.len - 1) * tlen + ax_.len;
  for (int ry = 0; ry < sh; ++ry) {
    for (int rx = 0; rx < sw; ++rx) {
      int count = 0;
      for (int ky = 0; ky < kh; ++ky) {
        if (ay_.phase[ky] != ry) continue;
        for (int kx = 0; kx < kw; ++kx) {
          if (ax_.phase[kx] != rx) continue;
          run_w_[count] = weight[ky * kw + kx];
          run_src_[count++] = &top_pad_[(ay_.shift_max - ay_.shift[ky]) * tlen +
                                        ax_.shift_max - ax_.shift[kx]];
        }
      }
      SumRuns(n, count, &run_w_[0], &run_src_[0], Dtype(0), &scratch_[(ry * sw + rx) * block]);
    }
  }
  // Bottom rows in order, as PadPlane reads them.
  const Dtype** rows = &row_cptr_[0];
  for (int y = 0; y < g_.height; ++y) {
    const int ry = (y + ay_.pad) % sh, i = (y + ay_.pad) / sh;
    Dtype* dst = bottom_diff + y * g_.width;
    if (y + 2 < g_.height) Prefetch(dst + 2 * g_.width, g_.width, 1);
    if (i >= ay_.len) {  // a row no tap reads
      std::fill(dst, dst + g_.width, Dtype(0));
      continue;
    }
    for (int rx = 0; rx < sw; ++rx) rows[rx] = &scratch_[(ry * sw + rx) * block + i * tlen];
    UnpadRow(ax_, rows, dst);
  }
}

template class DepthwisePlanes<float>;
template class DepthwisePlanes<double>;

}  // namespace caffe
