"""Letterbox: placement, padding, normalisation, and round trips of boxes and masks on the
sample data set's real photos and instance masks."""
import cv2
import numpy as np
import pytest

from fassst.data import letterbox as lbx
from fassst.data.coco_dataset import CocoDataset, decode_mask
from fassst.data.mask_target import roi_mask_target
from fassst.datasets.sample_data import ensure_sample_data


@pytest.fixture(scope="module")
def dataset():
    return CocoDataset(*ensure_sample_data())


def _iou(a, b):
    a, b = a > 0.5, b > 0.5
    return (a & b).sum() / max((a | b).sum(), 1)


def test_fit_keeps_aspect_and_centres():
    assert lbx.fit(338, 500, 416) == lbx.Letterbox(416, 338, 500, 281, 416, 67, 0)
    assert lbx.fit(907, 1210, 256) == lbx.Letterbox(256, 907, 1210, 192, 256, 32, 0)
    assert lbx.fit(512, 512, 256) == lbx.Letterbox(256, 512, 512, 256, 256, 0, 0)
    assert lbx.fit(640, 100, 320) == lbx.Letterbox(320, 640, 100, 320, 50, 0, 135)


def test_image_is_resized_into_place_and_padded_with_the_mean(dataset):
    s = dataset.load(0)
    lb = lbx.fit(*s.image.shape[:2], 416)
    out = lbx.image_to_input(s.image, lb)
    inside = out[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w]
    np.testing.assert_array_equal(inside, cv2.resize(s.image, (lb.new_w, lb.new_h)))
    assert (out[:lb.pad_y] == lbx.MEAN_RGB_U8).all()
    assert (out[lb.pad_y + lb.new_h:] == lbx.MEAN_RGB_U8).all()
    blob = lbx.to_blob(out)
    assert blob.shape == (3, 416, 416) and blob.dtype == np.float32
    assert np.abs(blob[:, :lb.pad_y]).max() < 0.01  # the padding normalises to ~0
    flipped = lbx.image_to_input(s.image, lb.flipped())
    np.testing.assert_array_equal(flipped, out[:, ::-1])


def test_to_blob_is_imagenet_normalisation():
    px = np.array([[[255, 0, 128]]], np.uint8)
    expect = (np.array([1.0, 0.0, 128 / 255]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(lbx.to_blob(px)[:, 0, 0], expect, rtol=1e-5)
    assert lbx.to_blob(np.stack([px[0], px[0]])[:, None]).shape == (2, 3, 1, 1)


@pytest.mark.parametrize("size", [256, 416])
@pytest.mark.parametrize("flip", [False, True])
def test_boxes_round_trip(dataset, size, flip):
    for i in range(len(dataset)):
        s = dataset.load(i)
        lb = lbx.fit(*s.image.shape[:2], size)
        lb = lb.flipped() if flip else lb
        inp = lb.boxes_to_input(s.boxes)
        assert (inp[:, 2] >= inp[:, 0]).all() and (inp[:, 3] >= inp[:, 1]).all()
        assert inp.min(initial=0) >= 0 and inp.max(initial=0) <= size + 1e-3
        np.testing.assert_allclose(lb.boxes_to_original(inp), s.boxes, atol=2e-3)


@pytest.mark.parametrize("flip", [False, True])
def test_boxes_follow_the_pixels(dataset, flip):
    """The mapped box of a real mask bounds the letterboxed mask (to a pixel)."""
    s = dataset.load(0)
    lb = lbx.fit(*s.image.shape[:2], 416)
    lb = lb.flipped() if flip else lb
    for rle in s.rles:
        mask = decode_mask(rle)
        ys, xs = np.nonzero(mask)
        tight = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        ys, xs = np.nonzero(lbx.mask_to_input(mask, lb) > 0.5)
        got = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        np.testing.assert_allclose(got, lb.boxes_to_input(tight)[0], atol=1.0)


@pytest.mark.parametrize("flip", [False, True])
def test_masks_round_trip(dataset, flip):
    """Letterboxed and back (S = 416), large real masks keep their shape."""
    seen = 0
    for i in range(len(dataset)):
        s = dataset.load(i)
        lb = lbx.fit(*s.image.shape[:2], 416)
        lb = lb.flipped() if flip else lb
        for rle, area in zip(s.rles, s.areas):
            if area < 3000:
                continue
            mask = decode_mask(rle)
            back = lbx.mask_to_original(lbx.mask_to_input(mask, lb), lb)
            assert back.shape == mask.shape
            assert _iou(back, mask) > 0.93, (s.path, area)
            seen += 1
    assert seen >= 15


@pytest.mark.parametrize("flip", [False, True])
def test_roi_masks_paste_back_at_original_size(dataset, flip):
    """A 56 x 56 ROI mask target pasted back through the letterbox matches the real mask."""
    seen = 0
    for i in range(len(dataset)):
        s = dataset.load(i)
        lb = lbx.fit(*s.image.shape[:2], 416)
        lb = lb.flipped() if flip else lb
        boxes = lb.boxes_to_input(s.boxes)
        for rle, box, area in zip(s.rles, boxes, s.areas):
            if area < 3000:
                continue
            mask = decode_mask(rle)
            roi = roi_mask_target(mask, box, lb.affine, 56)
            pasted = lbx.paste_roi_mask(roi, box, lb)
            assert pasted.shape == mask.shape
            assert _iou(pasted, mask) > 0.9, (s.path, area)
            seen += 1
    assert seen >= 15


@pytest.mark.parametrize("size", [256, 416, 768])
def test_image_to_blob_equals_letterbox_then_normalise(dataset, size):
    """The fused path (one resize, a lookup table per channel) is the two-step path to the bit."""
    for i in range(len(dataset)):
        image = dataset.load(i).image
        lb = lbx.fit(*image.shape[:2], size)
        for box in (lb, lb.flipped()):
            blob = lbx.image_to_blob(image, box)
            assert blob.dtype == np.float32 and blob.shape == (3, size, size)
            np.testing.assert_array_equal(blob, lbx.to_blob(lbx.image_to_input(image, box)))
    with pytest.raises(ValueError, match="letterbox expects"):
        lbx.image_to_blob(image[1:], lb)


def bilinear_paste(roi_mask, box, lb):
    """paste_roi_mask's contract in float64 numpy, independent of OpenCV: photo pixel centre ->
    input pixel -> mask index (cell j covers box_x1 + [j, j + 1) * w / M), bilinear, 0 off the
    mask."""
    m = np.asarray(roi_mask, np.float64)
    rows, cols = m.shape
    x1, y1, x2, y2 = (float(v) for v in box)
    ax, bx, ay, by = lb.affine
    u = (ax * (np.arange(lb.width) + 0.5) + bx - x1) * cols / (x2 - x1) - 0.5
    v = (ay * (np.arange(lb.height) + 0.5) + by - y1) * rows / (y2 - y1) - 0.5

    def weights(t, n):  # (len(t), n): each sample's two taps, taps off the mask dropped
        w = np.zeros((len(t), n))
        i0 = np.floor(t).astype(int)
        for i, wt in ((i0, 1 - (t - i0)), (i0 + 1, t - i0)):
            ok = (i >= 0) & (i < n)
            w[np.nonzero(ok)[0], i[ok]] += wt[ok]
        return w

    return weights(v, rows) @ m @ weights(u, cols).T


def roi_cases(dataset, size, flip, rng):
    """(letterbox, (M, M) mask, box in input pixels) per photo: every real instance's 56 x 56
    target, plus smooth random 28 x 28 masks (all 1 for one) on boxes straddling the photo's
    edge in the input, or lying in the padding."""
    for i in range(len(dataset)):
        s = dataset.load(i)
        lb = lbx.fit(*s.image.shape[:2], size)
        lb = lb.flipped() if flip else lb
        for rle, box in zip(s.rles, lb.boxes_to_input(s.boxes)):
            yield lb, roi_mask_target(decode_mask(rle), box, lb.affine, 56), box
        for k in range(4):
            m = cv2.GaussianBlur(rng.random((28, 28)).astype(np.float32), (7, 7), 2) * 1.6 - 0.3
            if k == 0:
                m[...] = 1
            c = rng.uniform(-20, size + 20, 2)
            w = rng.uniform(3, size * 0.7, 2)
            yield lb, m, np.float32([c[0] - w[0] / 2, c[1] - w[1] / 2, c[0] + w[0] / 2,
                                     c[1] + w[1] / 2])


@pytest.mark.parametrize("flip", [False, True])
def test_paste_window_holds_the_whole_paste(dataset, flip):
    """Inside paste_window the windowed paste is the full-photo warp (the implementation before
    windows) and the float64 reference, to 1e-3; outside it both are exactly 0."""
    rng = np.random.default_rng(0)
    seen = 0
    for lb, m, box in roi_cases(dataset, 416, flip, rng):
        full = lbx.paste_roi_mask(m, box, lb)
        ref = bilinear_paste(m, box, lb)
        x0, y0, x1, y1 = window = lbx.paste_window(box, lb, m.shape)
        assert 0 <= x0 <= x1 <= lb.width and 0 <= y0 <= y1 <= lb.height
        block = lbx.paste_roi_mask(m, box, lb, window)
        assert block.shape == (y1 - y0, x1 - x0) and block.dtype == np.float32
        for whole in (full, ref):
            outside = whole.copy()
            outside[y0:y1, x0:x1] = 0
            assert not outside.any(), (box, window)
            np.testing.assert_allclose(block, whole[y0:y1, x0:x1], rtol=0, atol=1e-3)
        seen += block.size > 0
    assert seen >= 60


PLACEMENTS = [(1.0, 0.5, 0.5), (0.5, 0.0, 0.0), (0.5, 1.0, 1.0), (0.7, 0.3, 0.9)]


@pytest.mark.parametrize("scale, u, v", PLACEMENTS)
@pytest.mark.parametrize("flip", [False, True])
def test_placed_photo_boxes_and_masks_move_together(dataset, scale, u, v, flip):
    """Scale jitter: the shrunk photo lies where the letterbox says (OpenCV's resize there, the
    mean colour elsewhere), and a real mask's box maps onto the letterboxed mask to a pixel."""
    s = dataset.load(0)
    base = lbx.fit(*s.image.shape[:2], 256)
    lb = base.placed(scale, u, v)
    assert lb.new_h <= base.new_h and lb.new_w <= base.new_w
    assert lb.pad_y + lb.new_h <= 256 and lb.pad_x + lb.new_w <= 256
    if (u, v) == (0.0, 0.0):
        assert (lb.pad_y, lb.pad_x) == (0, 0)
    if (u, v) == (1.0, 1.0):
        assert (lb.pad_y + lb.new_h, lb.pad_x + lb.new_w) == (256, 256)
    lb = lb.flipped() if flip else lb
    out = lbx.image_to_input(s.image, lb)
    out = out[:, ::-1] if flip else out
    inside = out[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w]
    np.testing.assert_array_equal(inside, cv2.resize(s.image, (lb.new_w, lb.new_h)))
    outside = np.ones(out.shape[:2], bool)
    outside[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w] = False
    assert (out[outside] == lbx.MEAN_RGB_U8).all()
    for rle in s.rles:
        mask = decode_mask(rle)
        ys, xs = np.nonzero(mask)
        tight = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        moved = lbx.mask_to_input(mask, lb) > 0.5
        if moved.sum() < 20:  # shrunk below a few pixels: no box to compare
            continue
        ys, xs = np.nonzero(moved)
        got = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        np.testing.assert_allclose(got, lb.boxes_to_input(tight)[0], atol=1.0)
    np.testing.assert_allclose(lb.boxes_to_original(lb.boxes_to_input(s.boxes)), s.boxes,
                               atol=0.02 / scale)


def test_placed_refuses_what_would_leave_the_input():
    lb = lbx.fit(338, 500, 256)
    for args in [(1.2, 0.5, 0.5), (0.0, 0.5, 0.5), (0.5, -0.1, 0.5), (0.5, 0.5, 1.5)]:
        with pytest.raises(ValueError):
            lb.placed(*args)
