"""torchvision's ImageNet evaluation transform, with OpenCV and numpy (no PIL, no torch).

torchvision: Resize(256) (short side to 256, long side int(256 * long / short), PIL bilinear),
CenterCrop(224) (offsets rounded), ToTensor (/255), Normalize(mean, std), on an RGB image.

PIL's bilinear resize is antialiased: when shrinking by a factor s its triangle filter is s input
pixels wide, so every input pixel contributes. OpenCV's INTER_LINEAR reads only the 2x2
neighbours and INTER_AREA is a box filter; measured on the four reference photos, both move the
probabilities by up to 0.045 and INTER_LINEAR flips the bus photo's top-1 class. So the resize
below is PIL's algorithm (Resample.c: precompute_coeffs, horizontal pass then vertical, each
rounded to 8 bits), written as two small weight matrices.
"""
import numpy as np

RESIZE = 256
CROP = 224
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def bilinear_weights(in_size, out_size):
    """(out_size, in_size) matrix of PIL's antialiased bilinear filter along one axis."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the triangle filter has support 1, widened when shrinking
    w = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        x = (np.arange(lo, hi) - center + 0.5) / filterscale
        k = np.clip(1.0 - np.abs(x), 0.0, None)
        w[i, lo:hi] = k / k.sum()
    return w


def _round_u8(x):
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def resize_bilinear(img, new_w, new_h):
    """(H, W, C) uint8 -> (new_h, new_w, C) uint8, as PIL's Image.resize(..., BILINEAR)."""
    out = img
    h, w = img.shape[:2]
    if new_w != w:  # (H, C, W) @ (W, new_w): rows of the weight matrix are output columns
        out = np.matmul(out.transpose(0, 2, 1).astype(np.float64), bilinear_weights(w, new_w).T)
        out = _round_u8(out).transpose(0, 2, 1)
    if new_h != h:  # (new_h, H) @ (H, new_w * C)
        flat = out.reshape(h, -1).astype(np.float64)
        out = _round_u8(bilinear_weights(h, new_h) @ flat).reshape(new_h, new_w, -1)
    return np.ascontiguousarray(out)


def resize_short_side(rgb, size=RESIZE):
    h, w = rgb.shape[:2]
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    return resize_bilinear(rgb, new_w, new_h)


def center_crop(img, size=CROP):
    h, w = img.shape[:2]
    if h < size or w < size:
        raise ValueError(f"image of {w}x{h} is smaller than the {size}x{size} crop")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img[top:top + size, left:left + size]


def imagenet_input(rgb):
    """(H, W, 3) uint8 RGB -> (1, 3, 224, 224) float32 network input."""
    x = center_crop(resize_short_side(rgb)).astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
