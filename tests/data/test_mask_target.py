"""Mask targets against a direct computation: detectron2's aligned ROIAlign written out per
bin and per sample, with the scalar bilinear of its CPU kernel."""
import math

import numpy as np
import pytest

from fassst.data.coco_dataset import CocoDataset, decode_mask
from fassst.data.letterbox import fit
from fassst.data.mask_target import mask_targets, roi_mask_target
from fassst.datasets.sample_data import ensure_sample_data


def _bilinear(m, y, x):
    """detectron2 ROIAlign's bilinear_interpolate (index coordinates)."""
    h, w = m.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * m[y0, x0] + (1 - ly) * lx * m[y0, x1]
            + ly * (1 - lx) * m[y1, x0] + ly * lx * m[y1, x1])


def _direct(mask, box, affine, size, ratio):
    ax, bx, ay, by = affine
    x1, y1, x2, y2 = box
    bw, bh = (x2 - x1) / size, (y2 - y1) / size
    ky = ratio or math.ceil(bh / abs(ay))
    kx = ratio or math.ceil(bw / abs(ax))
    out = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            acc = 0.0
            for sy in range(ky):
                for sx in range(kx):
                    yin = y1 + i * bh + (sy + 0.5) * bh / ky   # input pixels
                    xin = x1 + j * bw + (sx + 0.5) * bw / kx
                    acc += _bilinear(mask, (yin - by) / ay - 0.5, (xin - bx) / ax - 0.5)
            out[i, j] = acc / (ky * kx)
    return out


def test_identity_box_with_one_sample_per_bin_is_the_mask():
    m = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 1, 0]], np.uint8)
    got = roi_mask_target(m, (0, 0, 4, 4), (1.0, 0.0, 1.0, 0.0), 4, sampling_ratio=1)
    np.testing.assert_array_equal(got, m)
    half = roi_mask_target(m[:2, :], (0, 0, 4, 2), (1.0, 0.0, 1.0, 0.0), 2, sampling_ratio=1)
    np.testing.assert_allclose(half, [[1, 0], [0.5, 0.5]])  # centres between columns


def test_full_mask_gives_ones_and_far_outside_gives_zeros():
    m = np.ones((20, 30), np.uint8)
    np.testing.assert_array_equal(roi_mask_target(m, (5, 5, 15, 12), (1, 0, 1, 0), 8), 1)
    np.testing.assert_array_equal(roi_mask_target(m, (40, 40, 60, 60), (1, 0, 1, 0), 8), 0)


@pytest.fixture(scope="module")
def real_instances():
    """(mask, box in input pixels, affine) of real instances, plain and flipped letterbox."""
    ds = CocoDataset(*ensure_sample_data())
    out = []
    for index in (0, 2, 11):  # VOC photos and the nuclei image
        s = ds.load(index)
        lb = fit(*s.image.shape[:2], 256)
        for flip, i in ((False, 0), (True, 1)):
            box_lb = lb.flipped() if flip else lb
            out.append((decode_mask(s.rles[i]), box_lb.boxes_to_input(s.boxes[i:i + 1])[0],
                        box_lb.affine))
    return out


@pytest.mark.parametrize("ratio", [0, 1, 2])
def test_real_masks_match_direct_roi_align(real_instances, ratio):
    size = 14  # the direct loop is scalar Python; the code path is the same for 56
    for mask, box, affine in real_instances:
        got = roi_mask_target(mask, box, affine, size, sampling_ratio=ratio)
        np.testing.assert_allclose(got, _direct(mask, box, affine, size, ratio), atol=1e-4)
        assert got.min() >= 0 and got.max() <= 1 and got.max() > 0.99


def test_batch_of_targets_is_56_square_in_order(real_instances):
    masks = [m for m, _, _ in real_instances[:2]]
    boxes = [b for _, b, _ in real_instances[:2]]
    affine = real_instances[0][2]
    out = mask_targets(masks, boxes, affine, 56)
    assert out.shape == (2, 1, 56, 56) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1, 0], roi_mask_target(masks[1], boxes[1], affine, 56))
    assert mask_targets([], np.zeros((0, 4)), affine, 56).shape == (0, 1, 56, 56)
