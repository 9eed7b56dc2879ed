"""Reading photos as 8-bit RGB, whatever their storage (gray, alpha, 16-bit), with OpenCV.

EXIF orientation is not applied (IMREAD_UNCHANGED), as PIL.Image.open does not apply it either:
pixels come out in file order, as in torchvision's reference pipeline.

Truncated files are refused, not decoded in part: libjpeg decodes a JPEG cut short, grey below
the cut, with only a warning on stderr ("Premature end of JPEG file"), and a truncated file is
the commonest corruption in real data sets (PIL refuses them by default). A JPEG must hold its
end-of-image marker after the first scan, a PNG every chunk whole with its CRC, up to IEND. Other
formats are left to OpenCV's decoders. An empty file, or bytes OpenCV refuses (cv2.error as well
as a None result), is an ImageReadError naming the file like every other unreadable photo, so
that a folder run or --skip-bad-images skips it.
"""
import os
import zlib

import cv2
import numpy as np

from fassst.errors import InputError


class ImageReadError(InputError):
    """A photo is missing or unreadable; the message names the file."""


def read_rgb(path):
    """(H, W, 3) uint8 RGB. Gray is replicated, alpha dropped, 16-bit scaled to 8-bit."""
    if not os.path.isfile(path):
        raise ImageReadError(f"{path}: no such image file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read it ({e.strerror})") from None
    if not data:
        raise ImageReadError(f"{path}: empty file (0 bytes), not an image")
    problem = incomplete(data)
    if problem:
        raise ImageReadError(f"{path}: {problem}")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # a header OpenCV refuses outside its decoders: 0 or huge sizes
        raise ImageReadError(f"{path}: OpenCV cannot decode it (it fails the check "
                             f"{getattr(e, 'err', '') or e})") from None
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


def incomplete(data):
    """Why the bytes of a JPEG or PNG file are not a whole image (text naming what is missing),
    or None: whole, or another format."""
    if data[:2] == b"\xff\xd8":
        return _jpeg_incomplete(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_incomplete(data)
    return None


def _jpeg_incomplete(data):
    """Walks the marker segments to the first scan (SOS); its entropy-coded data cannot hold
    FF D9 (a coded FF is followed by 00), so the end-of-image marker must follow it somewhere.
    Headers this walk cannot follow are left to the decoder."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0xD9:
            return "not a whole JPEG (end-of-image marker before any image data)"
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
        elif marker == 0xDA:
            if data.find(b"\xff\xd9", i) < 0:
                return (f"truncated JPEG: no end-of-image marker after its image data "
                        f"({len(data)} bytes)")
            return None
        else:
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return f"truncated JPEG: it ends inside its headers ({len(data)} bytes)"


def _png_incomplete(data):
    """Walks the chunks (length, type, data, CRC-32 of type and data) to IEND."""
    i = 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8].decode("latin-1")
        end = i + 12 + length
        if end > len(data):
            return (f"truncated PNG: chunk {kind} at byte {i} needs {length} data bytes, the "
                    f"file ends {end - len(data)} bytes short")
        if zlib.crc32(data[i + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return f"corrupt PNG: chunk {kind} at byte {i} fails its CRC"
        if kind == "IEND":
            return None
        i = end
    return f"truncated PNG: no IEND chunk ({len(data)} bytes)"
