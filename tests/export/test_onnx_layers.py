"""Per Caffe layer type: a tiny Caffe net and its ONNX export agree in ONNX Runtime.

Each case builds a NetSpec, fills every blob at random (BatchNorm: valid statistics), saves the
caffemodel, exports it through fassst.export (weights read back from that file) and runs both
on the same random inputs; outputs agree within 1e-5 (relative for large values).
"""
import numpy as np
import onnxruntime as ort
import pytest

import caffe
from caffe import layers as L
from caffe import params as P
from fassst.export.caffemodel import fold_batchnorm, read_caffemodel
from fassst.export.graph import ExportError
from fassst.export.onnx_export import convert_net
from fassst.net.load import caffe_net

TOL = dict(rtol=1e-5, atol=1e-5)


def randomize(net, rng):
    types = {name: layer.type for name, layer in zip(net._layer_names, net.layers)}
    for name, blobs in net.params.items():
        if types[name] == "BatchNorm":
            c = blobs[0].data.shape[0]
            scale = rng.uniform(0.5, 2.0)  # Caffe stores sums scaled by blob 2
            blobs[0].data[...] = rng.normal(0, 0.5, c) * scale
            blobs[1].data[...] = rng.uniform(0.3, 2.0, c) * scale
            blobs[2].data[...] = scale
        else:
            for b in blobs:
                b.data[...] = rng.normal(0, 0.5, b.data.shape)


def run_both(tmp_path, ns, inputs, outputs, opset=17, fold_bn=False, edit=None, seed=0):
    """(Caffe's outputs, ONNX Runtime's outputs) of the NetSpec `ns` on `inputs`.
    edit: optional f(net_param) applied to the exported NetParameter only."""
    net_param = ns.to_proto()
    net = caffe_net(net_param, caffe.TEST)
    randomize(net, np.random.default_rng(seed))
    path = str(tmp_path / "tiny.caffemodel")
    net.save(path)
    for name, x in inputs.items():
        net.blobs[name].reshape(*x.shape)
        net.blobs[name].data[...] = x
    net.forward()
    ref = {k: net.blobs[k].data.copy() for k in outputs}
    blobs = read_caffemodel(path)
    if fold_bn:
        net_param, blobs = fold_batchnorm(net_param, blobs)
    if edit:
        edit(net_param)
    g = convert_net(net_param, blobs, opset, output_names=outputs)
    for k in outputs:
        g.add_output(k, g.value(k, "test"))
    model = g.model("tiny")
    if opset == 17:
        assert model.ir_version == 8  # not onnx 1.23's default 14
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(outputs, session.run(list(outputs), inputs)))
    return ref, got, model


def assert_agree(ref, got):
    for k in ref:
        assert got[k].shape == ref[k].shape, k
        np.testing.assert_allclose(got[k], ref[k], err_msg=k, **TOL)


def image_input(ns, shape):
    ns.data = L.Input(shape=dict(dim=list(shape)))
    return np.random.default_rng(1).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("conv", [
    dict(num_output=5, kernel_size=3, pad=1),
    dict(num_output=6, kernel_size=3, pad=1, stride=2, group=3, bias_term=False),
    dict(num_output=6, kernel_size=3, pad=1, stride=2, group=6, bias_term=False),  # depthwise
    dict(num_output=4, kernel_size=1),
    dict(num_output=4, kernel_size=3, pad=2, dilation=2),
    dict(num_output=4, kernel_h=3, kernel_w=1, pad_h=1, pad_w=0, stride_h=2, stride_w=1),
])
def test_convolution(tmp_path, conv):
    ns = caffe.NetSpec()
    x = image_input(ns, (2, 6, 9, 8))
    ns.conv = L.Convolution(ns.data, convolution_param=conv)
    assert_agree(*run_both(tmp_path, ns, {"data": x}, ["conv"])[:2])


def test_depthwise_convolution_type_is_grouped_convolution(tmp_path):
    """`DepthwiseConvolution` (a depthwise layer type for the GPU build) exports as Conv with
    group = channels; the Caffe reference is the same weights in a stock group = channels
    Convolution."""
    ns = caffe.NetSpec()
    x = image_input(ns, (1, 6, 9, 9))
    ns.conv = L.Convolution(ns.data, convolution_param=dict(num_output=6, kernel_size=3, pad=1,
                                                            stride=2, group=6, bias_term=False))

    def to_depthwise(net_param):
        net_param.layer[1].type = "DepthwiseConvolution"
        net_param.layer[1].convolution_param.ClearField("group")

    ref, got, model = run_both(tmp_path, ns, {"data": x}, ["conv"], edit=to_depthwise)
    assert_agree(ref, got)
    conv = [n for n in model.graph.node if n.op_type == "Conv"][0]
    assert [a.i for a in conv.attribute if a.name == "group"] == [6]


@pytest.mark.parametrize("fold_bn", [False, True])
def test_batchnorm_scale_relu(tmp_path, fold_bn):
    ns = caffe.NetSpec()
    x = image_input(ns, (2, 3, 7, 7))
    ns.conv = L.Convolution(ns.data, num_output=4, kernel_size=3, pad=1, bias_term=False)
    ns.bn = L.BatchNorm(ns.conv, in_place=True, batch_norm_param=dict(use_global_stats=True, eps=1e-5))
    ns.scale = L.Scale(ns.bn, in_place=True, scale_param=dict(bias_term=True))
    ns.relu = L.ReLU(ns.scale, in_place=True)
    ns.deconv = L.Deconvolution(ns.relu, convolution_param=dict(num_output=4, kernel_size=2, stride=2,
                                                                bias_term=False))
    ns.bn2 = L.BatchNorm(ns.deconv, batch_norm_param=dict(use_global_stats=True))  # no Scale
    ref, got, model = run_both(tmp_path, ns, {"data": x}, ["bn2"], fold_bn=fold_bn)
    assert_agree(ref, got)
    ops = {n.op_type for n in model.graph.node}
    assert ("BatchNormalization" in ops) != fold_bn and ("Mul" in ops) != fold_bn


def test_batchnorm_and_scale_alone(tmp_path):
    ns = caffe.NetSpec()
    x = image_input(ns, (2, 3, 4, 5))
    ns.bn = L.BatchNorm(ns.data, batch_norm_param=dict(use_global_stats=True, eps=1e-3))
    ns.scale = L.Scale(ns.bn, scale_param=dict(bias_term=False))
    assert_agree(*run_both(tmp_path, ns, {"data": x}, ["bn", "scale"])[:2])


def test_activations(tmp_path):
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[2, 3, 5, 5]))
    x = np.random.default_rng(2).uniform(-10, 10, (2, 3, 5, 5)).astype(np.float32)
    ns.relu = L.ReLU(ns.data)
    ns.leaky = L.ReLU(ns.data, relu_param=dict(negative_slope=0.1))
    ns.relu6 = L.ReLU6(ns.data, relu6_param=dict(threshold=6))
    ns.sig = L.Sigmoid(ns.data)
    assert_agree(*run_both(tmp_path, ns, {"data": x}, ["relu", "leaky", "relu6", "sig"])[:2])


def test_eltwise(tmp_path):
    ns = caffe.NetSpec()
    x = image_input(ns, (2, 3, 4, 4))
    ns.a = L.Convolution(ns.data, num_output=3, kernel_size=1)
    ns.b = L.Convolution(ns.data, num_output=3, kernel_size=3, pad=1)
    ns.sum = L.Eltwise(ns.data, ns.a, ns.b)
    ns.wsum = L.Eltwise(ns.data, ns.a, eltwise_param=dict(operation=P.Eltwise.SUM, coeff=[0.5, -2]))
    ns.prod = L.Eltwise(ns.data, ns.a, ns.b, eltwise_param=dict(operation=P.Eltwise.PROD))
    ns.max = L.Eltwise(ns.data, ns.a, ns.b, eltwise_param=dict(operation=P.Eltwise.MAX))
    assert_agree(*run_both(tmp_path, ns, {"data": x}, ["sum", "wsum", "prod", "max"])[:2])


@pytest.mark.parametrize("pool", [
    dict(pool=P.Pooling.AVE, kernel_size=2, stride=1),         # fassst_416_coco's IAM pool
    dict(pool=P.Pooling.AVE, kernel_size=2, stride=2),
    dict(pool=P.Pooling.AVE, kernel_size=3, stride=2),         # ceil mode: last window clipped
    dict(pool=P.Pooling.MAX, kernel_size=3, stride=2),
    dict(pool=P.Pooling.MAX, kernel_size=3, stride=2, pad=1, ceil_mode=False),  # ResNet stem
    dict(pool=P.Pooling.AVE, global_pooling=True),
])
def test_pooling(tmp_path, pool):
    ns = caffe.NetSpec()
    x = image_input(ns, (2, 3, 8, 7))
    ns.pool = L.Pooling(ns.data, pooling_param=pool)
    assert_agree(*run_both(tmp_path, ns, {"data": x}, ["pool"])[:2])


def test_pooling_refuses_what_onnx_computes_differently(tmp_path):
    ns = caffe.NetSpec()
    x = image_input(ns, (1, 3, 8, 8))
    ns.odd_pool = L.Pooling(ns.data, pooling_param=dict(pool=P.Pooling.AVE, kernel_size=3, stride=2, pad=1))
    with pytest.raises(ExportError, match="odd_pool"):
        run_both(tmp_path, ns, {"data": x}, ["odd_pool"])


@pytest.mark.parametrize("deconv", [
    dict(num_output=5, kernel_size=2, stride=2, bias_term=False),  # the mask tail's
    dict(num_output=4, kernel_size=4, stride=2, pad=1),
    dict(num_output=4, kernel_size=2, stride=2, group=4, bias_term=False),  # ResNet-FPN's nearest x2
])
def test_deconvolution(tmp_path, deconv):
    ns = caffe.NetSpec()
    x = image_input(ns, (2, 4, 5, 6))
    ns.deconv = L.Deconvolution(ns.data, convolution_param=deconv)
    assert_agree(*run_both(tmp_path, ns, {"data": x}, ["deconv"])[:2])


def test_unknown_layer_type_names_the_layer(tmp_path):
    ns = caffe.NetSpec()
    x = image_input(ns, (1, 3, 4, 4))
    ns.my_softmax = L.Softmax(ns.data)
    with pytest.raises(ExportError, match="my_softmax.*Softmax"):
        run_both(tmp_path, ns, {"data": x}, ["my_softmax"])


def test_opset_below_16_is_refused(tmp_path):
    ns = caffe.NetSpec()
    x = image_input(ns, (1, 3, 4, 4))
    ns.relu = L.ReLU(ns.data)
    with pytest.raises(ExportError, match="RoiAlign"):
        run_both(tmp_path, ns, {"data": x}, ["relu"], opset=15)


# --- the FASSST layers -------------------------------------------------------------------

def pyramid_net(num_rois, batch=2, channels=3, side=128, **param):
    ns = caffe.NetSpec()
    rng = np.random.default_rng(3)
    inputs = {}
    for k, name in enumerate(("p1", "p2", "p3")):
        shape = (batch, channels, side // (8 << k), side // (8 << k))
        ns[name] = L.Input(shape=dict(dim=list(shape)))
        inputs[name] = rng.normal(size=shape).astype(np.float32)
    ns.rois = L.Input(shape=dict(dim=[num_rois, 5]))
    ns.r1, ns.r2, ns.r3 = L.PyramidROIAlign(ns.p1, ns.p2, ns.p3, ns.rois, ntop=3,
                                            pyramid_roi_align_param=dict(pooled_size=2, first_stride=8,
                                                                         **param))
    return ns, inputs


# (batch, x1, y1, x2, y2) in input pixels on a 128 x 128 input: inside, whole image, on each
# border, partly outside on every side, just outside (the coarse levels still read their border
# pixels, as in detectron2), far outside (zeros), sub-pixel and zero-size boxes
ROIS = np.array([
    [0, 10.3, 20.7, 60.2, 90.9],
    [1, 0, 0, 128, 128],
    [0, 0, 0, 8, 8],
    [1, 120, 100, 128, 128],
    [0, -20, 30, 30, 70],
    [1, 90, -15.5, 140, 40],
    [0, -40, -40, 200, 180],
    [1, 130, 130, 160, 150],
    [0, 200, 190, 260, 240],
    [0, 33.3, 33.3, 33.8, 34.1],
    [1, 50, 60, 50, 60],
], np.float32)


@pytest.mark.parametrize("param", [dict(sampling_ratio=2, aligned=True),
                                   dict(sampling_ratio=0, aligned=True),
                                   dict(sampling_ratio=2, aligned=False)])
def test_pyramid_roi_align(tmp_path, param):
    ns, inputs = pyramid_net(len(ROIS), **param)
    inputs["rois"] = ROIS
    ref, got, model = run_both(tmp_path, ns, inputs, ["r1", "r2", "r3"])
    assert_agree(ref, got)
    assert sum(n.op_type == "RoiAlign" for n in model.graph.node) == 3
    assert np.abs(ref["r3"][8]).max() == 0  # far outside
    if param["aligned"]:  # just outside: the -0.5 px shift puts the samples within [-1, W]
        assert np.abs(ref["r3"][7]).max() > 0


def test_pyramid_roi_align_zero_rois(tmp_path):
    ns, inputs = pyramid_net(0)
    inputs["rois"] = np.zeros((0, 5), np.float32)
    ref, got, _ = run_both(tmp_path, ns, inputs, ["r1", "r2", "r3"])
    assert got["r1"].shape == (0, 3, 8, 8)
    assert_agree(ref, got)


@pytest.mark.parametrize("num_rois, relu", [(3, True), (3, False), (0, True)])
def test_roi_feature_fusion(tmp_path, num_rois, relu):
    ns = caffe.NetSpec()
    rng = np.random.default_rng(4)
    inputs = {}
    for name, side in (("r1", 12), ("r2", 6), ("r3", 3)):
        ns[name] = L.Input(shape=dict(dim=[num_rois, 4, side, side]))
        inputs[name] = rng.normal(size=(num_rois, 4, side, side)).astype(np.float32)
    ns.rff = L.ROIFeatureFusion(ns.r1, ns.r2, ns.r3, roi_feature_fusion_param=dict(relu=relu))
    ref, got, _ = run_both(tmp_path, ns, inputs, ["rff"])
    assert got["rff"].shape == (num_rois, 4, 12, 12)
    assert_agree(ref, got)


def iam_input(rng, classes, side, spread=3.0):
    """IAM logits (1, 4 + C, S, S) with crossed edges, tiny and border boxes, exact score ties
    (slots 5 and 9 copy slot 2's class logits), a class tie (slot 8: classes 0 and 2) and a
    score of exactly 0.5 (slot 10: best logit 0), which a 0.5 threshold must drop."""
    x = rng.normal(0, spread, (1, 4 + classes, side, side)).astype(np.float32)
    flat = x.reshape(4 + classes, side * side)
    flat[4:, 5] = flat[4:, 9] = flat[4:, 2]
    flat[4:, 8] = -1.0
    flat[4 + 0, 8] = flat[4 + 2, 8] = 4.0
    flat[4:, 10] = -3.0
    flat[4 + 1, 10] = 0.0
    flat[:4, 3] = [0.0, 0.0, 0.0, 0.0]        # t = l = b = r: zero-size box, grown to min size
    flat[:4, 4] = [-9, -9, -8.9, -8.95]       # tiny box at the top-left corner: grown, shifted in
    flat[:4, 6] = [9, 9, 8.9, 8.95]           # and at the bottom-right corner
    flat[:4, 7] = [1.0, 1.5, -1.0, -1.5]      # crossed edges: swapped
    return x


def iam_net(values, side, rank, **param):
    ns = caffe.NetSpec()
    shape = [1, values, side, side] if rank == 4 else [1, side * side, values]
    ns.iam = L.Input(shape=dict(dim=shape))
    ns.rois, ns.scores, ns.labels, ns.slots = L.IAMDecode(ns.iam, ntop=4, iam_decode_param=dict(
        num_classes=values - 4, image_width=96, image_height=80, **param))
    return ns


@pytest.mark.parametrize("param, opset", [
    (dict(score_threshold=0.05, top_k=0, min_box_size=1.0), 17),
    (dict(score_threshold=0.5, top_k=0, min_box_size=6.0), 17),
    (dict(score_threshold=0.05, top_k=5, min_box_size=2.0), 18),   # ReduceMax axes as an input
    (dict(score_threshold=0.0, top_k=36, min_box_size=0.0), 17),
    (dict(score_threshold=0.3, top_k=0, min_box_size=90.0), 17),  # wider than the 80-px side
])
def test_iam_decode(tmp_path, param, opset):
    rng = np.random.default_rng(5)
    x = iam_input(rng, 7, 6)
    ns = iam_net(11, 6, 4, **param)
    ref, got, _ = run_both(tmp_path, ns, {"iam": x}, ["rois", "scores", "labels", "slots"], opset=opset)
    assert len(ref["slots"]) > 0
    assert 10 not in ref["slots"] or param["score_threshold"] < 0.5  # strict threshold
    assert 8 not in ref["slots"] or ref["labels"][list(ref["slots"]).index(8)] == 0  # lowest class
    np.testing.assert_array_equal(got["slots"], ref["slots"])  # the order, ties by slot
    np.testing.assert_array_equal(got["labels"], ref["labels"])
    np.testing.assert_allclose(got["rois"], ref["rois"], **TOL)
    np.testing.assert_allclose(got["scores"], ref["scores"], **TOL)
    if param["top_k"] == 0:  # the tied slots 2, 5, 9 come together, in slot order
        s = list(ref["slots"])
        if 2 in s:
            assert s[s.index(2):s.index(2) + 3] == [2, 5, 9]


@pytest.mark.parametrize("rank", [4, 3])
def test_iam_decode_cell_coding(tmp_path, rank):
    """box_coding CELL: the cell centres the graph builds from the input's shape."""
    rng = np.random.default_rng(8)
    x = iam_input(rng, 5, 6)
    if rank == 3:
        x = x.reshape(9, 36).T[None].copy()
    ns = iam_net(9, 6, rank, score_threshold=0.05, min_box_size=2.0, box_coding=P.IAMDecode.CELL)
    ref, got, _ = run_both(tmp_path, ns, {"iam": x}, ["rois", "scores", "labels", "slots"])
    assert len(ref["slots"]) > 10
    image = iam_net(9, 6, rank, score_threshold=0.05, min_box_size=2.0)
    (tmp_path / "image").mkdir()
    ref_image, _, _ = run_both(tmp_path / "image", image, {"iam": x}, ["rois"])
    assert np.abs(ref_image["rois"] - ref["rois"]).max() > 10  # the coding changes the boxes
    np.testing.assert_array_equal(got["slots"], ref["slots"])
    np.testing.assert_array_equal(got["labels"], ref["labels"])
    np.testing.assert_allclose(got["rois"], ref["rois"], **TOL)


def test_iam_decode_slot_major_input_and_no_roi(tmp_path):
    rng = np.random.default_rng(6)
    x = iam_input(rng, 3, 4).reshape(7, 16).T[None].copy()  # (1, n, 4 + C)
    ns = iam_net(7, 4, 3, score_threshold=0.2)
    ref, got, _ = run_both(tmp_path, ns, {"iam": x}, ["rois", "scores", "labels", "slots"])
    assert len(ref["slots"]) > 0
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], err_msg=k, **TOL)
    x[0, :, 4:] = -20  # every class probability below the threshold: R = 0
    ref, got, _ = run_both(tmp_path, ns, {"iam": x}, ["rois", "scores", "labels", "slots"])
    assert ref["rois"].shape == got["rois"].shape == (0, 5)
