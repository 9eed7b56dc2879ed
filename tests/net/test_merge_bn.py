"""Folding BatchNorm + Scale into convolutions leaves a deploy net's outputs unchanged."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffe
from caffe import layers as L
from caffe import params as P
from caffe.proto import caffe_pb2
from fassst.datasets.sample_data import photo_path
from fassst.imagenet.preprocess import imagenet_input
from fassst.images.read import read_rgb
from fassst.net.merge_bn import MergeError, merge_bn
from fassst.weights.convert_mobilenet_v2 import convert


def forward_all(prototxt, caffemodel, inputs):
    net = caffe.Net(prototxt, caffe.TEST, weights=caffemodel)
    for name, x in inputs.items():
        net.blobs[name].data[...] = x
    net.forward()
    return net


def layer_types(prototxt):
    p = caffe_pb2.NetParameter()
    text_format.Merge(open(prototxt).read(), p)
    return [layer.type for layer in p.layer]


def test_merged_backbone_equals_original_on_real_photo(tmp_path):
    prototxt, caffemodel = convert()
    out_p, out_m = str(tmp_path / "m.prototxt"), str(tmp_path / "m.caffemodel")
    merged = merge_bn(prototxt, caffemodel, out_p, out_m)
    assert len(merged) == 52
    types = layer_types(out_p)
    assert "BatchNorm" not in types and "Scale" not in types
    assert types.count("Convolution") == 35 and types.count("DepthwiseConvolution") == 17
    assert types.count("ReLU6") == 35
    x = {"data": imagenet_input(read_rgb(photo_path("labelme-0001")))}
    a, b = forward_all(prototxt, caffemodel, x), forward_all(out_p, out_m, x)
    common = [k for k in a.blobs if k in b.blobs]
    assert {"features.6", "features.13", "features.18", "prob"} <= set(common)
    for k in common:
        np.testing.assert_allclose(b.blobs[k].data, a.blobs[k].data, rtol=0, atol=1e-4, err_msg=k)
    assert b.blobs["prob"].data.argmax() == a.blobs["prob"].data.argmax()


def tiny_net(tmp_path, build, seed=0):
    """Writes the NetSpec from `build(ns)` with random weights and BN statistics; returns paths."""
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[2, 3, 6, 6]))
    build(ns)
    prototxt, caffemodel = str(tmp_path / "tiny.prototxt"), str(tmp_path / "tiny.caffemodel")
    with open(prototxt, "w") as f:
        f.write(str(ns.to_proto()))
    net = caffe.Net(prototxt, caffe.TEST)
    rng = np.random.default_rng(seed)
    for name, layer in zip(net._layer_names, net.layers):
        for i, blob in enumerate(layer.blobs):
            blob.data[...] = rng.uniform(0.5, 2.0, blob.data.shape)  # positive: valid variances
            if layer.type == "BatchNorm" and i == 2:
                blob.data[...] = 3.0  # a scale factor other than 1
    net.save(caffemodel)
    return prototxt, caffemodel


def conv(bottom, bias, **kw):
    return L.Convolution(bottom, num_output=4, kernel_size=3, pad=1, bias_term=bias, **kw)


def bn(bottom, **kw):
    return L.BatchNorm(bottom, batch_norm_param=dict(use_global_stats=True, eps=1e-3), **kw)


def check_same(tmp_path, build, expect_merged, outputs):
    prototxt, caffemodel = tiny_net(tmp_path, build)
    out_p, out_m = str(tmp_path / "out.prototxt"), str(tmp_path / "out.caffemodel")
    assert merge_bn(prototxt, caffemodel, out_p, out_m) == expect_merged
    x = {"data": np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)}
    a, b = forward_all(prototxt, caffemodel, x), forward_all(out_p, out_m, x)
    for k in outputs:
        ref = a.blobs[k].data
        np.testing.assert_allclose(b.blobs[k].data, ref, rtol=0, atol=1e-6 * np.abs(ref).max(),
                                   err_msg=k)
    return layer_types(out_p)


def test_not_in_place_with_conv_bias(tmp_path):
    def build(ns):
        ns.c = conv(ns.data, True)
        ns.n = bn(ns.c)
        ns.s = L.Scale(ns.n, bias_term=True)
        ns.out = L.ReLU(ns.s)
    assert check_same(tmp_path, build, ["c"], ["out"]) == ["Input", "Convolution", "ReLU"]


def test_batchnorm_without_scale(tmp_path):
    def build(ns):
        ns.c = conv(ns.data, False)
        ns.out = bn(ns.c, in_place=True)
    assert check_same(tmp_path, build, ["c"], ["c"]) == ["Input", "Convolution"]


def test_deconvolution_folds_along_its_output_axis(tmp_path):
    """A deconvolution's weights are (in, out, kh, kw): BN scales axis 1 (the mask tail's
    deconv + BN + Scale); 3 inputs, 4 outputs, so a wrong axis fails on shape or values."""
    def build(ns):
        ns.d = L.Deconvolution(ns.data, convolution_param=dict(
            num_output=4, kernel_size=2, stride=2, bias_term=False))
        ns.n = bn(ns.d, in_place=True)
        ns.s = L.Scale(ns.d, bias_term=True, in_place=True)
        ns.out = L.ReLU(ns.d)
    assert check_same(tmp_path, build, ["d"], ["out"]) == ["Input", "Deconvolution", "ReLU"]


def test_depthwise_convolution_folds_per_channel(tmp_path):
    """DepthwiseConvolution (weights (C, 1, kh, kw), as MobileNetV2's) folds like a conv and
    gains a bias; it stays a DepthwiseConvolution."""
    def build(ns):
        ns.d = L.DepthwiseConvolution(ns.data, convolution_param=dict(
            num_output=3, group=3, kernel_size=3, pad=1, stride=2, bias_term=False))
        ns.n = bn(ns.d, in_place=True)
        ns.s = L.Scale(ns.d, bias_term=True, in_place=True)
        ns.out = L.ReLU6(ns.d)
    assert check_same(tmp_path, build, ["d"], ["out"]) == ["Input", "DepthwiseConvolution", "ReLU6"]


def test_conv_output_read_elsewhere_is_not_folded(tmp_path):
    """c2's raw output also feeds the Eltwise: folding would change what the Eltwise sees."""
    def build(ns):
        ns.c1 = conv(ns.data, False)
        ns.b1 = bn(ns.c1, in_place=True)
        ns.s1 = L.Scale(ns.b1, bias_term=True, in_place=True)
        ns.c2 = conv(ns.s1, False)
        ns.b2 = bn(ns.c2)
        ns.s2 = L.Scale(ns.b2, bias_term=True)
        ns.out = L.Eltwise(ns.c2, ns.s2, operation=P.Eltwise.SUM)
    types = check_same(tmp_path, build, ["c1"], ["out"])
    assert types.count("BatchNorm") == 1 and types.count("Scale") == 1


def test_batch_statistics_are_refused(tmp_path):
    def build(ns):
        ns.c = conv(ns.data, False)
        ns.out = L.BatchNorm(ns.c, batch_norm_param=dict(use_global_stats=False))
    prototxt, caffemodel = tiny_net(tmp_path, build)
    with pytest.raises(MergeError, match="BatchNorm out uses batch statistics"):
        merge_bn(prototxt, caffemodel, str(tmp_path / "o.prototxt"), str(tmp_path / "o.caffemodel"))
