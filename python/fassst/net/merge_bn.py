"""Folds BatchNorm (+ Scale) into the Convolution (DepthwiseConvolution, Deconvolution) before
it, for deploy (TEST-phase) nets.

At test time BatchNorm and Scale are a per-channel affine map, so for a conv with weights W and
bias b (0 without bias_term):
    k  = gamma / sqrt(var + eps),    var = blob1 / blob2[0], mean = blob0 / blob2[0] (Caffe's
                                     stored statistics are sums scaled by blob2; 0 if blob2 is 0)
    W' = W * k (per output channel: axis 0 of a (depthwise) conv's weights, axis 1 of a
                deconvolution's),
    b' = (b - mean) * k + beta
gamma, beta = 1, 0 when no Scale follows. The conv then writes the Scale's (or BatchNorm's) top.

A conv is merged only when its output reaches nothing but the BatchNorm (and the BatchNorm's
output nothing but the Scale) before being overwritten in place: otherwise some other layer would
see the normalised values instead of the raw conv output, and the conv is left as it is.
"""
import os

import numpy as np
from google.protobuf import text_format

import caffe
from caffe.proto import caffe_pb2

from fassst.errors import InputError, MissingFileError
from fassst.net.weights_fit import check_fits

FOLDABLE = ("Convolution", "DepthwiseConvolution", "Deconvolution")


class MergeError(InputError):
    """The net cannot be merged as asked; the message names the layer."""


def _readers(layers, start, blob):
    """Indices of layers after `start` reading `blob`, until a layer rewrites it not in place."""
    out = []
    for k in range(start + 1, len(layers)):
        layer = layers[k]
        if blob in layer.bottom:
            out.append(k)
        if blob in layer.top and blob not in layer.bottom:
            break
    return out


def _sole_next(layers, i, blob, kind):
    """Index of the layer of type `kind` that alone takes `blob` (written by layer i), or None.

    In place, later readers see that layer's output, which the merged conv then writes itself;
    so only the first reader must be it. Not in place, it must be the only reader.
    """
    readers = _readers(layers, i, blob)
    if not readers:
        return None
    j = readers[0]
    nxt = layers[j]
    if nxt.type != kind or len(nxt.bottom) != 1:
        return None
    in_place = nxt.top[0] == blob
    return j if in_place or len(readers) == 1 else None


def find_merges(net_param):
    """[(conv index, batchnorm index, scale index or None)] for every foldable conv."""
    layers = list(net_param.layer)
    merges = []
    for i, layer in enumerate(layers):
        if layer.type not in FOLDABLE or len(layer.top) != 1:
            continue
        if layer.type == "Deconvolution" and layer.convolution_param.group != 1:
            continue  # grouped deconvolution weights interleave output channels: not folded
        j = _sole_next(layers, i, layer.top[0], "BatchNorm")
        if j is None:
            continue
        bn = layers[j]
        if bn.batch_norm_param.HasField("use_global_stats") and not bn.batch_norm_param.use_global_stats:
            raise MergeError(f"BatchNorm {bn.name} uses batch statistics (use_global_stats: false): "
                             f"only a deploy net with stored statistics can be folded")
        k = _sole_next(layers, j, bn.top[0], "Scale")
        if k is not None and layers[k].scale_param.axis != 1:
            k = None
        merges.append((i, j, k))
    return merges


def fold(conv_blobs, bn_blobs, eps, scale_blobs, deconv=False):
    """(W', b') in float32 from the conv's blobs, BatchNorm's three blobs and Scale's blobs."""
    w = conv_blobs[0].data.astype(np.float64)
    axis = 1 if deconv else 0
    b = conv_blobs[1].data.astype(np.float64) if len(conv_blobs) > 1 else np.zeros(w.shape[axis])
    factor = float(bn_blobs[2].data.ravel()[0])
    norm = 0.0 if factor == 0 else 1.0 / factor
    mean = bn_blobs[0].data.astype(np.float64) * norm
    var = bn_blobs[1].data.astype(np.float64) * norm
    gamma = scale_blobs[0].data.astype(np.float64).ravel() if scale_blobs else np.ones_like(mean)
    beta = (scale_blobs[1].data.astype(np.float64).ravel() if scale_blobs and len(scale_blobs) > 1
            else np.zeros_like(mean))
    if not (mean.shape == var.shape == gamma.shape == beta.shape == (w.shape[axis],)):
        raise MergeError(f"per-channel sizes disagree: conv {w.shape[axis]} outputs, BatchNorm "
                         f"{mean.shape}, Scale {gamma.shape}")
    k = gamma / np.sqrt(var + eps)
    per_channel = k.reshape((1, -1, 1, 1) if deconv else (-1, 1, 1, 1))
    return ((w * per_channel).astype(np.float32),
            ((b - mean) * k + beta).astype(np.float32))


def merged_net_param(net_param, merges):
    """A copy of `net_param` without the folded layers, each merged conv biased and retopped."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    drop = set()
    for i, j, k in merges:
        conv = out.layer[i]
        conv.convolution_param.bias_term = True
        conv.top[0] = out.layer[k if k is not None else j].top[0]
        drop.update([j] if k is None else [j, k])
    kept = [layer for n, layer in enumerate(out.layer) if n not in drop]
    del out.layer[:]
    out.layer.extend(kept)
    return out


def merge_bn(prototxt, caffemodel, out_prototxt, out_caffemodel):
    """Writes the folded net and weights; returns the names of the merged convolutions."""
    for path, what in ((prototxt, "prototxt"), (caffemodel, "caffemodel")):
        if not os.path.isfile(path):
            raise MissingFileError(f"{path}: no such {what}")
    net_param = caffe_pb2.NetParameter()
    with open(prototxt) as f:
        try:
            text_format.Merge(f.read(), net_param)
        except (text_format.ParseError, UnicodeDecodeError) as e:
            raise MergeError(f"{prototxt}: not a Caffe net prototxt ({e})") from None
    merges = find_merges(net_param)
    if not merges:
        raise MergeError(f"{prototxt}: no (De)Convolution followed by BatchNorm to fold")
    src = caffe.Net(prototxt, caffe.TEST)
    check_fits(src, caffemodel, complete=True)  # a misfit would abort the process inside Caffe
    src.copy_from(caffemodel)
    new_param = merged_net_param(net_param, merges)
    with open(out_prototxt, "w") as f:
        f.write(text_format.MessageToString(new_param))
    dst = caffe.Net(out_prototxt, caffe.TEST)
    merged = {}
    for i, j, k in merges:
        conv, bn = net_param.layer[i], net_param.layer[j]
        scale_blobs = src.params[net_param.layer[k].name] if k is not None else None
        merged[conv.name] = fold(src.params[conv.name], src.params[bn.name],
                                 bn.batch_norm_param.eps, scale_blobs,
                                 deconv=conv.type == "Deconvolution")
    for name, blobs in dst.params.items():
        if name in merged:
            blobs[0].data[...], blobs[1].data[...] = merged[name]
        else:
            for d, s in zip(blobs, src.params[name]):
                d.data[...] = s.data
    dst.save(out_caffemodel)
    return list(merged)
