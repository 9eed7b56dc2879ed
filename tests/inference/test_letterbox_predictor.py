"""LetterboxPredictor's pre- and postprocessing, backend aside (a stand-in forward replays fixed
outputs): on the sample photos the windowed mask paste agrees with the implementation before it
(every ROI warped over the whole photo, kept here) and with the float64 bilinear reference of
test_data_letterbox, the boxes with the letterbox's inverse written out; the windows hold every
mask pixel, and the results' RLE is the same with the windows as without."""
import numpy as np
import pytest

from fassst.config import load_config
from fassst.data import letterbox as lbx
from fassst.data.coco_dataset import CocoDataset, decode_mask
from fassst.data.mask_target import roi_mask_target
from fassst.datasets.sample_data import ensure_sample_data
from fassst.evaluation.coco_evaluator import instances_to_results
from fassst.inference.letterbox_predictor import LetterboxPredictor
from test_data_letterbox import bilinear_paste

# each test twice: the C++ paste / RLE (fassst_masks) and the numpy path
pytestmark = pytest.mark.usefixtures("mask_path")

SIZE = 416


class Replay(LetterboxPredictor):
    def __init__(self, cfg, out):
        super().__init__(cfg)
        self.out = out

    def forward(self, blob):
        assert blob.shape == (3, SIZE, SIZE) and blob.dtype == np.float32
        return self.out


def full_photo_paste(out, lb):
    """The paste before windows: each ROI warped over the whole photo (probabilities)."""
    return [lbx.paste_roi_mask(m, b, lb) for m, b in zip(out["masks"], out["boxes"])]


def replayed_output(sample, lb, rng):
    """Real instances' 56 x 56 targets on their boxes, moved a little, and smooth random masks
    on random boxes, some past the photo's edge."""
    boxes = lb.boxes_to_input(sample.boxes) + rng.normal(0, 2, (len(sample.boxes), 4))
    masks = [roi_mask_target(decode_mask(r), b, lb.affine, 56) for r, b in zip(sample.rles, boxes)]
    for _ in range(6):
        c, w = rng.uniform(-10, SIZE + 10, 2), rng.uniform(4, SIZE * 0.6, 2)
        boxes = np.vstack([boxes, np.concatenate([c - w / 2, c + w / 2])])
        noise = rng.random((14, 14)).astype(np.float32)
        masks.append(np.kron(noise, np.ones((4, 4), np.float32)))
    k = len(boxes)
    return dict(boxes=boxes.astype(np.float32), scores=rng.random(k).astype(np.float32),
                labels=rng.integers(0, 3, k).astype(np.float32), masks=np.stack(masks))


@pytest.fixture(scope="module")
def dataset():
    return CocoDataset(*ensure_sample_data())


def test_postprocess_agrees_with_the_full_photo_paste(dataset):
    cfg = load_config("fassst_416_coco")
    rng = np.random.default_rng(0)
    inter, union, rois = [0, 0], [0, 0], 0
    for i in range(len(dataset)):
        s = dataset.load(i)
        lb = lbx.fit(*s.image.shape[:2], SIZE)
        out = replayed_output(s, lb, rng)
        inst = Replay(cfg, out)(s.image)
        # boxes: the letterbox undone, written out, clipped to the photo
        b = out["boxes"].astype(np.float64)
        x = (b[:, [0, 2]] - lb.pad_x) * lb.width / lb.new_w
        y = (b[:, [1, 3]] - lb.pad_y) * lb.height / lb.new_h
        expect = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1)
        expect = np.clip(expect, 0, [lb.width, lb.height, lb.width, lb.height])
        np.testing.assert_allclose(inst["boxes"], expect, rtol=0, atol=1e-3)
        np.testing.assert_array_equal(inst["labels"], out["labels"].astype(int))
        # masks: equal to each reference but where its value sits within 1e-3 of 0.5
        got = inst["masks"]
        assert got.shape == (len(out["boxes"]),) + s.image.shape[:2] and got.dtype == bool
        for r, ref in enumerate((full_photo_paste(out, lb),
                                 [bilinear_paste(m, b, lb) for m, b in zip(out["masks"],
                                                                           out["boxes"])])):
            for k, soft in enumerate(ref):
                differ = got[k] != (soft >= 0.5)
                assert not differ.any() or np.abs(soft[differ] - 0.5).max() <= 1e-3, (s.path, k)
                inter[r] += (got[k] & (soft >= 0.5)).sum()
                union[r] += (got[k] | (soft >= 0.5)).sum()
        # windows hold every mask pixel
        for m, (x0, y0, x1, y1) in zip(inst["masks"], inst["mask_windows"]):
            assert m.sum() == m[y0:y1, x0:x1].sum()
        rois += len(got)
    assert rois >= 100 and min(union) > 1e5
    assert min(np.divide(inter, union)) >= 0.999


def test_results_rle_is_the_same_with_windows_or_without(dataset):
    cfg = load_config("fassst_416_coco")
    rng = np.random.default_rng(1)
    s = dataset.load(0)
    lb = lbx.fit(*s.image.shape[:2], SIZE)
    inst = Replay(cfg, replayed_output(s, lb, rng))(s.image)
    bare = {k: v for k, v in inst.items() if k != "mask_windows"}
    a = instances_to_results(1, inst, [1, 2, 3], s.image.shape[:2])
    b = instances_to_results(1, bare, [1, 2, 3], s.image.shape[:2])
    assert a == b and len(a) == len(inst["masks"])
    assert sum(r["segmentation"]["counts"] != "" for r in a) == len(a)


def test_no_rois_give_empty_instances(dataset):
    s = dataset.load(0)
    out = dict(boxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
               labels=np.zeros(0, np.float32), masks=np.zeros((0, 56, 56), np.float32))
    inst = Replay(load_config("fassst_416_coco"), out)(s.image)
    assert inst["boxes"].shape == (0, 4) and inst["mask_windows"].shape == (0, 4)
    assert inst["masks"].shape == (0,) + s.image.shape[:2]
