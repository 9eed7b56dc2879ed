#include <vector>

#include "caffe/util/roi_align_util.hpp"

namespace caffe {

namespace {
// Every bilinear tap of one ROI (cells x samples x 4 offsets and weights, already scaled by
// 1 / count), computed once and reused for all C channels: the taps depend on the box, not on
// the channel (detectron2's pre_calc). Samples outside the map get weight 0 on offset 0.
template <typename Dtype>
void roi_taps(const ROIAlignBox<Dtype>& b, const ROIAlignParams<Dtype>& p, int H, int W,
              std::vector<int>* off, std::vector<Dtype>* w) {
  const int per_cell = b.grid_h * b.grid_w;
  off->assign(4 * per_cell * p.pooled_h * p.pooled_w, 0);
  w->assign(off->size(), Dtype(0));
  const Dtype inv_count = Dtype(1) / static_cast<Dtype>(roi_align_count(b));
  int k = 0;
  for (int ph = 0; ph < p.pooled_h; ++ph) {
    for (int pw = 0; pw < p.pooled_w; ++pw) {
      for (int iy = 0; iy < b.grid_h; ++iy) {
        const Dtype y = roi_align_sample_y(b, ph, iy);
        for (int ix = 0; ix < b.grid_w; ++ix, k += 4) {
          if (roi_align_bilinear_taps(H, W, y, roi_align_sample_x(b, pw, ix), &(*off)[k],
                                      &(*w)[k])) {
            for (int t = 0; t < 4; ++t) (*w)[k + t] *= inv_count;
          } else {
            for (int t = 0; t < 4; ++t) { (*off)[k + t] = 0; (*w)[k + t] = 0; }
          }
        }
      }
    }
  }
}

// Channels per pass of the backward over one ROI's taps. One channel at a time, neighbouring
// taps of a cell often add to the same input pixel, so each addition waited for the one before
// (through memory); B channels give B independent streams and read the tap table once per B.
// Per address the additions still come in the same order: results are unchanged. (The forward
// gained nothing from the same blocking, 70 -> 78 ms on bench_layers' PyramidROIAlign case: its
// sums are in registers already, and B planes crowd the L1 cache.)
const int kBackwardChannels = 4;

// Input-gradient planes c < B (plane_size apart) += one ROI's taps times top-diff planes c
// (cells each).
template <int B, typename Dtype>
void BackwardChannels(const Dtype* dout, int plane_size, int cells, int taps_per_cell,
                      const int* o, const Dtype* wt, Dtype* din) {
  for (int cell = 0; cell < cells; ++cell) {
    Dtype g[B];
    for (int c = 0; c < B; ++c) g[c] = dout[c * cells + cell];
    for (int t = 0; t < taps_per_cell; ++t) {
      for (int c = 0; c < B; ++c) din[c * plane_size + o[t]] += wt[t] * g[c];
    }
    o += taps_per_cell;
    wt += taps_per_cell;
  }
}

// One axis of a ROI's separable taps: for each of `cells` cells, the two taps (index, weight
// times scale) of each of its `grid` samples, sample_at(cell, i) giving the coordinate; samples
// outside the map are left out. count[cell] says how many taps the cell has, in order.
template <typename Dtype, typename SampleAt>
void AxisCellTaps(int cells, int grid, int n, Dtype scale, SampleAt sample_at,
                  std::vector<int>* count, std::vector<int>* index, std::vector<Dtype>* weight) {
  count->assign(cells, 0);
  index->clear();
  weight->clear();
  for (int cell = 0; cell < cells; ++cell) {
    for (int i = 0; i < grid; ++i) {
      int lo, hi;
      Dtype l;
      if (!roi_align_axis_taps(n, sample_at(cell, i), &lo, &hi, &l)) continue;
      index->push_back(lo);
      weight->push_back((1 - l) * scale);
      index->push_back(hi);
      weight->push_back(l * scale);
      (*count)[cell] += 2;
    }
  }
}

// d[i] += a s[i], i < n.
template <typename Dtype>
inline void AddScaled(int n, Dtype a, const Dtype* __restrict__ s, Dtype* __restrict__ d) {
  for (int i = 0; i < n; ++i) d[i] += a * s[i];
}
}  // namespace

// Forward, separably: a cell's value is sum over its y taps (row, wy) and x taps (column, wx) of
// wy wx map[row][column], so each map row the ROI's y taps read is interpolated along x once
// (per channel), and each cell row is then a weighted sum of those rows, a vector loop over the
// cells of a row. Per channel that is (rows read) x PW x 2 grid_w + PH x PW x 2 grid_h
// multiply-adds instead of PH x PW x 4 grid_h grid_w with a gathered load each: at 28 x 28
// cells over a ROI 15 map rows tall, 5 K instead of 12.5 K. Sums in another order than the
// per-tap form (the backward and the CUDA code): equal to rounding. Both take their taps from
// roi_align_axis_taps.
template <typename Dtype>
void roi_align_forward_cpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* in,
                           const ROIAlignParams<Dtype>& p, Dtype* out) {
  const int PH = p.pooled_h, PW = p.pooled_w, cells = PH * PW;
  std::vector<int> ycount, yrow, xcount, xcol, slot(H);
  std::vector<Dtype> yw, xw, rows_x;
  std::vector<int> used;
  for (int r = 0; r < R; ++r) {
    const Dtype* roi = rois + 5 * r;
    const ROIAlignBox<Dtype> b = roi_align_box(roi, p);
    const Dtype inv_count = Dtype(1) / static_cast<Dtype>(roi_align_count(b));
    // Per cell row: its y taps (map row, weight with 1 / count); per cell column: its x taps.
    AxisCellTaps(PH, b.grid_h, H, inv_count,
                 [&b](int ph, int iy) { return roi_align_sample_y(b, ph, iy); },
                 &ycount, &yrow, &yw);
    AxisCellTaps(PW, b.grid_w, W, Dtype(1),
                 [&b](int pw, int ix) { return roi_align_sample_x(b, pw, ix); },
                 &xcount, &xcol, &xw);
    // The map rows some y tap reads, each interpolated along x once per channel.
    std::fill(slot.begin(), slot.end(), -1);
    used.clear();
    for (int row : yrow) {
      if (slot[row] < 0) {
        slot[row] = static_cast<int>(used.size());
        used.push_back(row);
      }
    }
    rows_x.resize(used.size() * PW);
    const Dtype* image = in + static_cast<int>(roi[0]) * C * H * W;
    for (int c = 0; c < C; ++c) {
      const Dtype* plane = image + c * H * W;
      for (size_t u = 0; u < used.size(); ++u) {
        const Dtype* line = plane + used[u] * W;
        Dtype* dst = &rows_x[u * PW];
        const int* col = xcol.data();
        const Dtype* w = xw.data();
        for (int pw = 0; pw < PW; ++pw) {
          Dtype sum = 0;
          for (int t = 0; t < xcount[pw]; ++t) sum += w[t] * line[col[t]];
          dst[pw] = sum;
          col += xcount[pw];
          w += xcount[pw];
        }
      }
      Dtype* dst = out + (r * C + c) * cells;
      const int* row = yrow.data();
      const Dtype* w = yw.data();
      for (int ph = 0; ph < PH; ++ph, dst += PW) {
        std::fill(dst, dst + PW, Dtype(0));
        for (int t = 0; t < ycount[ph]; ++t) {
          AddScaled(PW, w[t], &rows_x[slot[row[t]] * PW], dst);
        }
        row += ycount[ph];
        w += ycount[ph];
      }
    }
  }
}

template <typename Dtype>
void roi_align_backward_add_cpu(int R, const Dtype* rois, int C, int H, int W, const Dtype* dout,
                                const ROIAlignParams<Dtype>& p, Dtype* din) {
  const int cells = p.pooled_h * p.pooled_w;
  std::vector<int> off;
  std::vector<Dtype> w;
  for (int r = 0; r < R; ++r) {
    const Dtype* roi = rois + 5 * r;
    const ROIAlignBox<Dtype> b = roi_align_box(roi, p);
    roi_taps(b, p, H, W, &off, &w);
    const int taps_per_cell = 4 * b.grid_h * b.grid_w;
    Dtype* image = din + static_cast<int>(roi[0]) * C * H * W;
    int c = 0;
    for (; c + kBackwardChannels <= C; c += kBackwardChannels) {
      BackwardChannels<kBackwardChannels>(dout + (r * C + c) * cells, H * W, cells,
                                          taps_per_cell, off.data(), w.data(), image + c * H * W);
    }
    for (; c < C; ++c) {
      BackwardChannels<1>(dout + (r * C + c) * cells, H * W, cells, taps_per_cell, off.data(),
                          w.data(), image + c * H * W);
    }
  }
}

template void roi_align_forward_cpu<float>(int, const float*, int, int, int, const float*,
                                           const ROIAlignParams<float>&, float*);
template void roi_align_forward_cpu<double>(int, const double*, int, int, int, const double*,
                                            const ROIAlignParams<double>&, double*);
template void roi_align_backward_add_cpu<float>(int, const float*, int, int, int, const float*,
                                                const ROIAlignParams<float>&, float*);
template void roi_align_backward_add_cpu<double>(int, const double*, int, int, int, const double*,
                                                 const ROIAlignParams<double>&, double*);

}  // namespace caffe
