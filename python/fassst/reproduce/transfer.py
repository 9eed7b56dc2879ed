"""Initial weights from another cell's model: the paper's Cityscapes runs start from its COCO
model (Tables 3, 7, 8). The two nets differ in the IAM's class outputs (4 + C channels: C 80 vs
8), so those layers start from fillers; every other layer is copied. Caffe would abort on the
misfit (net/weights_fit.py), hence a new caffemodel without the layers that do not fit.
"""
import caffe
from caffe.proto import caffe_pb2

from fassst.net.fassst_net import build_net
from fassst.net.load import caffe_net, check_config_weights
from fassst.net.weights_fit import blobs_fit, parse_caffemodel


def transfer_weights(src, cfg, out_path):
    """Writes src's layers that fit cfg's train net to out_path; returns the names of the layers
    left out (their shapes differ). Raises WeightsMismatch if nothing of src would be used."""
    net = caffe_net(build_net(cfg, "train", batch_size=1), caffe.TRAIN)
    shapes = {name: [tuple(b.data.shape) for b in layer.blobs]
              for name, layer in zip(net._layer_names, net.layers)}
    source = parse_caffemodel(src)
    out = caffe_pb2.NetParameter()
    out.name = source.name
    left_out = []
    for layer in source.layer:
        want = shapes.get(layer.name)
        if want is not None and not blobs_fit(layer.blobs, want):
            left_out.append(layer.name)
            continue
        out.layer.add().CopyFrom(layer)
    with open(out_path, "wb") as f:
        f.write(out.SerializeToString())
    check_config_weights(cfg, out_path)
    return left_out
