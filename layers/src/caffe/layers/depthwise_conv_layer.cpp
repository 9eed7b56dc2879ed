#include <algorithm>
#include <vector>

#include "caffe/filler.hpp"
#include "caffe/layers/depthwise_conv_layer.hpp"
#include "caffe/util/math_functions.hpp"

// CPU layout. Each (image, channel) plane is copied once into `padded_`, zero-padded and split
// by phase along both axes: padded coordinate p = i stride + r goes to phase r, index i (Axis).
// Tap k of output o then reads phase (k dilation) % stride at index o + (k dilation) / stride.
// With the rows of a phase block ax_.len apart, every tap reads one contiguous run of
// (Ho - 1) ax_.len + Wo values for the whole output plane (columns past Wo are dropped), also at
// stride 2: the plane is a weighted sum of 9 runs for a 3x3 kernel, one long loop the compiler
// vectorises (SumRuns), with no per-row work that would dominate the small deep-layer planes.
// The bottom diff is the same kind of sum read the other way (a gather, no scatter): each
// bottom phase block sums the runs of the zero-padded top diff of the taps in that phase. The
// weight gradient is one dot product per tap over the plane, in 8 partial sums (Dot8) so that
// it vectorises without -ffast-math.

namespace caffe {

namespace {

// Value of a repeated conv field: `repeated` with 0, 1 or 2 entries (Convolution's rule), unless
// the _h/_w form is given.
int conv_dim(const google::protobuf::RepeatedField<uint32_t>& repeated, bool has_hw,
             uint32_t hw, int axis, int fallback, const char* field, const string& name) {
  if (has_hw) {
    CHECK_EQ(repeated.size(), 0) << "DepthwiseConvolution " << name << ": give either " << field
        << " or " << field << "_h/_w, not both";
    return hw;
  }
  CHECK_LE(repeated.size(), 2) << "DepthwiseConvolution " << name << ": " << field
      << " takes 1 or 2 values (2-D only), got " << repeated.size();
  if (repeated.size() == 0) return fallback;
  return repeated.Get(repeated.size() == 1 ? 0 : axis);
}


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

// The arithmetic loops are also compiled for AVX2 (twice the SSE2 baseline's width), picked at
// load time on CPUs that have it (GCC function multi-versioning). No FMA: every clone does the
// same float operations in the same order, so results do not depend on the CPU.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__x86_64__)
#define DEPTHWISE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DEPTHWISE_CLONES
#endif

// a / b rounded up, for b > 0 and any sign of a.
inline int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -(-a / b); }

// d[i] (+)= init + sum_m w[m] src[m][i], i < n, for M <= 9 runs; FIRST writes, else adds.
template <int M, bool FIRST, typename Dtype>
DEPTHWISE_CLONES void SumRunsFixed(int n, const Dtype* w, const Dtype* const* src, Dtype init,
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
DEPTHWISE_CLONES void Dot8(int n, const Dtype* __restrict__ a, const Dtype* __restrict__ b, Dtype* acc) {
  Dtype r[8];
  for (int k = 0; k < 8; ++k) r[k] = acc[k];
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) r[k] += a[i + k] * b[i + k];
  }
  for (int k = 0; i < n; ++i, ++k) r[k] += a[i] * b[i];
  for (int k = 0; k < 8; ++k) acc[k] = r[k];
}

// sum of a[i], i < n, by the same eight partial sums.
template <typename Dtype>
DEPTHWISE_CLONES Dtype Sum8(int n, const Dtype* __restrict__ a) {
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

}  // namespace

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::LayerSetUp(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const ConvolutionParameter& p = this->layer_param_.convolution_param();
  const string& name = this->layer_param_.name();
  CHECK_EQ(bottom[0]->num_axes(), 4) << "DepthwiseConvolution " << name
      << ": bottom must be (N, C, H, W), got " << bottom[0]->shape_string();
  CHECK_EQ(p.axis(), 1) << "DepthwiseConvolution " << name << ": axis must be 1, got " << p.axis();
  const int channels = bottom[0]->channels();
  CHECK_EQ(p.num_output(), channels) << "DepthwiseConvolution " << name
      << ": num_output must equal the input channels (" << channels << "), got " << p.num_output();
  CHECK(!p.has_group() || p.group() == channels) << "DepthwiseConvolution " << name
      << ": group must equal the input channels (" << channels << ") or be left out, got "
      << p.group();
  g_.channels = channels;
  g_.kernel_h = conv_dim(p.kernel_size(), p.has_kernel_h() || p.has_kernel_w(), p.kernel_h(), 0,
                         0, "kernel", name);
  g_.kernel_w = conv_dim(p.kernel_size(), p.has_kernel_h() || p.has_kernel_w(), p.kernel_w(), 1,
                         0, "kernel", name);
  g_.stride_h = conv_dim(p.stride(), p.has_stride_h() || p.has_stride_w(), p.stride_h(), 0, 1,
                         "stride", name);
  g_.stride_w = conv_dim(p.stride(), p.has_stride_h() || p.has_stride_w(), p.stride_w(), 1, 1,
                         "stride", name);
  g_.pad_h = conv_dim(p.pad(), p.has_pad_h() || p.has_pad_w(), p.pad_h(), 0, 0, "pad", name);
  g_.pad_w = conv_dim(p.pad(), p.has_pad_h() || p.has_pad_w(), p.pad_w(), 1, 0, "pad", name);
  g_.dilation_h = conv_dim(p.dilation(), false, 0, 0, 1, "dilation", name);
  g_.dilation_w = conv_dim(p.dilation(), false, 0, 1, 1, "dilation", name);
  CHECK(g_.kernel_h > 0 && g_.kernel_w > 0) << "DepthwiseConvolution " << name
      << ": kernel must be > 0, got " << g_.kernel_h << " x " << g_.kernel_w;
  CHECK(g_.stride_h > 0 && g_.stride_w > 0) << "DepthwiseConvolution " << name
      << ": stride must be > 0, got " << g_.stride_h << " x " << g_.stride_w;
  CHECK(g_.dilation_h > 0 && g_.dilation_w > 0) << "DepthwiseConvolution " << name
      << ": dilation must be > 0, got " << g_.dilation_h << " x " << g_.dilation_w;
  bias_term_ = p.bias_term();

  const vector<int> weight_shape = {channels, 1, g_.kernel_h, g_.kernel_w};
  const vector<int> bias_shape(1, channels);
  if (!this->blobs_.empty()) {
    CHECK_EQ(this->blobs_.size(), bias_term_ ? 2 : 1) << "DepthwiseConvolution " << name
        << ": " << this->blobs_.size() << " given blobs, expected " << (bias_term_ ? 2 : 1);
    CHECK(this->blobs_[0]->shape() == weight_shape) << "DepthwiseConvolution " << name
        << ": given weights are " << this->blobs_[0]->shape_string() << ", expected "
        << Blob<Dtype>(weight_shape).shape_string();
    if (bias_term_) {
      CHECK(this->blobs_[1]->shape() == bias_shape) << "DepthwiseConvolution " << name
          << ": given bias is " << this->blobs_[1]->shape_string();
    }
  } else {
    this->blobs_.resize(bias_term_ ? 2 : 1);
    this->blobs_[0].reset(new Blob<Dtype>(weight_shape));
    // fan_in of the msra/xavier fillers is count / num = kernel area, as for grouped Convolution.
    shared_ptr<Filler<Dtype> > weight_filler(GetFiller<Dtype>(p.weight_filler()));
    weight_filler->Fill(this->blobs_[0].get());
    if (bias_term_) {
      this->blobs_[1].reset(new Blob<Dtype>(bias_shape));
      shared_ptr<Filler<Dtype> > bias_filler(GetFiller<Dtype>(p.bias_filler()));
      bias_filler->Fill(this->blobs_[1].get());
    }
  }
  this->param_propagate_down_.resize(this->blobs_.size(), true);
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Reshape(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const string& name = this->layer_param_.name();
  CHECK_EQ(bottom[0]->num_axes(), 4) << "DepthwiseConvolution " << name
      << ": bottom must be (N, C, H, W), got " << bottom[0]->shape_string();
  CHECK_EQ(bottom[0]->channels(), g_.channels) << "DepthwiseConvolution " << name
      << ": the input channels changed after set-up, got " << bottom[0]->shape_string();
  g_.num = bottom[0]->num();
  g_.height = bottom[0]->height();
  g_.width = bottom[0]->width();
  const int extent_h = g_.dilation_h * (g_.kernel_h - 1) + 1;
  const int extent_w = g_.dilation_w * (g_.kernel_w - 1) + 1;
  g_.out_h = (g_.height + 2 * g_.pad_h - extent_h) / g_.stride_h + 1;
  g_.out_w = (g_.width + 2 * g_.pad_w - extent_w) / g_.stride_w + 1;
  CHECK(g_.height + 2 * g_.pad_h >= extent_h && g_.width + 2 * g_.pad_w >= extent_w)
      << "DepthwiseConvolution " << name << ": the kernel (extent " << extent_h << " x "
      << extent_w << ") is larger than the padded input " << bottom[0]->shape_string();
  top[0]->Reshape(g_.num, g_.channels, g_.out_h, g_.out_w);
  ay_ = MakeDepthwiseAxis(g_.height, g_.out_h, g_.kernel_h, g_.stride_h, g_.pad_h, g_.dilation_h);
  ax_ = MakeDepthwiseAxis(g_.width, g_.out_w, g_.kernel_w, g_.stride_w, g_.pad_w, g_.dilation_w);
  run_w_.resize(g_.kernel_h * g_.kernel_w);
  run_src_.resize(g_.kernel_h * g_.kernel_w);
  row_ptr_.resize(g_.stride_w);
  row_cptr_.resize(g_.stride_w);
}

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

// Copies one row `src` (input coordinates 0..in-1) into its phase rows dst[r] (a.len values
// each), zero where the padded coordinate lies outside the input.
template <typename Dtype>
static void PadRow(const DepthwiseAxis& a, const Dtype* src, Dtype* const* dst) {
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
static void UnpadRow(const DepthwiseAxis& a, const Dtype* const* src, Dtype* dst) {
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

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::PadPlane(const Dtype* in) {
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
const Dtype* DepthwiseConvolutionLayer<Dtype>::TapRun(int ky, int kx) const {
  const int block = ay_.phase[ky] * ax_.stride + ax_.phase[kx];
  return &padded_[((block * ay_.len) + ay_.shift[ky]) * ax_.len + ax_.shift[kx]];
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::ForwardPlane(const Dtype* weight, Dtype bias,
                                                    Dtype* out) {
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
void DepthwiseConvolutionLayer<Dtype>::BackwardWeightPlane(const Dtype* top_diff,
                                                           Dtype* weight_diff) {
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
void DepthwiseConvolutionLayer<Dtype>::BackwardDataPlane(const Dtype* top_diff,
    const Dtype* weight, Dtype* bottom_diff) {
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

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const int planes = g_.num * g_.channels, taps = g_.kernel_h * g_.kernel_w;
  const int in_size = g_.height * g_.width, out_size = g_.out_h * g_.out_w;
  padded_.resize(ay_.stride * ax_.stride * ay_.len * ax_.len);
  scratch_.resize(g_.out_h * ax_.len);
  const Dtype* in = bottom[0]->cpu_data();
  const Dtype* weight = this->blobs_[0]->cpu_data();
  const Dtype* bias = bias_term_ ? this->blobs_[1]->cpu_data() : NULL;
  Dtype* out = top[0]->mutable_cpu_data();
  for (int p = 0; p < planes; ++p) {
    const int c = p % g_.channels;
    PadPlane(in + p * in_size);
    ForwardPlane(weight + c * taps, bias ? bias[c] : Dtype(0), out + p * out_size);
  }
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  const int planes = g_.num * g_.channels, taps = g_.kernel_h * g_.kernel_w;
  const int in_size = g_.height * g_.width, out_size = g_.out_h * g_.out_w;
  const Dtype* top_diff = top[0]->cpu_diff();
  if (bias_term_ && this->param_propagate_down_[1]) {
    Dtype* bias_diff = this->blobs_[1]->mutable_cpu_diff();
    for (int p = 0; p < planes; ++p) {
      bias_diff[p % g_.channels] += Sum8(out_size, top_diff + p * out_size);
    }
  }
  if (this->param_propagate_down_[0]) {
    padded_.resize(ay_.stride * ax_.stride * ay_.len * ax_.len);
    tcol_.resize(g_.out_h * ax_.len);
    const Dtype* in = bottom[0]->cpu_data();
    Dtype* weight_diff = this->blobs_[0]->mutable_cpu_diff();
    for (int p = 0; p < planes; ++p) {
      PadPlane(in + p * in_size);
      BackwardWeightPlane(top_diff + p * out_size, weight_diff + (p % g_.channels) * taps);
    }
  }
  if (propagate_down[0]) {
    const int tlen = g_.out_w + 2 * ax_.shift_max;
    top_pad_.resize((g_.out_h + 2 * ay_.shift_max) * tlen);
    scratch_.resize(std::max(g_.out_h * ax_.len, ay_.stride * ax_.stride * ay_.len * tlen));
    const Dtype* weight = this->blobs_[0]->cpu_data();
    Dtype* bottom_diff = bottom[0]->mutable_cpu_diff();
    for (int p = 0; p < planes; ++p) {
      BackwardDataPlane(top_diff + p * out_size, weight + (p % g_.channels) * taps,
                        bottom_diff + p * in_size);
    }
  }
}

#ifdef CPU_ONLY
STUB_GPU(DepthwiseConvolutionLayer);
#endif

INSTANTIATE_CLASS(DepthwiseConvolutionLayer);
REGISTER_LAYER_CLASS(DepthwiseConvolution);

}  // namespace caffe
