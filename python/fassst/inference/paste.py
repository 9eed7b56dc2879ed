"""Pastes ROI masks (M x M probabilities over a box) back into a full image.

Convention: boxes are (x1, y1, x2, y2) in continuous pixel coordinates (pixel i covers [i, i+1),
its centre is i + 0.5), the same as the ROIAlign "aligned" convention of the layers. Mask cell u
of M covers [x1 + u w / M, x1 + (u + 1) w / M), so its centre maps to image x = x1 + (u + 0.5) w / M;
bilinear sampling between cell centres, zero outside the box's cells (detectron2's paste).
"""
import cv2
import numpy as np


def paste_mask(mask, box, height, width, threshold=0.5):
    """mask (M, M) float in [0, 1] over box -> bool (height, width) image mask."""
    m = mask.shape[0]
    x1, y1, x2, y2 = [float(v) for v in box]
    bw, bh = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
    # Only the box's own pixels (plus one for the bilinear edge) are computed.
    ix1, iy1 = max(int(np.floor(x1)) - 1, 0), max(int(np.floor(y1)) - 1, 0)
    ix2, iy2 = min(int(np.ceil(x2)) + 1, width), min(int(np.ceil(y2)) + 1, height)
    out = np.zeros((height, width), bool)
    if ix2 <= ix1 or iy2 <= iy1:
        return out
    sx, sy = bw / m, bh / m
    # dst (image, relative to the region) <- src (mask): x = x1 + (u + 0.5) sx - 0.5 - ix1
    affine = np.array([[sx, 0, x1 + 0.5 * sx - 0.5 - ix1], [0, sy, y1 + 0.5 * sy - 0.5 - iy1]])
    # Pad the mask by one cell of zeros so pixels past the outer cell centres fade to 0.
    padded = np.pad(mask.astype(np.float32), 1)
    affine[:, 2] -= affine[:, :2].sum(axis=1)  # account for the pad's offset of one cell
    region = cv2.warpAffine(padded, affine, (ix2 - ix1, iy2 - iy1), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out[iy1:iy2, ix1:ix2] = region >= threshold
    return out
