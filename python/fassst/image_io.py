"""Reading photos as 8-bit RGB, whatever their storage (gray, alpha, 16-bit), with OpenCV.

EXIF orientation is not applied (IMREAD_UNCHANGED), as PIL.Image.open does not apply it either:
pixels come out in file order, as in torchvision's reference pipeline.
"""
import os

import cv2
import numpy as np

from fassst.errors import InputError


class ImageReadError(InputError):
    """A photo is missing or unreadable; the message names the file."""


def read_rgb(path):
    """(H, W, 3) uint8 RGB. Gray is replicated, alpha dropped, 16-bit scaled to 8-bit."""
    if not os.path.isfile(path):
        raise ImageReadError(f"{path}: no such image file")
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageReadError(f"{path}: OpenCV cannot decode it (not an image, or corrupt)")
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)  # 65535 -> 255, rounded
    elif img.dtype != np.uint8:
        raise ImageReadError(f"{path}: pixel type {img.dtype} is not supported (8 or 16-bit only)")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1 or channels == 2:  # gray, or gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise ImageReadError(f"{path}: {channels} channels is not a photo this reads")
