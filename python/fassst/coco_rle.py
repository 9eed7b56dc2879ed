"""Binary masks <-> COCO compressed RLE, through pycocotools, with json-ready `counts` (str).

pycocotools returns `counts` as bytes, which json cannot write; COCO files (results and ground
truth alike) hold them as ASCII str, which pycocotools reads back as is.
"""
import numpy as np
from pycocotools import mask as mask_util


def encode(masks):
    """List of K RLE dicts {"size": [H, W], "counts": str} for masks (K, H, W), any dtype (!= 0
    is inside)."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (K, H, W), got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    # pycocotools wants (H, W, K) uint8 in Fortran order.
    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0) != 0, dtype=np.uint8))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


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
