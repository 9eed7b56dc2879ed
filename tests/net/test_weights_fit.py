"""Weights that do not fit a net are refused before Caffe copies them (Caffe would abort the
process): the rules are Caffe's CopyTrainedLayersFrom and Blob::ShapeEquals."""
import numpy as np
import pytest

import caffe
from caffe import layers as L
from caffe.proto import caffe_pb2
from fassst.config import load_config
from fassst.errors import MissingFileError
from fassst.inference.predictor import Predictor
from fassst.net.fassst_net import build_net
from fassst.net.load import caffe_net
from fassst.net.weights_fit import WeightsMismatch, check_fits, read_layers
from fassst.weights.convert_mobilenet_v2 import convert_folded


def small_net(channels=4):
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    ns.conv = L.Convolution(ns.data, num_output=channels, kernel_size=3,
                            weight_filler=dict(type="gaussian", std=0.1))
    ns.fc = L.InnerProduct(ns.conv, num_output=2, weight_filler=dict(type="gaussian", std=0.1))
    return caffe_net(ns.to_proto(), caffe.TEST)


def write_caffemodel(path, layers):
    """layers: [(name, type, [shape or ("legacy", (n, c, h, w))])], values 0.5."""
    param = caffe_pb2.NetParameter()
    for name, kind, shapes in layers:
        layer = param.layer.add(name=name, type=kind)
        for shape in shapes:
            blob = layer.blobs.add()
            if shape[0] == "legacy":
                blob.num, blob.channels, blob.height, blob.width = shape[1]
                shape = shape[1]
            else:
                blob.shape.dim.extend(shape)
            blob.data.extend([0.5] * int(np.prod(shape)))
    path.write_bytes(param.SerializeToString())
    return str(path)


def test_a_fitting_file_is_copied(tmp_path):
    net = small_net()
    path = tmp_path / "w.caffemodel"
    net.params["conv"][0].data[...] = 0.25
    net.save(str(path))
    other = small_net()
    check_fits(other, str(path))
    other.copy_from(str(path))
    assert np.all(other.params["conv"][0].data == 0.25)


def test_legacy_4d_blob_shapes_match_as_caffe_reads_them(tmp_path):
    # a bias (4,) stored as legacy (1, 1, 1, 4), as old caffemodels do
    good = write_caffemodel(tmp_path / "legacy.caffemodel", [
        ("conv", "Convolution", [("legacy", (4, 3, 3, 3)), ("legacy", (1, 1, 1, 4))])])
    check_fits(small_net(), good)
    bad = write_caffemodel(tmp_path / "bad.caffemodel", [
        ("conv", "Convolution", [("legacy", (4, 3, 3, 3)), ("legacy", (1, 1, 4, 1))])])
    with pytest.raises(WeightsMismatch, match=r"layer 'conv' blob 1 is \(1, 1, 4, 1\) in the "
                                              r"file, \(4\) in the net"):
        check_fits(small_net(), bad)


def test_first_misfit_is_named_with_both_shapes(tmp_path):
    path = tmp_path / "w.caffemodel"
    small_net(channels=5).save(str(path))
    with pytest.raises(WeightsMismatch, match=r"w.caffemodel does not fit this net: layer 'conv' "
                                              r"blob 0 is \(5, 3, 3, 3\) in the file, "
                                              r"\(4, 3, 3, 3\) in the net"):
        check_fits(small_net(channels=4), str(path))


def test_blob_count_and_layers_only_in_the_file(tmp_path):
    path = write_caffemodel(tmp_path / "w.caffemodel", [
        ("elsewhere", "Convolution", [(7, 7)]),             # not in the net: ignored, as Caffe does
        ("conv", "Convolution", [(4, 3, 3, 3)])])           # no bias blob
    with pytest.raises(WeightsMismatch, match="layer 'conv' has 1 blob.s. in the file, 2 in the net"):
        check_fits(small_net(), path)


def test_a_file_sharing_no_layer_is_refused(tmp_path):
    path = write_caffemodel(tmp_path / "w.caffemodel", [("other", "Convolution", [(1, 1)])])
    with pytest.raises(WeightsMismatch, match="shares no layer"):
        check_fits(small_net(), path)


def test_missing_and_not_a_caffemodel(tmp_path):
    with pytest.raises(MissingFileError, match="gone.caffemodel: no such caffemodel"):
        check_fits(small_net(), str(tmp_path / "gone.caffemodel"))
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(WeightsMismatch, match="junk.caffemodel: not a caffemodel"):
        check_fits(small_net(), str(junk))


def test_backbone_only_weights_fit_the_whole_net():
    """Layers only in the net keep their fillers: how training starts from ImageNet weights.
    Both nets are built from one seed, so their fillers agree: the loaded net differs from the
    plain one exactly in the file's layers, which hold the file's values."""
    backbone = convert_folded(log=lambda *a: None)[1]
    proto = build_net(load_config("fassst_cpu_sample"), "train", batch_size=1)
    caffe.set_random_seed(5)
    plain = caffe_net(proto, caffe.TRAIN)
    caffe.set_random_seed(5)
    loaded = caffe_net(proto, caffe.TRAIN, weights=backbone)
    file_blobs = {name: blobs for name, _, blobs in read_layers(backbone) if blobs}
    copied = kept = 0
    for name, params in loaded.params.items():
        for j, p in enumerate(params):
            if name in file_blobs:
                blob = file_blobs[name][j]
                np.testing.assert_array_equal(p.data.ravel(), np.asarray(blob.data, np.float32))
                copied += 1
            else:
                np.testing.assert_array_equal(p.data, plain.params[name][j].data)
                kept += 1
    assert copied > 50 and kept > 10  # the MobileNetV2 backbone; the FASSST head
    assert not np.array_equal(loaded.params["features.0.0"][0].data,
                              plain.params["features.0.0"][0].data)


def test_inference_refuses_weights_of_part_of_the_net():
    """A run needs every layer's weights: backbone-only (or cut-off) files would predict from
    fillers, so the predictor names the first layer the file lacks."""
    with pytest.raises(WeightsMismatch, match="the file has no weights for layer 'iam/"):
        Predictor(load_config("fassst_cpu_sample"), convert_folded(log=lambda *a: None)[1])


def test_predictor_refuses_weights_of_another_config_and_the_process_lives_on(tmp_path):
    path = tmp_path / "cpu.caffemodel"
    caffe_net(build_net(load_config("fassst_cpu_sample"), "deploy"), caffe.TEST).save(str(path))
    with pytest.raises(WeightsMismatch, match="does not fit config fassst_416_coco: layer "
                                              "'iam/conv1'"):
        Predictor(load_config("fassst_416_coco"), str(path))


def test_unfolded_weights_for_a_folded_net_say_so(tmp_path):
    unfolded = write_caffemodel(tmp_path / "unfolded.caffemodel", [
        ("conv", "Convolution", [(4, 3, 3, 3)]), ("conv/bn", "BatchNorm", [(4,), (4,), (1,)])])
    with pytest.raises(WeightsMismatch, match="not BatchNorm-folded .it has BatchNorm layers such "
                                              "as 'conv/bn'.*scripts/merge_bn.py"):
        check_fits(small_net(), unfolded)
    other_net = write_caffemodel(tmp_path / "other.caffemodel", [
        ("conv", "Convolution", [(4, 3, 3, 3), (4,), (1,)]), ("x/bn", "BatchNorm", [(4,)])])
    with pytest.raises(WeightsMismatch, match="has 3 blob.s. in the file, 2 in the net$"):
        check_fits(small_net(), other_net)  # more blobs, not fewer: no folding hint
