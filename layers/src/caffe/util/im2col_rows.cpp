#include <algorithm>
#include <cstring>

#include "caffe/util/im2col_rows.hpp"

// With stride_w == dilation_w == 1, column block (c, kr, kc) of im2col is input plane c shifted
// by (kr dilation_h - pad_h) rows and s = kc - pad_w columns: output pixel (y, x) reads input
// (y stride_h + kr dilation_h - pad_h, x + s), zero outside. Per output row that is one run of
// input values between two runs of zeros. When the output is as wide as the input (pad_w on
// each side = (kernel_w - 1) / 2, "same" padding) and stride_h == 1, the rows inside are
// consecutive in both, so the whole block is one copy, after which the |s| columns per row that
// the shift wrapped in from the neighbouring row are zeroed.

namespace caffe {

namespace {

// [lo, hi) of output positions 0 .. n - 1 whose input i0 + o step lies in [0, size).
inline void InsideRange(int n, int i0, int step, int size, int* lo, int* hi) {
  // o >= ceil(-i0 / step), o <= floor((size - 1 - i0) / step)
  int a = 0, b = n;
  if (i0 < 0) a = (-i0 + step - 1) / step;
  const int last = size - 1 - i0;
  b = last < 0 ? 0 : std::min(n, last / step + 1);
  *lo = std::min(a, n);
  *hi = std::max(*lo, b);
}

template <typename Dtype>
inline void Zero(Dtype* __restrict__ d, int n) {
  for (int i = 0; i < n; ++i) d[i] = 0;
}

template <typename Dtype>
inline void Copy(const Dtype* __restrict__ s, int n, Dtype* __restrict__ d) {
  for (int i = 0; i < n; ++i) d[i] = s[i];
}

template <typename Dtype>
inline void Add(const Dtype* __restrict__ s, int n, Dtype* __restrict__ d) {
  for (int i = 0; i < n; ++i) d[i] += s[i];
}

// The output size (Caffe's formula) when these functions take the case: stride_w and
// dilation_w 1 and a non-empty output; false otherwise.
inline bool RowsCase(int height, int width, int kernel_h, int kernel_w, int pad_h, int pad_w,
                     int stride_h, int stride_w, int dilation_h, int dilation_w, int* out_h,
                     int* out_w) {
  if (stride_w != 1 || dilation_w != 1) return false;
  *out_h = (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  *out_w = width + 2 * pad_w - kernel_w + 1;
  return *out_h > 0 && *out_w > 0;
}

// The other case: kernel == stride along both axes, no pad, no dilation (the mask tail's 2x2
// stride-2 deconvolution): windows do not overlap, so every pixel is in at most one window and
// one column element. out_h x out_w windows; pixels past them (height or width not a multiple
// of the kernel) are in none.
inline bool TilesCase(int height, int width, int kernel_h, int kernel_w, int pad_h, int pad_w,
                      int stride_h, int stride_w, int dilation_h, int dilation_w, int* out_h,
                      int* out_w) {
  if (stride_h != kernel_h || stride_w != kernel_w || pad_h != 0 || pad_w != 0 ||
      dilation_h != 1 || dilation_w != 1) {
    return false;
  }
  *out_h = height / kernel_h;
  *out_w = width / kernel_w;
  return *out_h > 0 && *out_w > 0;
}

// Which of the two cases the parameters are, with the output size; kNone: neither (the caller
// returns false and Caffe's own loop runs).
enum FastCase { kNone, kRows, kTiles };

inline FastCase WhichCase(int height, int width, int kernel_h, int kernel_w, int pad_h,
                          int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w,
                          int* out_h, int* out_w) {
  if (RowsCase(height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h,
               dilation_w, out_h, out_w)) {
    return kRows;
  }
  if (TilesCase(height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h,
                dilation_w, out_h, out_w)) {
    return kTiles;
  }
  return kNone;
}

// Column block (c, kr, kc), output row y, is every kernel_w-th pixel of image row y kernel_h + kr
// from kc on. The two-column kernel (the tail's) is its own loop: one that the compiler
// vectorises, as an (un)interleave of two runs.
template <typename Dtype>
void GatherRow(const Dtype* __restrict__ row, int kernel_w, int kc, int n, Dtype* __restrict__ d) {
  for (int x = 0; x < n; ++x) d[x] = row[x * kernel_w + kc];
}

template <typename Dtype>
void GatherRow2(const Dtype* __restrict__ row, int n, Dtype* __restrict__ d0,
                Dtype* __restrict__ d1) {
  for (int x = 0; x < n; ++x) {
    d0[x] = row[2 * x];
    d1[x] = row[2 * x + 1];
  }
}

// 0 + v, as the stock col2im computes it (zeroed image, then +=): the same value, and -0 becomes
// +0 as there, so results stay bit-identical.
template <typename Dtype>
void ScatterRow(const Dtype* __restrict__ s, int kernel_w, int kc, int n, Dtype* __restrict__ row) {
  for (int x = 0; x < n; ++x) row[x * kernel_w + kc] = Dtype(0) + s[x];
}

template <typename Dtype>
void ScatterRow2(const Dtype* __restrict__ s0, const Dtype* __restrict__ s1, int n,
                 Dtype* __restrict__ row) {
  for (int x = 0; x < n; ++x) {
    row[2 * x] = Dtype(0) + s0[x];
    row[2 * x + 1] = Dtype(0) + s1[x];
  }
}

template <typename Dtype>
void im2col_tiles(const Dtype* data_im, int channels, int height, int width, int kernel_h,
                  int kernel_w, int out_h, int out_w, Dtype* data_col) {
  const int out_size = out_h * out_w;
  for (int c = 0; c < channels; ++c, data_im += height * width) {
    for (int kr = 0; kr < kernel_h; ++kr, data_col += kernel_w * out_size) {
      for (int y = 0; y < out_h; ++y) {
        const Dtype* row = data_im + (y * kernel_h + kr) * width;
        Dtype* d = data_col + y * out_w;
        if (kernel_w == 2) {
          GatherRow2(row, out_w, d, d + out_size);
        } else {
          for (int kc = 0; kc < kernel_w; ++kc)
            GatherRow(row, kernel_w, kc, out_w, d + kc * out_size);
        }
      }
    }
  }
}

template <typename Dtype>
void col2im_tiles(const Dtype* data_col, int channels, int height, int width, int kernel_h,
                  int kernel_w, int out_h, int out_w, Dtype* data_im) {
  const int out_size = out_h * out_w;
  const int covered_h = out_h * kernel_h, covered_w = out_w * kernel_w;
  for (int c = 0; c < channels; ++c, data_im += height * width) {
    for (int y = 0; y < covered_h; ++y) Zero(data_im + y * width + covered_w, width - covered_w);
    Zero(data_im + covered_h * width, (height - covered_h) * width);
    for (int kr = 0; kr < kernel_h; ++kr, data_col += kernel_w * out_size) {
      for (int y = 0; y < out_h; ++y) {
        Dtype* row = data_im + (y * kernel_h + kr) * width;
        const Dtype* s = data_col + y * out_w;
        if (kernel_w == 2) {
          ScatterRow2(s, s + out_size, out_w, row);
        } else {
          for (int kc = 0; kc < kernel_w; ++kc)
            ScatterRow(s + kc * out_size, kernel_w, kc, out_w, row);
        }
      }
    }
  }
}

}  // namespace

template <typename Dtype>
bool im2col_rows_cpu(const Dtype* data_im, int channels, int height, int width, int kernel_h,
                     int kernel_w, int pad_h, int pad_w, int stride_h, int stride_w,
                     int dilation_h, int dilation_w, Dtype* data_col) {
  int out_h, out_w;
  const FastCase fast = WhichCase(height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
                                  stride_w, dilation_h, dilation_w, &out_h, &out_w);
  if (fast == kNone) return false;
  if (fast == kTiles) {
    im2col_tiles(data_im, channels, height, width, kernel_h, kernel_w, out_h, out_w, data_col);
    return true;
  }
  const int out_size = out_h * out_w;
  const bool whole = stride_h == 1 && out_w == width;
  for (int c = 0; c < channels; ++c, data_im += height * width) {
    for (int kr = 0; kr < kernel_h; ++kr) {
      const int row0 = kr * dilation_h - pad_h;  // input row of output row 0
      int y0, y1;
      InsideRange(out_h, row0, stride_h, height, &y0, &y1);
      for (int kc = 0; kc < kernel_w; ++kc, data_col += out_size) {
        const int s = kc - pad_w;  // input column of output column 0
        Zero(data_col, y0 * out_w);
        Zero(data_col + y1 * out_w, (out_h - y1) * out_w);
        if (y0 == y1) continue;
        if (whole && s < width && -s < width) {
          // Rows y0 .. y1 - 1 read input rows row0 + y0 ..; copy all but the values that
          // would come from before the first row or after the last one, then zero the wrap.
          const Dtype* src = data_im + (row0 + y0) * width;
          Dtype* dst = data_col + y0 * out_w;
          const int n = (y1 - y0) * width;
          if (s >= 0) {
            Copy(src + s, n - s, dst);
            for (int y = 0; y < y1 - y0; ++y) Zero(dst + y * width + width - s, s);
          } else {
            Copy(src, n + s, dst - s);
            for (int y = 0; y < y1 - y0; ++y) Zero(dst + y * width, -s);
          }
          continue;
        }
        int x0, x1;
        InsideRange(out_w, s, 1, width, &x0, &x1);
        for (int y = y0; y < y1; ++y) {
          Dtype* dst = data_col + y * out_w;
          Zero(dst, x0);
          Copy(data_im + (row0 + y * stride_h) * width + s + x0, x1 - x0, dst + x0);
          Zero(dst + x1, out_w - x1);
        }
      }
    }
  }
  return true;
}

template <typename Dtype>
bool col2im_rows_cpu(const Dtype* data_col, int channels, int height, int width, int kernel_h,
                     int kernel_w, int pad_h, int pad_w, int stride_h, int stride_w,
                     int dilation_h, int dilation_w, Dtype* data_im) {
  int out_h, out_w;
  const FastCase fast = WhichCase(height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
                                  stride_w, dilation_h, dilation_w, &out_h, &out_w);
  if (fast == kNone) return false;
  if (fast == kTiles) {
    col2im_tiles(data_col, channels, height, width, kernel_h, kernel_w, out_h, out_w, data_im);
    return true;
  }
  const int out_size = out_h * out_w;
  std::fill(data_im, data_im + height * width * channels, Dtype(0));
  // Stock order: channel, kernel row, kernel column, output row, output column; every pixel's
  // additions keep that order (within one output row the additions go to distinct pixels).
  for (int c = 0; c < channels; ++c, data_im += height * width) {
    for (int kr = 0; kr < kernel_h; ++kr) {
      const int row0 = kr * dilation_h - pad_h;
      int y0, y1;
      InsideRange(out_h, row0, stride_h, height, &y0, &y1);
      for (int kc = 0; kc < kernel_w; ++kc, data_col += out_size) {
        const int s = kc - pad_w;
        int x0, x1;
        InsideRange(out_w, s, 1, width, &x0, &x1);
        for (int y = y0; y < y1; ++y) {
          Add(data_col + y * out_w + x0, x1 - x0, data_im + (row0 + y * stride_h) * width + s + x0);
        }
      }
    }
  }
  return true;
}

template bool im2col_rows_cpu<float>(const float*, int, int, int, int, int, int, int, int, int,
                                     int, int, float*);
template bool im2col_rows_cpu<double>(const double*, int, int, int, int, int, int, int, int, int,
                                      int, int, double*);
template bool col2im_rows_cpu<float>(const float*, int, int, int, int, int, int, int, int, int,
                                     int, int, float*);
template bool col2im_rows_cpu<double>(const double*, int, int, int, int, int, int, int, int, int,
                                      int, int, double*);

}  // namespace caffe
