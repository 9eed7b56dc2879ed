"""Whether a .caffemodel fits a net, decided before Caffe copies it.

Caffe copies a caffemodel into a net by layer name (Net::CopyTrainedLayersFrom): layers only in
the file are ignored, layers only in the net keep their fillers, and a layer in both must have
as many blobs, of the same shapes, each holding as many values as its shape, or Caffe aborts the
whole process (a CHECK / LOG(FATAL), no exception). `check_fits` applies the same rules to the
file's blobs (read with caffe_pb2, no net built from it) and raises WeightsMismatch naming the
first misfit. Before that, the file must be one Caffe reads without aborting: at most 512 MiB
(its reader's limit), a NetParameter, not both `layer` and V1 `layers`, no V0 layers, legacy
input fields that agree, and not a path ending in .h5 (Caffe then reads HDF5 instead).

A file cut short is refused too: inside a layer it no longer parses, or its blobs hold fewer
values than their shapes. Cut between two layers it is a valid file of fewer layers; `complete`
(inference, folding) refuses it for the layers with weights it lacks, while training accepts
partial weights (the ImageNet backbone alone) by design.
"""
import math
import os

from caffe.proto import caffe_pb2
from google.protobuf.message import DecodeError

from fassst.errors import InputError, MissingFileError


class WeightsMismatch(InputError):
    """A caffemodel does not fit the net it is given to; the message names the layer."""


def _legacy(blob):
    return any(blob.HasField(f) for f in ("num", "channels", "height", "width"))


def blob_shape(blob):
    """A BlobProto's shape as Caffe reads it: legacy (num, channels, height, width) when any of
    those fields is set, else shape.dim."""
    if _legacy(blob):
        return (blob.num, blob.channels, blob.height, blob.width)
    return tuple(blob.shape.dim)


def _shape_equals(net_shape, blob):
    """Blob::ShapeEquals: a legacy proto shape matches a net shape of at most 4 axes padded
    with leading 1s (a bias (N,) is (1, 1, 1, N) there)."""
    if _legacy(blob):
        return len(net_shape) <= 4 and (1,) * (4 - len(net_shape)) + tuple(net_shape) == blob_shape(blob)
    return tuple(net_shape) == blob_shape(blob)


CAFFE_READ_LIMIT = 536870912  # bytes: the limit of Caffe's ReadProtoFromBinaryFile (util/io.cpp)


def parse_caffemodel(path):
    """The NetParameter of a .caffemodel; MissingFileError or WeightsMismatch naming the file."""
    param = caffe_pb2.NetParameter()
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such caffemodel")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise WeightsMismatch(f"{path}: cannot read the caffemodel ({e.strerror})") from None
    if not data:
        raise WeightsMismatch(f"{path}: empty file (0 bytes), not a caffemodel")
    try:
        param.ParseFromString(data)
    except DecodeError as e:
        raise WeightsMismatch(f"{path}: not a caffemodel (a binary NetParameter): {e}") from None
    if not param.IsInitialized():  # Python parses it; Caffe's C++ reader refuses, and aborts
        raise WeightsMismatch(f"{path}: not a caffemodel (a binary NetParameter): required "
                              f"fields are missing: {param.FindInitializationErrors()[:3]}")
    return param


def read_layers(path):
    """[(layer name, layer type, [BlobProto])] of a .caffemodel as Caffe reads it, V1 ("layers")
    files included; WeightsMismatch for a file on which Caffe's reader would abort."""
    if str(path).endswith(".h5"):
        raise WeightsMismatch(f"{path}: Caffe reads a .h5 path as HDF5 weights, which are not "
                              f"checked here; give a .caffemodel")
    if os.path.isfile(path) and os.path.getsize(path) > CAFFE_READ_LIMIT:
        raise WeightsMismatch(f"{path}: {os.path.getsize(path)} bytes, more than the "
                              f"{CAFFE_READ_LIMIT} Caffe reads from a caffemodel")
    param = parse_caffemodel(path)
    if len(param.layer) and len(param.layers):
        raise WeightsMismatch(f"{path}: has both 'layer' and V1 'layers' entries, which Caffe "
                              f"refuses to read (not a caffemodel Caffe wrote, or corrupt)")
    if any(l.HasField("layer") for l in param.layers):
        raise WeightsMismatch(f"{path}: a V0 caffemodel (layers {{ layer {{ ... }} }}); upgrade "
                              f"it with Caffe's upgrade_net_proto_binary first")
    layers = [(l.name, l.type, list(l.blobs)) for l in param.layer]
    layers += [(l.name, str(l.type), list(l.blobs)) for l in param.layers]
    if len(param.input) and (len(param.input_shape) or len(param.input_dim)):
        # Caffe turns the legacy input fields into a first layer "input" without blobs, reading
        # one shape (or four dims) per input name
        if (len(param.input_shape) < len(param.input) if len(param.input_shape)
                else len(param.input_dim) < 4 * len(param.input)):
            raise WeightsMismatch(f"{path}: its legacy input fields disagree ({len(param.input)} "
                                  f"inputs, {len(param.input_shape)} shapes, "
                                  f"{len(param.input_dim)} dims)")
        layers.insert(0, ("input", "Input", []))
    return layers


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _values_problem(blob, shape):
    """Why Blob::FromProto would abort on this BlobProto for a blob of `shape` (text), or None:
    its data (double_data when given) must hold one value per element, its diff none or as many."""
    count = math.prod(shape)
    data = len(blob.double_data) or len(blob.data)
    if data != count:
        return f"holds {data} values, its shape {_shape_text(shape)} needs {count}"
    diff = len(blob.double_diff) or len(blob.diff)
    if diff and diff != count:
        return f"holds {diff} diff values, its shape {_shape_text(shape)} needs {count} or none"
    return None


def blobs_fit(blobs, shapes):
    """Whether Caffe copies a layer's BlobProtos into net blobs of these shapes."""
    return len(blobs) == len(shapes) and all(
        _shape_equals(s, b) and _values_problem(b, s) is None for b, s in zip(blobs, shapes))


def check_fits(net, weights, cfg=None, complete=False):
    """Raises WeightsMismatch unless Caffe can copy `weights` (a .caffemodel path) into `net`
    (a caffe.Net), or when the two share no layer with weights at all (nothing would be copied:
    surely the wrong file). complete: also unless the file holds every layer of the net that has
    weights (a run of the net, not training from partial weights). cfg, if given, names the
    config in the message."""
    target = {name: [tuple(b.data.shape) for b in layer.blobs]
              for name, layer in zip(net._layer_names, net.layers)}
    where = f"{weights} does not fit " + (f"config {cfg.name}" if cfg is not None else "this net")
    source = read_layers(weights)
    shared = [(name, kind, blobs) for name, kind, blobs in source if name in target]
    for name, kind, blobs in shared:
        shapes = target[name]
        if len(blobs) != len(shapes):
            hint = _fold_hint(source, target, cfg) if len(blobs) < len(shapes) else ""
            raise WeightsMismatch(f"{where}: layer '{name}' has {len(blobs)} blob(s) in the file, "
                                  f"{len(shapes)} in the net{hint}")
        for j, (blob, shape) in enumerate(zip(blobs, shapes)):
            if not _shape_equals(shape, blob):
                raise WeightsMismatch(f"{where}: layer '{name}' blob {j} is "
                                      f"{_shape_text(blob_shape(blob))} in the file, "
                                      f"{_shape_text(shape)} in the net")
            problem = _values_problem(blob, shape)
            if problem:
                raise WeightsMismatch(f"{where}: layer '{name}' blob {j} {problem} (the file is "
                                      f"truncated or corrupt)")
    if not any(blobs for _, _, blobs in shared) and any(target.values()):
        raise WeightsMismatch(f"{where}: the file shares no layer with weights with the net "
                              f"(its first layers: {[n for n, _, b in source if b][:3]}), so "
                              f"nothing would be copied")
    if complete:
        present = {name for name, _, _ in source}
        missing = [name for name, shapes in target.items() if shapes and name not in present]
        if missing:
            raise WeightsMismatch(
                f"{where}: the file has no weights for layer '{missing[0]}' ({len(missing)} of the "
                f"net's {sum(1 for s in target.values() if s)} layers with weights lack them): "
                f"truncated, or weights of part of the net, such as an ImageNet backbone, which "
                f"only training starts from")


def _fold_hint(source, target, cfg):
    """Why a conv has fewer blobs in the file than in the net (no bias), when the file has
    BatchNorm layers the net lacks: the net folded them into its convolutions."""
    unfolded = [name for name, kind, _ in source if kind == "BatchNorm" and name not in target]
    if not unfolded:
        return ""
    hint = (f". The file is not BatchNorm-folded (it has BatchNorm layers such as "
            f"'{unfolded[0]}'), ")
    if cfg is not None and cfg.fold_backbone_bn:
        return hint + (f"but config {cfg.name} folds the backbone's BatchNorm into its "
                       f"convolutions (fold_backbone_bn): give folded weights (--weights imagenet "
                       f"gives them for MobileNetV2; scripts/merge_bn.py folds a deploy net's) or "
                       f"set fold_backbone_bn false")
    return hint + ("but the net has them folded into its convolutions: give folded weights "
                   "(scripts/merge_bn.py)")
