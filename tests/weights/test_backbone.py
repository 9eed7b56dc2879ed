"""MobileNetV2 backbone: checkpoint reader, conversion, ImageNet check against torchvision.

The reference numbers come from torchvision itself (measured with torch on the same photos): an
independent implementation of the same network and preprocessing.
"""
import os

import numpy as np
import pytest

import caffe
from caffe import layers as L
from fassst.datasets.sample_data import photo_path
from fassst.imagenet.classify import ImageNetClassifier
from fassst.imagenet.preprocess import imagenet_input
from fassst.images.read import read_rgb
from fassst.net.depthwise import as_stock
from fassst.net.load import caffe_net
from fassst.net.mobilenet_v2 import (BN_EPS, STAGE_ENDS, STAGE_STRIDES, deploy_net,
                                     mobilenet_v2)
from fassst.weights.convert_mobilenet_v2 import ConversionError, convert, fill_net, source_pth
from fassst.weights.torch_zip import load_state_dict

# photo -> reference [(class, probability)] from torchvision (top-1 first)
TORCHVISION_REFERENCE = {
    "labelme-0001": [("tabby", 0.740), ("Egyptian cat", 0.172)],
    "labelme-0002": [("flat-coated retriever", 0.908)],
    "imgaug-quokka": [("wombat", 0.618)],
    "labelme-2011_000025": [("school bus", 0.345), ("passenger car", 0.280)],
}
PROB_TOLERANCE = 0.03


def net_from(proto):
    return caffe_net(proto, caffe.TEST)


@pytest.fixture(scope="module")
def state_dict():
    return load_state_dict(source_pth())


@pytest.fixture(scope="module")
def classifier():
    return ImageNetClassifier(*convert())


def test_torch_reader_on_real_checkpoint(state_dict):
    assert len(state_dict) == 314  # 52 convs, 52 BNs x 5, Linear weight + bias
    assert list(state_dict)[0] == "features.0.0.weight"  # file order is kept
    assert state_dict["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state_dict["features.0.0.weight"].dtype == np.float32
    assert state_dict["features.2.conv.1.0.weight"].shape == (96, 1, 3, 3)  # depthwise
    assert state_dict["classifier.1.weight"].shape == (1000, 1280)
    counter = state_dict["features.0.1.num_batches_tracked"]
    assert counter.dtype == np.int64 and counter.shape == ()
    var = np.concatenate([v for k, v in state_dict.items() if k.endswith("running_var")])
    assert var.min() > 0  # real BN statistics, not zeros or garbage bytes


def test_backbone_stage_shapes():
    net = net_from(deploy_net(size=224, with_classifier=False))
    channels = {"S1": 16, "S2": 24, "S3": 32, "S4": 64, "S5": 96, "S6": 160, "S7": 1280}
    for stage, blob in STAGE_ENDS.items():
        s = STAGE_STRIDES[stage]
        assert net.blobs[blob].data.shape == (1, channels[stage], 224 // s, 224 // s), stage
    assert "prob" not in net.blobs


@pytest.mark.parametrize("phase,freeze,expect", [(caffe.TEST, False, True), (caffe.TRAIN, False, False),
                                                 (caffe.TRAIN, True, True)],
                         ids=["test", "train", "train-frozen-bn"])
def test_batchnorm_params_in_prototxt(phase, freeze, expect):
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[1, 3, 64, 64]))
    mobilenet_v2(ns, ns.data, phase, freeze_bn=freeze)
    bns = [l for l in ns.to_proto().layer if l.type == "BatchNorm"]
    assert len(bns) == 52
    for bn in bns:
        assert bn.batch_norm_param.use_global_stats is expect
        assert np.float32(bn.batch_norm_param.eps) == np.float32(BN_EPS)
        assert [p.lr_mult for p in bn.param] == [0, 0, 0]


def test_conversion_uses_every_tensor_exactly_once(state_dict):
    net = net_from(deploy_net())
    counts = fill_net(net, state_dict)
    assert counts == {"Convolution": 35, "DepthwiseConvolution": 17, "BatchNorm": 52, "Scale": 52,
                      "InnerProduct": 1, "tensors": 314}
    np.testing.assert_array_equal(net.params["features.0.0"][0].data,
                                  state_dict["features.0.0.weight"])
    np.testing.assert_array_equal(net.params["features.17.conv.3/scale"][1].data,
                                  state_dict["features.17.conv.3.bias"])
    assert net.params["features.18.1"][2].data[0] == 1.0


def test_conversion_lists_missing_extra_and_misshapen_tensors(state_dict):
    broken = dict(state_dict)
    del broken["features.5.conv.1.1.running_var"]
    broken["features.99.weight"] = np.zeros(3, np.float32)
    broken["classifier.1.bias"] = np.zeros(999, np.float32)
    with pytest.raises(ConversionError) as err:
        fill_net(net_from(deploy_net()), broken)
    msg = str(err.value)
    assert "features.5.conv.1.1.running_var" in msg
    assert "features.99.weight" in msg
    assert "classifier.1.bias: (999,) vs Caffe (1000,)" in msg


def test_converted_model_is_cached_and_revalidated(tmp_path):
    prototxt, caffemodel = convert(out_dir=str(tmp_path), log=lambda *a: None)
    mtime = os.path.getmtime(caffemodel)
    assert convert(out_dir=str(tmp_path)) == (prototxt, caffemodel)
    assert os.path.getmtime(caffemodel) == mtime  # reused, not rewritten
    with open(caffemodel, "r+b") as f:  # damage it: the stamp's hash no longer matches
        f.seek(1000)
        f.write(b"\0" * 16)
    logged = []
    convert(out_dir=str(tmp_path), log=logged.append)
    assert any("converted 314 tensors" in line for line in logged)


@pytest.mark.parametrize("photo", sorted(TORCHVISION_REFERENCE))
def test_classification_matches_torchvision(classifier, photo):
    top = classifier.top_k(photo_path(photo), k=5)
    names = [name for _, name, _ in top]
    probs = dict((name, p) for _, name, p in top)
    reference = TORCHVISION_REFERENCE[photo]
    assert names[0] == reference[0][0], top
    for name, p_ref in reference:
        assert name in probs, top
        assert abs(probs[name] - p_ref) < PROB_TOLERANCE, (name, probs[name], p_ref)


def test_batchnorm_scale_equal_numpy_formula_with_eps():
    """Caffe BatchNorm (global stats, eps) + Scale == gamma * (x - mean) / sqrt(var + eps) + beta.

    Variances of the order of eps make a wrong or missing eps visible; the stored statistics are
    scaled by a factor of 2.5 as Caffe keeps them (it divides by blob 2).
    """
    rng = np.random.default_rng(0)
    c = 4
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[2, c, 3, 5]))
    ns.bn = L.BatchNorm(ns.data, batch_norm_param=dict(use_global_stats=True, eps=BN_EPS))
    ns.out = L.Scale(ns.bn, bias_term=True)
    net = net_from(ns.to_proto())
    x = rng.standard_normal((2, c, 3, 5)).astype(np.float32)
    mean = rng.standard_normal(c).astype(np.float32)
    var = np.array([1e-5, 3e-5, 0.5, 2.0], np.float32)
    gamma, beta = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    factor = 2.5
    net.params["bn"][0].data[...] = mean * factor
    net.params["bn"][1].data[...] = var * factor
    net.params["bn"][2].data[...] = factor
    net.params["out"][0].data[...] = gamma
    net.params["out"][1].data[...] = beta
    net.blobs["data"].data[...] = x
    out = net.forward()["out"]
    shape = (1, c, 1, 1)
    ref = (gamma.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-5)
           + beta.reshape(shape))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    without_eps = gamma.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape))
    assert np.abs(out - without_eps).max() > 0.1  # the check can tell eps from no eps


def test_depthwise_layer_equals_grouped_convolution_on_imagenet_weights():
    """The converted caffemodel loads unchanged into the net with stock grouped Convolutions
    (the same blobs), and both nets give the same features and probabilities on a photo."""
    prototxt, caffemodel = convert()
    x = imagenet_input(read_rgb(photo_path("labelme-0001")))
    outs = []
    for proto in (deploy_net(), as_stock(deploy_net())):
        net = caffe_net(proto, caffe.TEST, weights=caffemodel)
        net.blobs["data"].data[...] = x
        net.forward()
        outs.append({k: net.blobs[k].data.copy() for k in ("features.2", "features.13", "prob")})
    assert [l.type for l in as_stock(deploy_net()).layer].count("DepthwiseConvolution") == 0
    for k in outs[0]:
        scale = np.abs(outs[1][k]).max()
        np.testing.assert_allclose(outs[0][k], outs[1][k], rtol=0, atol=1e-5 * scale, err_msg=k)
