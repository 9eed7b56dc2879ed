"""The BatchNorm-folded deploy net (fassst.net.merge_bn, scripts/merge_bn.py) detects what the
plain deploy net detects, on the sample photos: the same ROIs, labels and scores, boxes within
1e-3 px and masks within 1e-4.

Weights: the converted ImageNet backbone (real BatchNorm statistics) and random head weights with
random BatchNorm statistics and affines near the identity (so every folded layer changes its
weights, while the untrained head's activations stay in a trained net's range), fixed seed.
"""
import numpy as np
import pytest
from google.protobuf import text_format

import caffe
from caffe.proto import caffe_pb2
from fassst.bench.net_bench import sample_photos
from fassst.config import load_config
from fassst.data import letterbox
from fassst.images.read import read_rgb
from fassst.inference.predictor import Predictor
from fassst.net.fassst_net import build_net
from fassst.net.merge_bn import merge_bn
from fassst.weights.convert_mobilenet_v2 import convert


def weights_with_random_head(prototxt, path, seed=0):
    caffe.set_random_seed(seed)
    net = caffe.Net(prototxt, caffe.TEST)
    net.copy_from(convert()[1])  # the backbone, by layer name
    rng = np.random.default_rng(seed)
    for name, layer in zip(net._layer_names, net.layers):
        if name.startswith("features."):
            continue
        if layer.type == "BatchNorm":
            c = layer.blobs[0].data.shape
            layer.blobs[0].data[...] = rng.normal(0, 0.1, c)
            layer.blobs[1].data[...] = rng.uniform(0.8, 1.25, c)
            layer.blobs[2].data[...] = 1
        elif layer.type == "Scale":
            layer.blobs[0].data[...] = rng.uniform(0.8, 1.2, layer.blobs[0].data.shape)
            layer.blobs[1].data[...] = rng.normal(0, 0.1, layer.blobs[1].data.shape)
    net.save(path)
    return path


@pytest.fixture(scope="module")
def predictors(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deploy")
    # The backbone unfolded (BatchNorm + Scale after each conv, ImageNet statistics), so that the
    # merge folds all of them as it would for a net trained that way.
    cfg = load_config("fassst_cpu_sample", fold_backbone_bn=False)
    plain = str(tmp / "plain.prototxt")
    with open(plain, "w") as f:
        f.write(str(build_net(cfg, "deploy")))
    weights = weights_with_random_head(plain, str(tmp / "plain.caffemodel"))
    folded, folded_w = str(tmp / "folded.prototxt"), str(tmp / "folded.caffemodel")
    merged = merge_bn(plain, weights, folded, folded_w)
    assert len(merged) >= 60  # backbone 52 + IAM + pyramid + tail convs and the deconv
    p = caffe_pb2.NetParameter()
    text_format.Merge(open(folded).read(), p)
    assert not [l.name for l in p.layer if l.type in ("BatchNorm", "Scale")]
    return cfg, [Predictor(cfg, w, net_param=p_) for w, p_ in
                 ((weights, build_net(cfg, "deploy")), (folded_w, p))]


def test_folded_deploy_detects_the_same_on_sample_photos(predictors):
    cfg, (plain, folded) = predictors
    photos = sample_photos()
    assert len(photos) >= 10
    total = 0
    for path in photos:
        image = read_rgb(path)
        a, b = plain(image), folded(image)
        np.testing.assert_array_equal(a["labels"], b["labels"], err_msg=path)
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=0, atol=1e-5, err_msg=path)
        np.testing.assert_allclose(a["boxes"], b["boxes"], rtol=0, atol=1e-3, err_msg=path)
        ma, mb = plain.net.blobs["masks"].data, folded.net.blobs["masks"].data
        np.testing.assert_allclose(ma, mb, rtol=0, atol=1e-4, err_msg=path)
        # Pasted at photo size with the same box (the boxes' own 1e-3 px is checked above; a box
        # moved by that shifts a steep mask edge by more than 1e-4) they agree as closely.
        lb = letterbox.fit(image.shape[0], image.shape[1], cfg.input_size)
        rois = plain.net.blobs["rois"].data
        for i in range(len(rois)):
            pa = letterbox.paste_roi_mask(ma[i, 0], rois[i, 1:5], lb)
            pb = letterbox.paste_roi_mask(mb[i, 0], rois[i, 1:5], lb)
            np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-4, err_msg=path)
        # The thresholded masks can differ only where a value sits within that of 0.5.
        differ = np.count_nonzero(a["masks"] != b["masks"])
        assert differ <= 1e-5 * max(a["masks"].size, 1), (path, differ)
        total += len(rois)
    assert total >= 3 * len(photos)  # the random head does detect (threshold 0.05)
