"""coco_rle.encode (runs read off each mask's window, in C++ or numpy) gives the very strings of
pycocotools' own encode, which walks every pixel: on the sample set's real masks, random masks of
every density and shape, runs that cross from one column into the next, masks ending inside a run,
empty masks, and with windows given or found."""
import numpy as np
import pytest
from pycocotools import mask as mask_util

from fassst.data import coco_rle
from fassst.data.coco_dataset import CocoDataset, decode_mask
from fassst.datasets.sample_data import ensure_sample_data

# each test twice: the C++ paste / RLE (fassst_masks) and the numpy path
pytestmark = pytest.mark.usefixtures("mask_path")


def pycocotools_counts(masks):
    rles = mask_util.encode(np.asfortranarray(np.asarray(masks).transpose(1, 2, 0) != 0,
                                              dtype=np.uint8))
    return [r["counts"].decode("ascii") for r in rles]


def check(masks, windows=None):
    got = coco_rle.encode(masks, windows)
    assert [r["counts"] for r in got] == pycocotools_counts(masks)
    assert all(r["size"] == list(np.shape(masks)[1:]) for r in got)
    return got


def test_real_masks_of_the_sample_set():
    dataset = CocoDataset(*ensure_sample_data())
    seen = 0
    for i in range(len(dataset)):
        s = dataset.load(i)
        if not s.rles:
            continue
        masks = np.stack([decode_mask(r) for r in s.rles])
        got = check(masks)
        for r, m in zip(got, masks):
            np.testing.assert_array_equal(coco_rle.decode(r), m)
        seen += len(masks)
    assert seen >= 30


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (5, 9), (33, 20)])
def test_random_masks_of_every_density(shape):
    rng = np.random.default_rng(sum(shape))
    for p in (0.0, 0.05, 0.5, 0.95, 1.0):
        check(rng.random((5,) + shape) < p)


def test_runs_across_columns_edges_and_dtypes():
    m = np.zeros((6, 20, 30), bool)
    m[0, :, 3:7] = True            # one run over four whole columns
    m[1, 15:, 2:] = True           # to the last pixel: the counts end with 1s
    m[2, 0, 0] = m[2, -1, -1] = True
    m[3, :5, 4] = m[3, 15:, 4] = m[3, :3, 5] = True  # a run from one column's foot to the next
    m[5] = True
    check(m)
    check(m.astype(np.uint8) * 3)  # any dtype: != 0 is inside
    check(np.zeros((0, 4, 5), bool))
    assert coco_rle.encode(np.zeros((0, 4, 5), bool)) == []


def test_given_windows_tight_loose_or_whole():
    rng = np.random.default_rng(3)
    m = np.zeros((4, 40, 50), bool)
    windows = []
    for k in range(4):
        x0, y0 = rng.integers(0, 40), rng.integers(0, 30)
        x1, y1 = x0 + rng.integers(1, 11), y0 + rng.integers(1, 11)
        m[k, y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < 0.6
        windows.append((x0, y0, x1, y1))
    check(m, windows)
    check(m, np.array(windows) + [-3, -3, 3, 3])  # larger, even past the image: clipped
    check(m, [(0, 0, 50, 40)] * 4)
    with pytest.raises(ValueError, match="3 windows for 4 masks"):
        coco_rle.encode(m, windows[:3])


def test_encode_one_and_area_and_bbox():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:8] = True
    rle = coco_rle.encode_one(m)
    assert coco_rle.area_and_bbox(rle) == (15.0, [3.0, 2.0, 5.0, 3.0])
    np.testing.assert_array_equal(coco_rle.decode(rle), m)
