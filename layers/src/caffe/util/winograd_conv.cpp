#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDACC__)
#include <immintrin.h>
#define WINOGRAD_AVX2_TRANSPOSE 1
#endif

#include "caffe/util/cpu_clones.hpp"
#include "caffe/util/math_functions.hpp"
#include "caffe/util/winograd_conv.hpp"

// F(4x4, 3x3) on the points 0, 1, -1, 2, -2 and infinity (Lavin and Gray's):
//   out tile = A^T [(G g G^T) .* (B^T d B)] A,  g the 3x3 filter, d the 6x6 input tile,
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// Each 2-D transform is its 1-D one down the columns, then along the rows. The data is laid out
// channels-last between the transforms, so every 1-D transform runs over a vector of channels
// (one loop the compiler vectorises) and the products are 36 plain GEMMs:
//   points[p]   (tiles x channels)    = B^T d B at point p of each tile,
//   filters[p]  (channels x outputs)  = G g G^T at point p of each filter,
//   products[p] (tiles x outputs)     = points[p] filters[p].
// Tiles go in chunks of whole images (kChunkFloats), which bounds the workspace and keeps a
// chunk's points and products near the cache between the passes.

namespace caffe {

namespace {

const int kTile = 4;   // output tile side
const int kSpan = 6;   // input tile side: kTile + 2
const int kPoints = kSpan * kSpan;

// A chunk's points and products hold about this many values each (32 MB of float, as much as
// the L3 here): the 416 net's tail (248 channels, 49 tiles per ROI) goes 18 ROIs at a time, the
// demo's (64 channels) whole. Measured at 416's shape: 1, 2, 4, 8, 16 M values took 0.46, 0.40,
// 0.40, 0.36, 0.36 of the im2col convolution's time (larger GEMMs outweigh the cache).
const int kChunkFloats = 8 << 20;

// The 1-D transforms over n channels. The pointers are restrict parameters (GCC ignores restrict
// on locals): only then does it vectorise the loops instead of reloading after every store.

// o0..o5 = B^T (d0..d5)
template <typename Dtype>
FASSST_AVX2_CLONES void InputTransform(int n, const Dtype* __restrict__ d0,
    const Dtype* __restrict__ d1, const Dtype* __restrict__ d2, const Dtype* __restrict__ d3,
    const Dtype* __restrict__ d4, const Dtype* __restrict__ d5, Dtype* __restrict__ o0,
    Dtype* __restrict__ o1, Dtype* __restrict__ o2, Dtype* __restrict__ o3,
    Dtype* __restrict__ o4, Dtype* __restrict__ o5) {
  for (int c = 0; c < n; ++c) {
    const Dtype a = d4[c] - d2[c], b = d3[c] - d1[c];
    o0[c] = Dtype(4) * d0[c] - Dtype(5) * d2[c] + d4[c];
    o1[c] = (d3[c] + d4[c]) - Dtype(4) * (d1[c] + d2[c]);
    o2[c] = (d4[c] - d3[c]) + Dtype(4) * (d1[c] - d2[c]);
    o3[c] = a + Dtype(2) * b;
    o4[c] = a - Dtype(2) * b;
    o5[c] = Dtype(4) * d1[c] - Dtype(5) * d3[c] + d5[c];
  }
}

// o0..o5 = G (g0..g2)
template <typename Dtype>
FASSST_AVX2_CLONES void FilterTransform(int n, const Dtype* __restrict__ g0,
    const Dtype* __restrict__ g1, const Dtype* __restrict__ g2, Dtype* __restrict__ o0,
    Dtype* __restrict__ o1, Dtype* __restrict__ o2, Dtype* __restrict__ o3,
    Dtype* __restrict__ o4, Dtype* __restrict__ o5) {
  for (int c = 0; c < n; ++c) {
    const Dtype even = g0[c] + g2[c];
    const Dtype quarter = g0[c] / Dtype(4) + g2[c];
    o0[c] = g0[c] / Dtype(4);
    o1[c] = -(even + g1[c]) / Dtype(6);
    o2[c] = -(even - g1[c]) / Dtype(6);
    o3[c] = (quarter + g1[c] / Dtype(2)) / Dtype(6);
    o4[c] = (quarter - g1[c] / Dtype(2)) / Dtype(6);
    o5[c] = g2[c];
  }
}

// o0..o3 = A^T (m0..m5) + add (add: a vector of n, e.g. the bias, or zeros)
template <typename Dtype>
FASSST_AVX2_CLONES void OutputTransform(int n, const Dtype* __restrict__ m0,
    const Dtype* __restrict__ m1, const Dtype* __restrict__ m2, const Dtype* __restrict__ m3,
    const Dtype* __restrict__ m4, const Dtype* __restrict__ m5, const Dtype* __restrict__ add,
    Dtype* __restrict__ o0, Dtype* __restrict__ o1, Dtype* __restrict__ o2,
    Dtype* __restrict__ o3) {
  for (int c = 0; c < n; ++c) {
    const Dtype s1 = m1[c] + m2[c], d1 = m1[c] - m2[c];
    const Dtype s2 = m3[c] + m4[c], d2 = m3[c] - m4[c];
    o0[c] = (m0[c] + s1 + s2) + add[c];
    o1[c] = (d1 + Dtype(2) * d2) + add[c];
    o2[c] = (s1 + Dtype(4) * s2) + add[c];
    o3[c] = (d1 + Dtype(8) * d2 + m5[c]) + add[c];
  }
}

// The same on vectors a fixed distance apart: inputs `in` + k `from`, outputs `out` + k `to`.
template <typename Dtype>
inline void InputTransform(int n, const Dtype* in, size_t from, Dtype* out, size_t to) {
  InputTransform(n, in, in + from, in + 2 * from, in + 3 * from, in + 4 * from, in + 5 * from,
                 out, out + to, out + 2 * to, out + 3 * to, out + 4 * to, out + 5 * to);
}

template <typename Dtype>
inline void FilterTransform(int n, const Dtype* in, size_t from, Dtype* out, size_t to) {
  FilterTransform(n, in, in + from, in + 2 * from, out, out + to, out + 2 * to, out + 3 * to,
                  out + 4 * to, out + 5 * to);
}

template <typename Dtype>
inline void OutputTransform(int n, const Dtype* in, size_t from, const Dtype* add, Dtype* out,
                            size_t to) {
  OutputTransform(n, in, in + from, in + 2 * from, in + 3 * from, in + 4 * from, in + 5 * from,
                  add, out, out + to, out + 2 * to, out + 3 * to);
}

// dst[j dst_ld + i] = src[i src_ld + j] for i < rows, j < cols: between Caffe's planes and the
// channels-last tiles. Element by element it cost as much as the transforms themselves (a
// strided load or store each); in 8 x 8 blocks of AVX2 shuffles it is a small part.
#ifdef WINOGRAD_AVX2_TRANSPOSE
__attribute__((target("avx2"))) void Transpose8x8(const float* s, size_t sld, float* d,
                                                  size_t dld) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + sld),
               r2 = _mm256_loadu_ps(s + 2 * sld), r3 = _mm256_loadu_ps(s + 3 * sld),
               r4 = _mm256_loadu_ps(s + 4 * sld), r5 = _mm256_loadu_ps(s + 5 * sld),
               r6 = _mm256_loadu_ps(s + 6 * sld), r7 = _mm256_loadu_ps(s + 7 * sld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
               t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
               t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
               u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
               u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
               u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
               u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)),
               u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
               u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)),
               u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + dld, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * dld, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * dld, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * dld, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * dld, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * dld, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * dld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Asked on first use, not in a static initialiser: libgcc's CPU model may not be set up yet
// while a shared library's initialisers run (hence __builtin_cpu_init).
bool HaveAvx2() {
  static const bool have = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
  return have;
}
#endif

template <typename Dtype>
void TransposeScalar(const Dtype* src, size_t src_ld, int i0, int rows, int j0, int cols,
                     Dtype* dst, size_t dst_ld) {
  for (int i = i0; i < rows; ++i)
    for (int j = j0; j < cols; ++j) dst[j * dst_ld + i] = src[i * src_ld + j];
}

template <typename Dtype>
void Transpose(const Dtype* src, size_t src_ld, int rows, int cols, Dtype* dst, size_t dst_ld) {
  TransposeScalar(src, src_ld, 0, rows, 0, cols, dst, dst_ld);
}

#ifdef WINOGRAD_AVX2_TRANSPOSE
template <>
void Transpose<float>(const float* src, size_t src_ld, int rows, int cols, float* dst,
                      size_t dst_ld) {
  if (!HaveAvx2()) return TransposeScalar(src, src_ld, 0, rows, 0, cols, dst, dst_ld);
  const int rows8 = rows & ~7, cols8 = cols & ~7;
  for (int i = 0; i < rows8; i += 8)
    for (int j = 0; j < cols8; j += 8)
      Transpose8x8(src + i * src_ld + j, src_ld, dst + j * dst_ld + i, dst_ld);
  TransposeScalar(src, src_ld, 0, rows8, cols8, cols, dst, dst_ld);  // right edge
  TransposeScalar(src, src_ld, rows8, rows, 0, cols, dst, dst_ld);   // bottom edge
}
#endif

// Grow-only buffers, one set per calling thread: they are megabytes, and allocating them afresh
// on each forward would fault their pages in again every time. The transforms' scratch is per
// worker (below).
template <typename Dtype>
struct WorkerBuffers {
  std::vector<Dtype> padded, scratch, gathered, band;
};

template <typename Dtype>
struct Workspace {
  std::vector<Dtype> filters, points, products, zeros;
  std::vector<WorkerBuffers<Dtype> > workers;
};

template <typename Dtype>
Workspace<Dtype>& ThreadWorkspace() {
  static thread_local Workspace<Dtype> w;
  return w;
}

template <typename Dtype>
Dtype* Sized(std::vector<Dtype>* v, size_t n) {
  if (v->size() < n) v->resize(n);
  return v->data();
}

// The transforms run on every core (the GEMMs already do, inside OpenBLAS): job(w) for
// w < workers, on fresh threads and the caller. Fresh threads, not a pool: a pool's sleeping
// threads would not survive a fork (Python's multiprocessing forks after forwards), and starting
// one costs tens of microseconds beside the transforms' milliseconds. Where no thread can be
// started (a process limit), that share runs on the caller instead.
template <typename Job>
void OnWorkers(int workers, const Job& job) {
  std::vector<std::thread> threads;
  std::vector<int> inline_jobs(1, 0);
  for (int w = 1; w < workers; ++w) {
    try {
      threads.emplace_back(job, w);
    } catch (const std::system_error&) {
      inline_jobs.push_back(w);
    }
  }
  for (size_t i = 0; i < inline_jobs.size(); ++i) job(inline_jobs[i]);
  for (size_t i = 0; i < threads.size(); ++i) threads[i].join();
}

// Worker w's share of [0, n): [Begin(w), Begin(w + 1)).
inline int Begin(int n, int workers, int w) {
  return static_cast<int>(static_cast<long long>(n) * w / workers);
}

// Fewer than this many tiles per worker and starting a thread costs more than it saves.
const int kTilesPerWorker = 64;

// filters[p] (channels x outputs) = G g G^T at point p, for every filter g of weight with an
// input channel in [c0, c1).
template <typename Dtype>
void TransformFilters(int outputs, int channels, const Dtype* weight, int c0, int c1,
                      WorkerBuffers<Dtype>* b, Dtype* filters) {
  Dtype* g = Sized(&b->gathered, static_cast<size_t>(9) * outputs);       // [3][3][outputs]
  Dtype* cols = Sized(&b->scratch, static_cast<size_t>(6 * 3) * outputs);  // [6][3][outputs]
  for (int c = c0; c < c1; ++c) {
    for (int o = 0; o < outputs; ++o)
      for (int k = 0; k < 9; ++k) g[k * outputs + o] = weight[(o * channels + c) * 9 + k];
    for (int j = 0; j < 3; ++j)  // down the columns: cols[k][j] = (G g)[k][j]
      FilterTransform(outputs, g + j * outputs, 3 * outputs, cols + j * outputs, 3 * outputs);
    for (int k = 0; k < 6; ++k)  // along the rows
      FilterTransform(outputs, cols + k * 3 * outputs, outputs,
                      filters + (static_cast<size_t>(k * 6) * channels + c) * outputs,
                      static_cast<size_t>(channels) * outputs);
  }
}

// Tile grid of one image.
struct Tiling {
  int rows, cols;      // tiles per column and per row
  int out_h, out_w;    // output size
  int span_h, span_w;  // padded input the tiles read: kTile * tiles + 2
};

template <typename Dtype>
WinogradConvShape ShapeOf(const Blob<Dtype>& bottom, int num_output, const int* pad) {
  const WinogradConvShape s = {bottom.shape(0), bottom.shape(1), bottom.shape(2),
                               bottom.shape(3), num_output, pad[0], pad[1]};
  return s;
}

Tiling TilingOf(const WinogradConvShape& s) {
  Tiling t;
  t.out_h = s.height + 2 * s.pad_h - 2;
  t.out_w = s.width + 2 * s.pad_w - 2;
  t.rows = (t.out_h + kTile - 1) / kTile;
  t.cols = (t.out_w + kTile - 1) / kTile;
  t.span_h = kTile * t.rows + 2;
  t.span_w = kTile * t.cols + 2;
  return t;
}

// padded = image n channels-last, zero padded to span_h x span_w (pad_h rows above, pad_w
// columns left; the rest of the span is zeros too, for tiles past the output's edge). The
// padded image stays in cache for the transform that follows.
template <typename Dtype>
void PadChannelsLast(const WinogradConvShape& s, const Tiling& t, const Dtype* bottom, int n,
                     Dtype* padded) {
  const int C = s.channels;
  const size_t row = static_cast<size_t>(t.span_w) * C;
  std::fill(padded, padded + s.pad_h * row, Dtype(0));
  for (int y = s.pad_h; y < s.pad_h + s.height; ++y) {
    Dtype* dst = padded + y * row;
    std::fill(dst, dst + static_cast<size_t>(s.pad_w) * C, Dtype(0));
    std::fill(dst + static_cast<size_t>(s.pad_w + s.width) * C, dst + row, Dtype(0));
  }
  std::fill(padded + (s.pad_h + s.height) * row, padded + t.span_h * row, Dtype(0));
  const size_t plane = static_cast<size_t>(s.height) * s.width;
  for (int y = 0; y < s.height; ++y)  // channels x width -> width x channels, row by row
    Transpose(bottom + static_cast<size_t>(n) * C * plane + y * s.width, plane, C, s.width,
              padded + (s.pad_h + y) * row + static_cast<size_t>(s.pad_w) * C, C);
}

// points[p][first + tile] = (B^T d B)[p] for each tile of the padded image.
template <typename Dtype>
void TransformInput(const WinogradConvShape& s, const Tiling& t, const Dtype* padded,
                    size_t first, size_t tiles, Dtype* points, Dtype* cols /* [6][6][C] */) {
  const int C = s.channels;
  const size_t row = static_cast<size_t>(t.span_w) * C;
  size_t tile = first;
  for (int ty = 0; ty < t.rows; ++ty)
    for (int tx = 0; tx < t.cols; ++tx, ++tile) {
      const Dtype* corner = padded + kTile * ty * row + static_cast<size_t>(kTile * tx) * C;
      for (int j = 0; j < kSpan; ++j)  // down the columns: cols[i][j] = (B^T d)[i][j]
        InputTransform(C, corner + j * C, row, cols + j * C, kSpan * C);
      for (int k = 0; k < kSpan; ++k)  // along the rows
        InputTransform(C, cols + k * kSpan * C, C,
                       points + (static_cast<size_t>(k * kSpan) * tiles + tile) * C, tiles * C);
    }
}

// Rows of tiles [q0, q1) of the chunk starting at image n0 (row q: image n0 + q / t.rows, tile
// row q % t.rows) = A^T products A + bias, cropped to the output. A row of tiles at a time goes to
// band ([4][4 cols][outputs]), then into the top plane by plane, so the top is written in order.
template <typename Dtype>
void TransformOutput(const WinogradConvShape& s, const Tiling& t, int n0, int q0, int q1,
                     const Dtype* products, size_t tiles, const Dtype* bias,
                     const Dtype* zeros, WorkerBuffers<Dtype>* b, Dtype* top) {
  const int O = s.num_output;
  const int band_w = kTile * t.cols;
  Dtype* cols = Sized(&b->scratch, static_cast<size_t>(kSpan * kSpan) * O);
  Dtype* band = Sized(&b->band, static_cast<size_t>(kTile) * band_w * O);
  const size_t plane = static_cast<size_t>(t.out_h) * t.out_w;
  for (int q = q0; q < q1; ++q) {
    const int n = n0 + q / t.rows, ty = q % t.rows;
    size_t tile = static_cast<size_t>(q) * t.cols;
    for (int tx = 0; tx < t.cols; ++tx, ++tile) {
      for (int l = 0; l < kSpan; ++l)  // down the columns: cols[i][l] = (A^T m)[i][l]
        OutputTransform(O, products + (static_cast<size_t>(l) * tiles + tile) * O,
                        kSpan * tiles * O, zeros, cols + l * O, kSpan * O);
      for (int i = 0; i < kTile; ++i)  // along the rows, plus the bias
        OutputTransform(O, cols + i * kSpan * O, O, bias,
                        band + (static_cast<size_t>(i) * band_w + kTile * tx) * O, O);
    }
    const int y0 = kTile * ty, rows = std::min(kTile, t.out_h - y0);
    for (int i = 0; i < rows; ++i)  // width x outputs -> outputs x width, row by row
      Transpose(band + static_cast<size_t>(i) * band_w * O, O, t.out_w, O,
                top + static_cast<size_t>(n) * O * plane + (y0 + i) * t.out_w, plane);
  }
}

}  // namespace

template <typename Dtype>
void winograd3x3_forward_cpu(const WinogradConvShape& s, const Dtype* bottom, const Dtype* weight,
                             const Dtype* bias, Dtype* top) {
  const Tiling t = TilingOf(s);
  CHECK_GT(t.out_h, 0) << "Winograd 3x3: output height " << t.out_h;
  CHECK_GT(t.out_w, 0) << "Winograd 3x3: output width " << t.out_w;
  const int C = s.channels, O = s.num_output;
  const int per_image = t.rows * t.cols;
  const int widest = std::max(C, O);
  const int images_per_chunk = std::max(1, kChunkFloats / (kPoints * per_image * widest));
  const int chunks = (s.num + images_per_chunk - 1) / images_per_chunk;
  const int images_max = (s.num + chunks - 1) / chunks;  // chunks as even as whole images allow
  const size_t tiles_max = static_cast<size_t>(images_max) * per_image;
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int workers =
      std::max(1, std::min(cores, static_cast<int>(tiles_max / kTilesPerWorker)));

  Workspace<Dtype>& w = ThreadWorkspace<Dtype>();
  if (static_cast<int>(w.workers.size()) < workers) w.workers.resize(workers);
  Dtype* filters = Sized(&w.filters, static_cast<size_t>(kPoints) * C * O);
  Dtype* points = Sized(&w.points, kPoints * tiles_max * C);
  Dtype* products = Sized(&w.products, kPoints * tiles_max * O);
  const Dtype* zeros = Sized(&w.zeros, O);  // only ever grown, with zeros
  const Dtype* add = bias ? bias : zeros;

  OnWorkers(workers, [&](int k) {
    TransformFilters(O, C, weight, Begin(C, workers, k), Begin(C, workers, k + 1),
                     &w.workers[k], filters);
  });
  for (int n0 = 0; n0 < s.num; n0 += images_max) {
    const int images = std::min(images_max, s.num - n0);
    const size_t tiles = static_cast<size_t>(images) * per_image;
    const int split = std::min(workers, images);
    OnWorkers(split, [&](int k) {
      WorkerBuffers<Dtype>& b = w.workers[k];
      Dtype* padded = Sized(&b.padded, static_cast<size_t>(t.span_h) * t.span_w * C);
      Dtype* cols = Sized(&b.scratch, static_cast<size_t>(kPoints) * C);
      for (int n = n0 + Begin(images, split, k); n < n0 + Begin(images, split, k + 1); ++n) {
        PadChannelsLast(s, t, bottom, n, padded);
        TransformInput(s, t, padded, static_cast<size_t>(n - n0) * per_image, tiles, points,
                       cols);
      }
    });
    for (int p = 0; p < kPoints; ++p)
      caffe_cpu_gemm<Dtype>(CblasNoTrans, CblasNoTrans, tiles, O, C, Dtype(1),
                            points + p * tiles * C, filters + static_cast<size_t>(p) * C * O,
                            Dtype(0), products + p * tiles * O);
    const int rows = images * t.rows;
    OnWorkers(workers, [&](int k) {
      TransformOutput(s, t, n0, Begin(rows, workers, k), Begin(rows, workers, k + 1), products,
                      tiles, add, zeros, &w.workers[k], top);
    });
  }
}

template <typename Dtype>
bool winograd3x3_layer_forward_cpu(const Blob<int>& kernel, const Blob<int>& stride,
                                   const Blob<int>& pad, const Blob<int>& dilation, int group,
                                   const Blob<Dtype>& weight, const Blob<Dtype>* bias,
                                   const std::vector<Blob<Dtype>*>& bottom,
                                   const std::vector<Blob<Dtype>*>& top) {
  if (kernel.count() != 2 || group != 1) return false;
  const int* k = kernel.cpu_data();
  const int* st = stride.cpu_data();
  const int* d = dilation.cpu_data();
  if (k[0] != 3 || k[1] != 3 || st[0] != 1 || st[1] != 1 || d[0] != 1 || d[1] != 1) return false;
  if (weight.shape(0) < kWinogradMinChannels || weight.shape(1) < kWinogradMinChannels)
    return false;
  const int* p = pad.cpu_data();
  for (size_t i = 0; i < bottom.size(); ++i) {
    // 2 spatial axes on a 4-D blob put the channels at axis 1, as this code reads them.
    if (bottom[i]->num_axes() != 4) return false;
    const Tiling t = TilingOf(ShapeOf(*bottom[i], weight.shape(0), p));
    if (bottom[i]->shape(0) * t.rows * t.cols < kWinogradMinTiles) return false;
  }
  for (size_t i = 0; i < bottom.size(); ++i)
    winograd3x3_forward_cpu(ShapeOf(*bottom[i], weight.shape(0), p), bottom[i]->cpu_data(),
                            weight.cpu_data(),
                            bias ? bias->cpu_data() : static_cast<const Dtype*>(NULL),
                            top[i]->mutable_cpu_data());
  return true;
}

template void winograd3x3_forward_cpu<float>(const WinogradConvShape&, const float*,
                                             const float*, const float*, float*);
template void winograd3x3_forward_cpu<double>(const WinogradConvShape&, const double*,
                                              const double*, const double*, double*);
template bool winograd3x3_layer_forward_cpu<float>(
    const Blob<int>&, const Blob<int>&, const Blob<int>&, const Blob<int>&, int,
    const Blob<float>&, const Blob<float>*, const std::vector<Blob<float>*>&,
    const std::vector<Blob<float>*>&);
template bool winograd3x3_layer_forward_cpu<double>(
    const Blob<int>&, const Blob<int>&, const Blob<int>&, const Blob<int>&, int,
    const Blob<double>&, const Blob<double>*, const std::vector<Blob<double>*>&,
    const std::vector<Blob<double>*>&);

}  // namespace caffe
