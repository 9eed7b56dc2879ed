"""ResNet-50-FPN backbone (Table 6): torchvision's layout and names, stage and FPN shapes, the
generator's stage mapping, a deploy forward against numpy references for the pooling and the
nearest upsampling, and the upsampling's backward.

There are no ImageNet weights for this backbone here; the tests use Caffe's initial weights.
"""
import numpy as np
import pytest

import caffe
from caffe import layers as L

from fassst.bench import cost
from fassst.bench.timing import net_from_spec
from fassst.config import load_config
from fassst.net import geometry
from fassst.net import resnet50_fpn as r50
from fassst.net.fassst_net import build_net

BLOCKS = {"layer1": 3, "layer2": 4, "layer3": 6, "layer4": 3}  # torchvision resnet50
# torchvision resnet50 has 25,557,032 parameters; its fc (2048 x 1000 + 1000) is not built here.
RESNET50_PARAMS_WITHOUT_FC = 25557032 - (2048 * 1000 + 1000)


@pytest.fixture(scope="module")
def net_416():
    proto = build_net(load_config("fassst_416_coco_r50fpn"), "deploy")
    return proto, net_from_spec(proto, caffe.TEST)


def _small_cfg(**overrides):
    kw = dict(input_size=128, num_slots=16, num_classes=8, mask_dim=32, iam_dim=32)
    kw.update(overrides)
    return load_config("fassst_416_coco_r50fpn", **kw)


def test_stage_and_fpn_shapes_at_416(net_416):
    _, net = net_416
    for blob, stride, channels in r50.STAGES.values():  # C2..C5
        assert net.blobs[blob].data.shape == (1, channels, 416 // stride, 416 // stride), blob
    assert [s for _, s, _ in r50.STAGES.values()] == [4, 8, 16, 32]
    assert [c for _, _, c in r50.STAGES.values()] == [256, 512, 1024, 2048]
    for i, (level, stride) in enumerate(((3, 8), (4, 16), (5, 32))):  # P3..P5
        side = 416 // stride
        assert net.blobs[f"fpn.layer_blocks.{i}"].data.shape == (1, 256, side, side), level
    assert net.blobs["maxpool"].data.shape == (1, 64, 104, 104)  # floor rounding, as PyTorch


@pytest.mark.parametrize("head_depth, e_blob", [(4, "fpn.layer_blocks.1"),
                                                (5, "fpn.layer_blocks.1"),
                                                (6, "fpn.layer_blocks.2")])
def test_stage_indices_map_to_fpn_levels(head_depth, e_blob):
    """Pyramid 3, 5, 7 -> P3, P4, P5; E at head depth 4/5 -> P4, 6 -> P5; the strides in
    geometry.RESNET50_FPN_STAGES are those of the blobs."""
    cfg = _small_cfg(head_depth=head_depth)
    proto = build_net(cfg, "deploy")
    bottoms = {layer.name: list(layer.bottom) for layer in proto.layer}
    assert bottoms["iam/conv1"] == [e_blob]
    for k in (1, 2, 3):
        assert bottoms[f"p{k}/lateral"] == [f"fpn.layer_blocks.{k - 1}"]
    net = net_from_spec(proto, caffe.TEST)
    taps = {head_depth: e_blob, 3: "fpn.layer_blocks.0", 5: "fpn.layer_blocks.1",
            7: "fpn.layer_blocks.2"}
    for stage, blob in taps.items():
        stride, channels = geometry.RESNET50_FPN_STAGES[stage]
        side = geometry.feature_side(cfg.input_size, stride)
        assert net.blobs[blob].data.shape == (1, channels, side, side), (stage, blob)


def test_layer_names_follow_torchvision_keys(net_416):
    proto, net = net_416
    types = {layer.name: layer.type for layer in proto.layer}
    convs = ["conv1"] + [f"{m}.{j}.conv{k}" for m, n in BLOCKS.items() for j in range(n)
                         for k in (1, 2, 3)] + [f"{m}.0.downsample.0" for m in BLOCKS]
    bns = ["bn1"] + [f"{m}.{j}.bn{k}" for m, n in BLOCKS.items() for j in range(n)
                     for k in (1, 2, 3)] + [f"{m}.0.downsample.1" for m in BLOCKS]
    assert len(convs) == len(bns) == 53  # torchvision resnet50's Conv2d / BatchNorm2d count
    backbone = {n for n in types if cost.group_of(n) == "backbone"}
    assert {n for n in backbone if types[n] == "Convolution"} == set(convs)
    assert {n for n in backbone if types[n] == "BatchNorm"} == set(bns)
    assert {n for n in backbone if types[n] == "Scale"} == {b + "/scale" for b in bns}
    for bn in bns:
        layer = next(x for x in proto.layer if x.name == bn)
        assert layer.batch_norm_param.eps == pytest.approx(1e-5)
    # conv weights + BN affine (Scale) = torchvision's learnable parameters without fc
    learnable = sum(b.data.size for n in convs + [b + "/scale" for b in bns]
                    for b in net.params[n])
    assert learnable == RESNET50_PARAMS_WITHOUT_FC
    assert [net.params[n][0].data.shape for n in ("conv1", "layer2.0.conv2",
                                                  "layer2.0.downsample.0")] == \
        [(64, 3, 7, 7), (128, 128, 3, 3), (512, 256, 1, 1)]


def _set_unit_bn_statistics(net, proto):
    """Mean 0, variance 1 (a stand-in for real statistics; Caffe's zeros blow up a deep net)."""
    for layer in proto.layer:
        if layer.type == "BatchNorm":
            mean, var, factor = net.params[layer.name]
            mean.data[...], var.data[...], factor.data[...] = 0, 1, 1


def _maxpool_3x3_s2_pad1_floor(x):
    """PyTorch's nn.MaxPool2d(3, 2, 1) on (N, C, H, W): -inf padding, floor rounding."""
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2, w + 2), -np.inf, dtype=x.dtype)
    padded[:, :, 1:-1, 1:-1] = x
    oh, ow = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    out = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for dy in range(3):
        for dx in range(3):
            out = np.maximum(out, padded[:, :, dy:dy + 2 * oh:2, dx:dx + 2 * ow:2])
    return out


def _nearest2(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def test_deploy_forward_small_input():
    cfg = _small_cfg()
    proto = build_net(cfg, "deploy")
    net = net_from_spec(proto, caffe.TEST)
    _set_unit_bn_statistics(net, proto)
    net.blobs["data"].data[...] = np.random.default_rng(0).standard_normal((1, 3, 128, 128))
    out = net.forward()
    for level, side in enumerate((16, 8, 4)):
        p = net.blobs[f"fpn.layer_blocks.{level}"].data
        assert p.shape == (1, 256, side, side) and np.isfinite(p).all()
    rois = net.blobs["rois"].data.shape[0]
    assert 0 <= rois <= cfg.num_slots
    assert out["masks"].shape == (rois, 1, 56, 56) and np.isfinite(out["masks"]).all()
    b = net.blobs
    assert b["maxpool"].data.shape == (1, 64, 32, 32)
    np.testing.assert_array_equal(b["maxpool"].data, _maxpool_3x3_s2_pad1_floor(b["conv1"].data))
    np.testing.assert_array_equal(b["fpn/up5"].data, _nearest2(b["fpn.inner_blocks.2"].data))
    np.testing.assert_array_equal(b["fpn/up4"].data, _nearest2(b["fpn/merge4"].data))
    for merge, inner, up in (("fpn/merge4", "fpn.inner_blocks.1", "fpn/up5"),
                             ("fpn/merge3", "fpn.inner_blocks.0", "fpn/up4")):
        np.testing.assert_allclose(b[merge].data, b[inner].data + b[up].data, rtol=1e-6)


def test_fpn_upsampling_backward_sums_each_2x2_block():
    """The top-down path carries gradient: the upsampling's backward is the adjoint of nearest
    x2 (each input gets the sum of its 2x2 block), so C4 and C5 learn from the P3/P4 losses."""
    ns = caffe.NetSpec()
    for name, (channels, side) in (("c3", (512, 8)), ("c4", (1024, 4)), ("c5", (2048, 2))):
        ns[name] = L.Input(input_param=dict(shape=dict(dim=[2, channels, side, side])))
    levels = r50.fpn(ns, {"C3": ns.c3, "C4": ns.c4, "C5": ns.c5})
    for p, side in (("P3", 8), ("P4", 4), ("P5", 2)):
        ns[p + "/loss"] = L.EuclideanLoss(levels[p], L.DummyData(
            shape=dict(dim=[2, 256, side, side]), data_filler=dict(type="gaussian")))
    proto = ns.to_proto()
    net = net_from_spec(proto, caffe.TRAIN)
    rng = np.random.default_rng(1)
    for name in ("c3", "c4", "c5"):
        net.blobs[name].data[...] = rng.standard_normal(net.blobs[name].shape)
    net.forward()
    net.backward()
    for up in ("fpn/up5", "fpn/up4"):
        top_diff = net.blobs[up].diff
        bottom = net.bottom_names[up][0]  # the Split branch feeding the upsampling
        expected = top_diff.reshape(top_diff.shape[:2] + (top_diff.shape[2] // 2, 2,
                                                          top_diff.shape[3] // 2, 2)).sum((3, 5))
        assert np.abs(top_diff).any()
        # float32 sums of four terms in another order: relative to the largest gradient
        np.testing.assert_allclose(net.blobs[bottom].diff, expected, rtol=1e-5,
                                   atol=1e-6 * np.abs(expected).max())
    for layer in proto.layer:
        if layer.type == "Deconvolution":  # fixed weights: the solver never changes them
            assert [(p.lr_mult, p.decay_mult) for p in layer.param] == [(0, 0)], layer.name
            np.testing.assert_array_equal(net.params[layer.name][0].data, 1)
