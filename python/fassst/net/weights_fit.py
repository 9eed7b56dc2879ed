"""Whether a .caffemodel fits a net, decided before Caffe copies it.

Caffe copies a caffemodel into a net by layer name (Net::CopyTrainedLayersFrom): layers only in
the file are ignored, layers only in the net keep their fillers, and a layer in both must have
as many blobs, of the same shapes, or Caffe aborts the whole process (a CHECK / LOG(FATAL), no
exception). `check_fits` applies the same rules to the file's blob shapes (read with caffe_pb2,
no net built from it) and raises WeightsMismatch naming the first misfit and both shapes.
"""
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


def parse_caffemodel(path):
    """The NetParameter of a .caffemodel; MissingFileError or WeightsMismatch naming the file."""
    param = caffe_pb2.NetParameter()
    try:
        with open(path, "rb") as f:
            param.ParseFromString(f.read())
    except (FileNotFoundError, IsADirectoryError):
        raise MissingFileError(f"{path}: no such caffemodel") from None
    except DecodeError as e:
        raise WeightsMismatch(f"{path}: not a caffemodel (a binary NetParameter): {e}") from None
    return param


def read_layers(path):
    """[(layer name, layer type, [BlobProto])] of a .caffemodel, V1 ("layers") files included."""
    param = parse_caffemodel(path)
    layers = [(l.name, l.type, list(l.blobs)) for l in param.layer]
    return layers + [(l.name, str(l.type), list(l.blobs)) for l in param.layers]


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def blobs_fit(blobs, shapes):
    """Whether Caffe copies a layer's BlobProtos into net blobs of these shapes."""
    return len(blobs) == len(shapes) and all(_shape_equals(s, b) for b, s in zip(blobs, shapes))


def check_fits(net, weights, cfg=None):
    """Raises WeightsMismatch unless Caffe can copy `weights` (a .caffemodel path) into `net`
    (a caffe.Net), or when the two share no layer with weights at all (nothing would be copied:
    surely the wrong file). cfg, if given, names the config in the message."""
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
    if not any(blobs for _, _, blobs in shared) and any(target.values()):
        raise WeightsMismatch(f"{where}: the file shares no layer with weights with the net "
                              f"(its first layers: {[n for n, _, b in source if b][:3]}), so "
                              f"nothing would be copied")


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
