"""Mask targets: each assigned instance's ground-truth mask, ROIAligned to M x M over its box.

ROIAlign-consistent (detectron2's aligned ROIAlign, which the mask-feature ROIs also use): the box
(input pixels) is split into M x M bins; each bin averages k_y x k_x bilinear samples at the
centres of a regular sub-grid; k = sampling_ratio, or when 0 (adaptive, detectron2's choice for
mask targets) ceil(bin size in original mask pixels), so large boxes average every pixel rather
than aliasing. k = 1 samples each bin at its centre. Samples are taken in the ORIGINAL
full-resolution mask through the letterbox's inverse map, so no resized copy of the mask loses
detail. Samples more than one pixel outside the mask are 0, others are clamped into it (as in
detectron2's ROIAlign). Values are in [0, 1].
"""
import math

import numpy as np


def roi_mask_target(mask, box, affine, size, sampling_ratio=0):
    """(size, size) float32 target of one (H, W) 0/1 mask.

    box: (x1, y1, x2, y2) in input pixels; affine: (ax, bx, ay, by) with input = a * original + b
    (fassst.data.letterbox.Letterbox.affine; ax < 0 under a flip).
    """
    ax, bx, ay, by = affine
    x1, y1, x2, y2 = (float(v) for v in box)
    ky = sampling_ratio or max(1, math.ceil((y2 - y1) / size / abs(ay)))
    kx = sampling_ratio or max(1, math.ceil((x2 - x1) / size / abs(ax)))
    m = np.asarray(mask, np.float32)
    ys = _sample_axis(y1, y2, size, ky, ay, by)
    xs = _sample_axis(x1, x2, size, kx, ax, bx)
    y0, y1i, wy = _taps(ys, m.shape[0])
    x0, x1i, wx = _taps(xs, m.shape[1])
    top = m[y0][:, x0] * (1 - wx[1]) + m[y0][:, x1i] * wx[1]
    bottom = m[y1i][:, x0] * (1 - wx[1]) + m[y1i][:, x1i] * wx[1]
    vals = (top * (1 - wy[1])[:, None] + bottom * wy[1][:, None]) * wy[0][:, None] * wx[0][None]
    return vals.reshape(size, ky, size, kx).mean(axis=(1, 3)).astype(np.float32)


def _sample_axis(lo, hi, size, k, a, b):
    """Index coordinates (pixel centre i at i) in the original mask of the size * k samples."""
    t = (np.arange(size * k) + 0.5) / k          # in bins, sample centres
    x_in = lo + t * (hi - lo) / size             # input pixels
    return (x_in - b) / a - 0.5                  # original pixel edges -> index coordinates


def _taps(coords, length):
    """Bilinear taps along one axis: (i0, i1, (inside, frac))."""
    inside = ((coords >= -1.0) & (coords <= length)).astype(np.float32)
    c = np.clip(coords, 0, length - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, length - 1)
    return i0, i1, (inside, (c - i0).astype(np.float32))


def mask_targets(masks, boxes, affine, size, sampling_ratio=0):
    """(R, 1, size, size) float32 targets of R masks (each (H, W)) over R input-pixel boxes."""
    out = np.zeros((len(boxes), 1, size, size), np.float32)
    for r, (mask, box) in enumerate(zip(masks, boxes)):
        out[r, 0] = roi_mask_target(mask, box, affine, size, sampling_ratio)
    return out
