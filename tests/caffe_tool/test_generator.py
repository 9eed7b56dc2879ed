"""The NetSpec generator: checked-in files match it, configs validate, geometry is consistent,
and the train net runs forward and backward with every learnable layer getting a gradient."""
import os
import subprocess
import sys

import numpy as np
import pytest

import caffe

from fassst.bench.timing import net_from_spec
from fassst.build_paths import REPO_ROOT
from fassst.caffe_tool.generate import generated_files
from fassst.config import config_names, load_config
from fassst.data.layer import data_layer_tops
from fassst.net import geometry
from fassst.net.fassst_net import build_net
from fassst.net.losses import loss_weights
from fassst.weights.convert_mobilenet_v2 import imagenet_weights



def test_checked_in_files_match_generator(tmp_path):
    """What scripts/gen_prototxt.py writes now equals what is committed (else: run it)."""
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "gen_prototxt.py"),
                    "--out", str(tmp_path)], check=True, capture_output=True)
    for name in config_names():
        for rel in generated_files(load_config(name)):
            with open(os.path.join(REPO_ROOT, rel)) as f:
                committed = f.read()
            assert (tmp_path / rel).read_text() == committed, \
                f"{rel} is stale: run scripts/gen_prototxt.py and commit the result"


def test_unknown_config_key_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "bad", "num_slotz": 36}')
    with pytest.raises(ValueError, match="num_slotz"):
        load_config(str(bad))


def test_freeze_iam_bn_at_must_be_a_fraction(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "bad", "solver": {"freeze_iam_bn_at": 1.5}}')
    with pytest.raises(ValueError, match="freeze_iam_bn_at"):
        load_config(str(bad))


@pytest.mark.parametrize("backbone", sorted(geometry.BACKBONE_STAGES))
@pytest.mark.parametrize("n", [16, 25, 36, 49, 64, 81])
def test_slot_grid_for_paper_ns(n, backbone):
    s = geometry.grid_side(n)
    assert s * s == n
    for size, depth in ((416, 4), (416, 5), (416, 6), (768, 5)):
        downs, k, stride = geometry.iam_plan(size, depth, n, backbone)
        g = geometry.feature_side(size, geometry.BACKBONE_STAGES[backbone][depth][0])
        for _ in range(downs):
            g = (g + 1) // 2
        assert (g - k) // stride + 1 == s  # the pooling lands exactly on S x S


def test_non_square_slot_count_is_rejected():
    with pytest.raises(ValueError, match="square"):
        geometry.grid_side(40)


def test_stage_stride_names_bad_backbone_and_stage():
    with pytest.raises(ValueError, match="resnet18"):
        geometry.stage_stride("resnet18", 5)
    with pytest.raises(ValueError, match="no stage 2"):
        geometry.stage_stride("resnet50_fpn", 2)


@pytest.mark.parametrize("name", ["fassst_416_coco", "fassst_768_cityscapes",
                                  "fassst_416_coco_r50fpn"])
def test_deploy_shapes_at_paper_size(name):
    cfg = load_config(name)
    net = net_from_spec(build_net(cfg, "deploy"), caffe.TEST)
    s = geometry.grid_side(cfg.num_slots)
    assert net.blobs["iam/out"].data.shape == (1, 4 + cfg.num_classes, s, s)
    for k, stride in ((1, 8), (2, 16), (3, 32)):
        side = geometry.feature_side(cfg.input_size, stride)
        assert net.blobs[f"p{k}/conv"].data.shape == (1, cfg.mask_dim, side, side)


def _fill_train_inputs(net, cfg, rng):
    net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape)
    b, n, c = net.blobs["cls_target"].data.shape
    cls = np.zeros((b, n, c))
    cls[:, :3, 1] = 1  # three assigned slots per image
    net.blobs["cls_target"].data[...] = cls
    net.blobs["loc_target"].data[...] = rng.uniform(0.1, 0.9, (b, n, 4))
    lw = np.zeros((b, n, 4))
    lw[:, :3] = 1
    net.blobs["loc_weight"].data[...] = lw
    r = net.blobs["gt_rois"].data.shape[0]
    xy = rng.uniform(0, cfg.input_size / 2, (r, 2))
    wh = rng.uniform(16, cfg.input_size / 2, (r, 2))
    net.blobs["gt_rois"].data[...] = np.column_stack([np.arange(r) % b, xy, xy + wh])
    net.blobs["mask_target"].data[...] = rng.uniform(0, 1, net.blobs["mask_target"].shape) > 0.5


def test_train_net_forward_backward_reaches_every_layer():
    """From the ImageNet backbone (its layer names match the converted caffemodel's), random
    inputs give finite losses and a gradient in every learnable layer."""
    cfg = load_config("fassst_cpu_sample")
    proto = build_net(cfg, "train")
    net = net_from_spec(proto, caffe.TRAIN)
    net.copy_from(imagenet_weights(cfg))
    assert np.abs(net.params["features.0.0"][0].data).sum() > 0
    _fill_train_inputs(net, cfg, np.random.default_rng(0))
    out = net.forward()
    assert set(out) == set(loss_weights(cfg))
    assert {"loss_mask", "loss_loc", "loss_cls"} <= set(out)
    for name, value in out.items():
        assert np.isfinite(value) and value > 0, (name, value)
    net.backward()
    no_grad = _learnable_blobs_without_gradient(net, proto)
    assert not no_grad, no_grad


def _learnable_blobs_without_gradient(net, proto):
    """(layer, blob index) of every learnable blob whose diff is all zero after a backward.

    A blob is learnable unless its ParamSpec has lr_mult 0: BatchNorm's statistics and fixed
    layers (the FPN's nearest-upsampling deconvolutions) are never changed by the solver. Every
    other blob, backbone included, must get a gradient through the losses.
    """
    specs = {layer.name: layer.param for layer in proto.layer}
    return [(name, i) for name, blobs in net.params.items() for i, b in enumerate(blobs)
            if (i >= len(specs[name]) or specs[name][i].lr_mult != 0)
            and not np.abs(b.diff).any()]


def test_train_net_forward_backward_resnet50_fpn():
    """ResNet-50-FPN (no ImageNet weights here, so BatchNorm on batch statistics) at a small
    input and narrow heads: finite losses and a gradient in every learnable blob."""
    cfg = load_config("fassst_416_coco_r50fpn", input_size=128, freeze_backbone_bn=False,
                      num_slots=16, num_classes=8, mask_dim=32, iam_dim=32, max_train_rois=4)
    proto = build_net(cfg, "train", batch_size=2)
    net = net_from_spec(proto, caffe.TRAIN)
    _fill_train_inputs(net, cfg, np.random.default_rng(0))
    out = net.forward()
    assert set(out) == {"loss_mask", "loss_loc", "loss_cls"}
    for name, value in out.items():
        assert np.isfinite(value) and value > 0, (name, value)
    net.backward()
    assert "layer4.2.conv3" in net.params and "fpn.inner_blocks.2" in net.params
    no_grad = _learnable_blobs_without_gradient(net, proto)
    assert not no_grad, no_grad


def test_train_net_survives_a_batch_with_zero_rois():
    """A batch whose images hold no assignable instance gives zero ROIs: the whole train net
    (ROIAlign, RFF, BatchNorm, Scale, Deconvolution, Dice) must run forward and backward on
    the empty blobs (overlay patches 5-7), with a zero mask loss and finite other losses."""
    cfg = load_config("fassst_cpu_sample")
    net = net_from_spec(build_net(cfg, "train"), caffe.TRAIN)
    _fill_train_inputs(net, cfg, np.random.default_rng(1))
    net.blobs["gt_rois"].reshape(0, 5)
    net.blobs["mask_target"].reshape(0, 1, *net.blobs["mask_target"].shape[2:])
    out = net.forward()
    assert net.blobs["mask_logits"].shape[0] == 0
    assert out["loss_mask"] == 0
    assert np.isfinite(out["loss_loc"]) and np.isfinite(out["loss_cls"])
    net.backward()
    assert np.isfinite(net.params["features.0.0"][0].diff).all()
    assert not np.abs(net.params["tail/conv1"][0].diff).any()  # no ROI, no mask gradient


@pytest.mark.parametrize("where", ["early", "last"])
def test_iam_pool_position(where):
    # n 36 at 256: one stride-2 conv takes E's 16 x 16 to 8 x 8, a 3 x 3 stride-1 pool to 6 x 6.
    cfg = load_config("fassst_cpu_sample_n36", iam_pool=where)
    net = net_from_spec(build_net(cfg, "deploy"), caffe.TEST)
    assert net.blobs["iam/conv1"].data.shape[2:] == (8, 8)
    assert net.blobs["iam/pool"].data.shape[2:] == (6, 6)
    side = 6 if where == "early" else 8  # the stride-1 convs run on the slot grid, or before the pool
    for i in range(2, cfg.iam_convs + 1):
        assert net.blobs[f"iam/conv{i}"].data.shape[2:] == (side, side)
    assert net.blobs["iam/out"].data.shape[2:] == (6, 6)
    bottoms = {name: net.bottom_names[name] for name in net._layer_names}
    assert bottoms["iam/out"] == ["iam/pool" if where == "last" else f"iam/conv{cfg.iam_convs}"]


def test_iam_pool_setting_is_checked():
    with pytest.raises(ValueError, match="iam_pool"):
        load_config("fassst_cpu_sample_n36", iam_pool="middle")


def test_box_coding_reaches_the_decoder_and_the_data_layer(tmp_path):
    """"cell" sets IAMDecode's box_coding and the data layer's targets; "image" leaves both nets
    as they were (no field written), and anything else is refused by name."""
    for coding, want in (("image", None), ("cell", caffe.params.IAMDecode.CELL)):
        cfg = load_config("fassst_cpu_sample", box_coding=coding)
        deploy = build_net(cfg, "deploy")
        decode = [la for la in deploy.layer if la.type == "IAMDecode"][0].iam_decode_param
        assert decode.HasField("box_coding") == (want is not None)
        assert want is None or decode.box_coding == want
        ns = caffe.NetSpec()
        data_layer_tops(ns, cfg, ann="a.json", images="img")
        param_str = str(ns.to_proto().layer[0].python_param.param_str)
        assert ('"box_coding": "cell"' in param_str) == (coding == "cell")
    with pytest.raises(ValueError, match="box_coding"):
        load_config("fassst_cpu_sample", box_coding="centre")


def test_experiment_configs_still_load():
    """Every config a run history in docs/experiments/ names still loads, so its command runs."""
    root = os.path.join(REPO_ROOT, "docs", "experiments")
    paths = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files
             if f.endswith(".json")]
    assert paths
    for path in paths:
        assert load_config(path).name, path  # raises, naming the file and key, where stale
