"""Weights for export: the blobs of a .caffemodel by layer name, and BatchNorm folding on them.

Read with caffe_pb2 (no Caffe net is built): a caffemodel is a NetParameter whose layers carry
their blobs. Caffe copies weights into a net by layer name, so that is the key here too.
"""
import types

import numpy as np

from fassst.export.graph import ExportError
from fassst.net import merge_bn
from fassst.net.weights_fit import blob_shape, parse_caffemodel


def _blob_array(blob, where):
    data = np.asarray(blob.double_data if len(blob.double_data) else blob.data, np.float32)
    shape = blob_shape(blob)
    if any(d < 0 for d in shape) or int(np.prod(shape)) != data.size:
        raise ExportError(f"{where}: blob of shape {shape} holds {data.size} values (the file "
                          f"is truncated or corrupt)")
    return data.reshape(shape)


def read_caffemodel(path):
    """{layer name: [numpy float32 arrays]} for every layer with blobs."""
    param = parse_caffemodel(path)
    if len(param.layers):
        raise ExportError(f"{path}: V1 'layers' caffemodel; upgrade it with Caffe's "
                          f"upgrade_net_proto_binary first")
    return {layer.name: [_blob_array(b, f"{path}: layer {layer.name!r} blob {j}")
                         for j, b in enumerate(layer.blobs)]
            for layer in param.layer if layer.blobs}


def fold_batchnorm(net_param, blobs):
    """(NetParameter, blobs) with every BatchNorm (+ Scale) after a (De)Convolution folded into
    it, by net/merge_bn.py's rules and arithmetic (float64, then float32)."""
    merges = merge_bn.find_merges(net_param)
    out_blobs = dict(blobs)
    wrap = lambda arrays: [types.SimpleNamespace(data=a) for a in arrays]  # noqa: E731
    for i, j, k in merges:
        conv, bn = net_param.layer[i], net_param.layer[j]
        for layer in [conv, bn] + ([net_param.layer[k]] if k is not None else []):
            if layer.name not in blobs:
                raise ExportError(f"layer {layer.name}: no weights in the caffemodel")
        scale = wrap(blobs[net_param.layer[k].name]) if k is not None else None
        w, b = merge_bn.fold(wrap(blobs[conv.name]), wrap(blobs[bn.name]), bn.batch_norm_param.eps,
                             scale, deconv=conv.type == "Deconvolution")
        out_blobs[conv.name] = [w, b]
    return merge_bn.merged_net_param(net_param, merges), out_blobs
