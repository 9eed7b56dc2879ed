"""Letterboxing a photo into the square network input, and mapping results back.

Coordinates are continuous pixel edges (COCO's, no +1): pixel i covers [i, i + 1), its centre
is i + 0.5. Resizing by s maps x -> s x on such coordinates, which is what OpenCV's INTER_LINEAR
does to pixel centres (half-pixel convention), so boxes and pixels stay aligned.

The photo is scaled by one factor to fit S x S with its aspect kept (each side rounded to whole
pixels, so the two axes' factors differ by under 1 px over the side), centred, and padded with
the ImageNet mean colour, which the normalisation maps to 0. A horizontal flip (training) is
part of the same per-axis affine map: input = a * original + b.
"""
from typing import NamedTuple

import cv2
import numpy as np

from fassst.imagenet.preprocess import MEAN, STD

MEAN_RGB_U8 = tuple(int(round(255 * m)) for m in MEAN)  # the padding colour


class Letterbox(NamedTuple):
    """Where an H x W photo lies inside the S x S input."""
    size: int       # S
    height: int     # H, original
    width: int      # W, original
    new_h: int      # the photo's height inside the input
    new_w: int
    pad_y: int      # rows above it
    pad_x: int      # columns left of it
    flip: bool = False  # mirrored left-right after letterboxing

    @property
    def affine(self):
        """(ax, bx, ay, by): x_in = ax * x + bx, y_in = ay * y + by (pixel-edge coordinates)."""
        ax, bx = self.new_w / self.width, float(self.pad_x)
        if self.flip:
            ax, bx = -ax, self.size - bx
        return ax, bx, self.new_h / self.height, float(self.pad_y)

    def flipped(self):
        return self._replace(flip=not self.flip)

    def placed(self, scale, u, v):
        """The photo shrunk by `scale` (<= 1) and moved: u, v in [0, 1] put it anywhere from the
        top (left) edge to the bottom (right) one. Training's scale jitter: the photo stays whole
        inside the input, so no instance is cut."""
        if not 0 < scale <= 1 or not (0 <= u <= 1 and 0 <= v <= 1):
            raise ValueError(f"placed: scale must be in (0, 1] and u, v in [0, 1], got "
                             f"{scale}, {u}, {v}")
        new_h = max(1, int(round(self.new_h * scale)))
        new_w = max(1, int(round(self.new_w * scale)))
        return self._replace(new_h=new_h, new_w=new_w, pad_y=int(u * (self.size - new_h)),
                             pad_x=int(v * (self.size - new_w)))

    def boxes_to_input(self, boxes):
        """(k, 4) (x1, y1, x2, y2) original pixels -> input pixels (x1 <= x2 kept under flip)."""
        return _map_boxes(boxes, *self.affine)

    def boxes_to_original(self, boxes):
        """(k, 4) input pixels -> original pixels, clipped to the photo."""
        ax, bx, ay, by = self.affine
        out = _map_boxes(boxes, 1 / ax, -bx / ax, 1 / ay, -by / ay)
        limits = [self.width, self.height, self.width, self.height]
        return np.clip(out, 0, limits).astype(np.float32)


def _map_boxes(boxes, ax, bx, ay, by):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    xs = b[:, [0, 2]] * ax + bx
    ys = b[:, [1, 3]] * ay + by
    xs.sort(axis=1)  # a negative ax (flip) swaps the edges
    ys.sort(axis=1)
    return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1).astype(np.float32)


def fit(height, width, size):
    """Letterbox of an H x W photo in an S x S input (no flip)."""
    if height < 1 or width < 1 or size < 1:
        raise ValueError(f"sizes must be positive, got {height}x{width} into {size}")
    scale = min(size / height, size / width)
    new_h = min(size, max(1, int(round(height * scale))))
    new_w = min(size, max(1, int(round(width * scale))))
    return Letterbox(size, height, width, new_h, new_w, (size - new_h) // 2, (size - new_w) // 2)


def image_to_input(image, lb):
    """(H, W, 3) uint8 photo -> (S, S, 3) uint8 input: resize (bilinear), pad, flip."""
    if image.shape[:2] != (lb.height, lb.width):
        raise ValueError(f"image is {image.shape[:2]}, letterbox expects {(lb.height, lb.width)}")
    out = np.empty((lb.size, lb.size, 3), np.uint8)
    out[...] = MEAN_RGB_U8
    out[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w] = cv2.resize(
        image, (lb.new_w, lb.new_h), interpolation=cv2.INTER_LINEAR)
    return out[:, ::-1].copy() if lb.flip else out


def mask_to_input(mask, lb):
    """(H, W) mask -> (S, S) float32 in the input frame (bilinear, 0 in the padding)."""
    out = np.zeros((lb.size, lb.size), np.float32)
    out[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w] = cv2.resize(
        np.asarray(mask, np.float32), (lb.new_w, lb.new_h), interpolation=cv2.INTER_LINEAR)
    return out[:, ::-1].copy() if lb.flip else out


def mask_to_original(mask, lb):
    """(S, S) mask in the input frame -> (H, W) float32 at the photo's size (bilinear)."""
    m = np.asarray(mask, np.float32)
    if lb.flip:
        m = m[:, ::-1]
    crop = np.ascontiguousarray(m[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w])
    return cv2.resize(crop, (lb.width, lb.height), interpolation=cv2.INTER_LINEAR)


def _paste_affine(box, lb, rows, cols):
    """(A, c, B, d): photo pixel (px, py) is sampled at mask index (A px + c, B py + d)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    ax, bx, ay, by = lb.affine
    # photo pixel index p (centre p + 0.5) -> input a (p + 0.5) + b -> mask index; linear in p
    sx, sy = cols / max(x2 - x1, 1e-6), rows / max(y2 - y1, 1e-6)
    return ax * sx, (0.5 * ax + bx - x1) * sx - 0.5, ay * sy, (0.5 * ay + by - y1) * sy - 0.5


def _span(a, c, cells, limit):
    """Photo pixels [lo, hi) whose mask index a p + c lies in [-2, cells + 1]: bilinear taps of any
    pixel outside are all off the mask (index < -1 or >= cells), so the paste is 0 there."""
    ends = sorted(((-2 - c) / a, (cells + 1 - c) / a))
    lo = min(max(0, int(np.floor(ends[0]))), limit)
    return lo, min(max(lo, int(np.ceil(ends[1])) + 1), limit)


def paste_window(box, lb, mask_shape):
    """(x0, y0, x1, y1) photo pixels, ends exclusive: paste_roi_mask of an (M, M) mask for `box`
    is 0 outside this window (empty when the box lies off the photo)."""
    rows, cols = mask_shape
    a, c, b, d = _paste_affine(box, lb, rows, cols)
    x0, x1 = _span(a, c, cols, lb.width)
    y0, y1 = _span(b, d, rows, lb.height)
    return x0, y0, x1, y1


def paste_roi_mask(roi_mask, box, lb, window=None):
    """An (M, M) mask predicted for `box` (input pixels, x1 y1 x2 y2) -> (H, W) float32 mask of
    the photo: sampled bilinearly at every photo pixel centre, 0 outside the box. Mask cell j of
    the box covers box_x1 + [j, j + 1) * box_w / M (ROIAlign's aligned bins).

    window (x0, y0, x1, y1): only that block of the photo, (y1 - y0, x1 - x0); with
    paste_window's it holds all of the mask at a fraction of the full photo's cost."""
    m = np.asarray(roi_mask, np.float32)
    rows, cols = m.shape
    x0, y0, x1, y1 = (0, 0, lb.width, lb.height) if window is None else window
    if x1 <= x0 or y1 <= y0:
        return np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.float32)
    a, c, b, d = _paste_affine(box, lb, rows, cols)
    to_mask = np.array([[a, 0, a * x0 + c], [0, b, b * y0 + d]], np.float64)
    return cv2.warpAffine(m, to_mask, (x1 - x0, y1 - y0),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def to_blob(images):
    """(B, S, S, 3) or (S, S, 3) uint8 RGB -> (B, 3, S, S) or (3, S, S) float32,
    (x / 255 - mean) / std with ImageNet's mean and std."""
    x = np.asarray(images, np.float32) * np.float32(1 / 255)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


# to_blob of every uint8 value, per channel, (3, 256): the same float32 arithmetic, looked up
_NORMALISED = np.ascontiguousarray(to_blob(np.arange(256, dtype=np.uint8)[:, None, None]
                                           .repeat(3, axis=2))[:, :, 0])


def image_to_blob(image, lb):
    """to_blob(image_to_input(image, lb)), equal to the bit, in one pass: the resized photo's
    channels go through a lookup table straight into their planes (OpenCV's LUT) and the padding
    is filled with the mean colour's value; 6-9x less time than the two steps (S = 256-768)."""
    if image.shape[:2] != (lb.height, lb.width):
        raise ValueError(f"image is {image.shape[:2]}, letterbox expects {(lb.height, lb.width)}")
    resized = cv2.resize(image, (lb.new_w, lb.new_h), interpolation=cv2.INTER_LINEAR)
    x0 = lb.pad_x
    if lb.flip:
        resized, x0 = cv2.flip(resized, 1), lb.size - lb.pad_x - lb.new_w
    y1, x1 = lb.pad_y + lb.new_h, x0 + lb.new_w
    blob = np.empty((3, lb.size, lb.size), np.float32)
    for c, plane in enumerate(cv2.split(resized)):
        pad = _NORMALISED[c, MEAN_RGB_U8[c]]
        blob[c, :lb.pad_y], blob[c, y1:] = pad, pad
        blob[c, lb.pad_y:y1, :x0], blob[c, lb.pad_y:y1, x1:] = pad, pad
        blob[c, lb.pad_y:y1, x0:x1] = cv2.LUT(plane, _NORMALISED[c])
    return blob
