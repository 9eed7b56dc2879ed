"""fassst_masks (python/fassst/native/masks.cpp), the C++ paste-back and RLE, against references
that share none of its code: its windows are letterbox.paste_window's to the pixel, its pasted
masks the float64 bilinear reference of test_data_letterbox thresholded at three levels (flipped
letterboxes, boxes off the photo and in the padding included), and its RLE strings pycocotools'
own encode. The module must be built: scripts/test.sh builds it with everything else."""
import numpy as np
import pytest
from pycocotools import mask as mask_util

from fassst import native
from fassst.data import letterbox as lbx
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.sample_data import ensure_sample_data
from test_data_letterbox import bilinear_paste, roi_cases


@pytest.fixture(scope="module")
def fast():
    module = native.masks()
    assert module is not None, f"fassst_masks is not built in {native.native_dir()}: run scripts/setup.sh"
    return module


@pytest.fixture(scope="module")
def dataset():
    return CocoDataset(*ensure_sample_data())


@pytest.mark.parametrize("flip", [False, True])
def test_paste_equals_the_float64_reference_at_every_level(fast, dataset, flip):
    rng = np.random.default_rng(4)
    seen = near = 0
    for lb, m, box in roi_cases(dataset, 416, flip, rng):
        ref = bilinear_paste(m, box, lb)
        for level in (0.2, 0.5, 0.8):
            pasted = np.zeros((1, lb.height, lb.width), bool)
            windows = fast.paste_masks(m[None], np.asarray(box)[None], lb.affine, pasted, level)
            assert tuple(windows[0]) == lbx.paste_window(box, lb, m.shape)
            differ = pasted[0] != (ref >= level)
            # float32 blending against float64: only values within 1e-5 of the level may differ
            assert not differ.any() or np.abs(ref[differ] - level).max() <= 1e-5, (box, level)
            near += differ.sum()
            seen += pasted.any()
    assert seen >= 100 and near <= 2


def test_paste_many_rois_at_once_and_refusals(fast, dataset):
    """One call for K ROIs equals K calls of one; planes of empty windows stay all False."""
    s = dataset.load(2)
    lb = lbx.fit(*s.image.shape[:2], 416)
    rng = np.random.default_rng(5)
    boxes = np.concatenate([rng.uniform(-50, 300, (12, 2)), rng.uniform(5, 200, (12, 2))], 1)
    boxes[:, 2:] += boxes[:, :2]
    boxes[0] = [500, 500, 600, 600]  # off the photo's part of the input: empty window
    masks = rng.random((12, 28, 28)).astype(np.float32)
    together = np.zeros((12, lb.height, lb.width), bool)
    windows = fast.paste_masks(masks, boxes.astype(np.float32), lb.affine, together, 0.5)
    assert windows.dtype == np.int32 and windows.shape == (12, 4)
    x0, y0, x1, y1 = windows[0]
    assert (x1 - x0) * (y1 - y0) <= 0 and not together[0].any()
    for k in range(12):
        alone = np.zeros((1, lb.height, lb.width), bool)
        w = fast.paste_masks(masks[k:k + 1], boxes[k:k + 1].astype(np.float32), lb.affine, alone, 0.5)
        np.testing.assert_array_equal(w[0], windows[k])
        np.testing.assert_array_equal(alone[0], together[k])
    with pytest.raises(ValueError, match="one per mask"):
        fast.paste_masks(masks, boxes[:3], lb.affine, together, 0.5)
    with pytest.raises(ValueError, match="one plane per mask"):
        fast.paste_masks(masks, boxes, lb.affine, together[:2], 0.5)


def pycocotools_counts(masks):
    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0), dtype=np.uint8))
    return [r["counts"] for r in rles]


def bounding_windows(masks):
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        out.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else (0, 0, 0, 0))
    return np.array(out, np.int64)


def test_rle_strings_are_pycocotools(fast):
    rng = np.random.default_rng(6)
    h, w = 23, 31
    m = np.zeros((12, h, w), bool)
    m[0, :, 4:9] = True                           # whole columns: one run across columns
    m[1, 10:, 3:] = True                          # to the last pixel: counts end with 1s
    m[2, 0, 0] = m[2, -1, -1] = True              # first and last pixel
    m[3, :5, 4] = m[3, 18:, 4] = m[3, :3, 5] = True  # a run from one column's foot to the next
    m[4] = True
    m[6, 5:9, 7:12] = rng.random((4, 5)) < 0.5    # inner window, runs stopped at its foot
    m[7, 5:, 7:12] = True                         # window to the bottom, not the top
    m[8, :9, 7:12] = True                         # window from the top, not to the bottom
    for k in range(9, 12):
        m[k] = rng.random((h, w)) < (0.05, 0.5, 0.95)[k - 9]
    windows = bounding_windows(m)
    assert fast.rle_strings(m, windows) == pycocotools_counts(m)
    loose = windows + [-3, -2, 4, 5]              # larger than the masks, past the image: clipped
    assert fast.rle_strings(m, loose) == pycocotools_counts(m)
    whole = np.tile([0, 0, w, h], (12, 1))
    assert fast.rle_strings(m, whole) == pycocotools_counts(m)
    # counts that need several 5-bit groups, negative differences included
    big = np.zeros((3, 700, 900), bool)
    big[0, 100:650, 20:880] = True
    big[1, 3, 899] = True
    big[2, ::7, ::5] = True
    assert fast.rle_strings(big, bounding_windows(big)) == pycocotools_counts(big)
    with pytest.raises(ValueError, match="one per mask"):
        fast.rle_strings(m, windows[:5])
