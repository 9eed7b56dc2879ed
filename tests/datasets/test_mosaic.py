"""The mosaic proxy data set: instances move with their photos, and it is deterministic."""
import json

import cv2
import numpy as np
import pytest

from fassst.data import coco_rle
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.mosaic import make_mosaics
from fassst.datasets.sample_data import ensure_sample_data

# pycocotools 2.0.11 warns on every single-mask decode under numpy 2 (its own code, harmless).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_mosaic_masks_follow_their_photos(tmp_path):
    ann, images = ensure_sample_data()
    path = make_mosaics(ann, images, str(tmp_path / "a"), 3, side=384, seed=5, quiet=True)
    again = make_mosaics(ann, images, str(tmp_path / "b"), 3, side=384, seed=5, quiet=True)
    doc, doc2 = json.load(open(path)), json.load(open(again))
    assert doc["annotations"] == doc2["annotations"] and doc["images"] == doc2["images"]
    src = CocoDataset(ann, images)
    by_name = {src.coco.imgs[i]["file_name"]: k for k, i in enumerate(src.image_ids)}
    mosaics = CocoDataset(path, str(tmp_path / "a" / "images"))
    checked = 0
    for k in range(len(mosaics)):
        m = mosaics.load(k)
        tiles = mosaics.coco.imgs[m.image_id]["tiles"]
        assert len(tiles) == 4
        expected = 0
        for t in tiles:
            s = src.load(by_name[t["file_name"]])
            x, y, w, h = t["box"]
            inside = [r for r in m.rles if _inside(coco_rle.decode(r), x, y, w, h)]
            expected += len(s.rles)
            # Each large source instance, moved by the tile's placement, covers the pixels of
            # one mosaic instance of the same class and the same mean colour.
            for rle, cls in zip(s.rles, s.classes):
                mask = coco_rle.decode(rle)
                if mask.sum() < 3000:
                    continue
                moved = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
                moved = moved[:, ::-1] if t["flip"] else moved
                full = np.zeros((384, 384), bool)
                full[y:y + h, x:x + w] = moved > 0
                ious = [(_iou(full, coco_rle.decode(r)), c) for r, c in zip(m.rles, m.classes)]
                best, best_cls = max(ious, key=lambda v: v[0])
                assert best > 0.99 and best_cls == cls
                src_colour = s.image[mask].mean(0)
                assert np.abs(m.image[full].mean(0) - src_colour).max() < 12
                checked += 1
            assert len(inside) <= len(s.rles)
        assert len(m.rles) <= expected  # tiny instances may vanish, none appear
    assert checked >= 3


def _inside(mask, x, y, w, h):
    ys, xs = np.nonzero(mask)
    return xs.min() >= x and xs.max() < x + w and ys.min() >= y and ys.max() < y + h


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)
