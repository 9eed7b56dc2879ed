"""Binary masks <-> COCO compressed RLE, through pycocotools, with json-ready `counts` (str).

pycocotools returns `counts` as bytes, which json cannot write; COCO files (results and ground
truth alike) hold them as ASCII str, which pycocotools reads back as is.

Encoding reads only the window of each mask that holds its pixels (given, e.g. by the predictor
that pasted the masks, or found with cv2.boundingRect): the runs of all K windows are found in
one numpy pass and pycocotools compresses them (frPyObjects of the uncompressed counts). The
strings are those pycocotools' own encode gives, which walks every pixel of a Fortran-ordered
(H, W, K) copy: at 36 masks of 1210 x 907 that copy alone took ~50 ms.
"""
import cv2
import numpy as np
from pycocotools import mask as mask_util

from fassst import native


def encode(masks, windows=None):
    """List of K RLE dicts {"size": [H, W], "counts": str} for masks (K, H, W), any dtype (!= 0
    is inside). windows: (K, 4) x0 y0 x1 y1 (ends exclusive), each holding every inside pixel of
    its mask (as LetterboxPredictor's `mask_windows` do); default: each mask's bounding box."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (K, H, W), got shape {masks.shape}")
    if masks.dtype != bool:
        masks = masks != 0
    k, height, width = masks.shape
    if windows is None:
        windows = [_bounding_window(m) for m in masks]
    elif len(windows) != k:
        raise ValueError(f"{len(windows)} windows for {k} masks")
    if k == 0:
        return []
    fast = native.masks()
    if fast is not None:
        return [{"size": [height, width], "counts": c.decode("ascii")}
                for c in fast.rle_strings(np.ascontiguousarray(masks), np.asarray(windows, np.int64))]
    # COCO's runs go down the columns: each window's columns, padded with a 0 above and below,
    # one after another in one flat array, so that one pass finds every change of value.
    columns, starts, geometry = [], [0], []
    for m, window in zip(masks, windows):
        x0, y0, x1, y1 = (int(v) for v in window)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(max(x1, x0), width), min(max(y1, y0), height)
        c = np.zeros((x1 - x0, y1 - y0 + 2), np.uint8)
        c[:, 1:-1] = m[y0:y1, x0:x1].T
        columns.append(c.ravel())
        starts.append(starts[-1] + c.size)
        geometry.append((x0, y0, y1 - y0 + 2))
    flat = np.concatenate(columns)
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # first index of each new value
    cut = np.searchsorted(changes, starts)
    rles = []
    for i, (x0, y0, padded) in enumerate(geometry):
        col, row = np.divmod(changes[cut[i]:cut[i + 1]] - starts[i], padded)
        rles.append({"size": [height, width],
                     "counts": _counts((x0 + col) * height + y0 + row - 1, height * width)})
    rles = mask_util.frPyObjects(rles, height, width)
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def _bounding_window(mask):
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    return x, y, x + w, y + h


def _counts(edges, n):
    """COCO's counts (0s, 1s, 0s, ...) of n pixels from where runs of 1 start and end
    (alternately, column-major pixel indices)."""
    # a run down to a column's foot goes on at the next column's head (windows of full height)
    joined = edges[1:-1:2] == edges[2::2]
    if joined.any():
        drop = np.zeros(len(edges), bool)
        drop[1:-1:2] = joined
        drop[2::2] = joined
        edges = edges[~drop]
    counts = np.diff(edges, prepend=0, append=n)
    return counts[:-1] if len(counts) > 1 and counts[-1] == 0 else counts  # ends inside a run


def encode_one(mask):
    """RLE dict of one (H, W) mask."""
    return encode(np.asarray(mask)[None])[0]


def decode(rle):
    """(H, W) bool mask of one RLE dict (counts str or bytes)."""
    return mask_util.decode(rle).astype(bool)


def area_and_bbox(rle):
    """(area in pixels, [x, y, w, h]) of one RLE; the box is the pixel-aligned hull of the mask
    (a mask covering columns 10..19 has x = 10, w = 10)."""
    return float(mask_util.area(rle)), [float(v) for v in mask_util.toBbox(rle)]
