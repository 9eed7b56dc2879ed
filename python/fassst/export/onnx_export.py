"""Caffe NetParameter + caffemodel blobs -> ONNX model, and the FASSST deploy net's export.

`convert_net` walks the layers in order, as bench/cost.py and net/merge_bn.py do, and hands each to
the converter of its type (caffe_layers.py, fassst_layers.py); an unknown type stops the export
naming the layer. Layers are filtered by phase as Caffe filters them for TEST.

`export_deploy` is the whole segmenter: input `image` (1, 3, S, S), the letterboxed, normalised
photo (the Caffe net's `data`); outputs, R = the kept slots (0 to n):
    boxes (R, 4) float   x1, y1, x2, y2 in input pixels (IAMDecode's rois without the batch)
    scores (R) float     best class probability, descending
    classes (R) int64    class index (argmax of the logits)
    masks (R, 1, M, M)   mask probabilities (the Caffe net's `masks`), M = 8 roi_size
    slots (R) int64      IAM slot of each instance (IAMDecode's optional fourth top)
"""
import copy

import onnx
from caffe.proto import caffe_pb2
from onnx import TensorProto

from fassst.export import caffe_layers, fassst_layers
from fassst.export.caffemodel import fold_batchnorm, read_caffemodel
from fassst.export.graph import ExportError, Graph
from fassst.net.fassst_net import build_net
from fassst.net.geometry import roi_sides

DEFAULT_OPSET = 17
OUTPUTS = ("boxes", "scores", "classes", "masks", "slots")
CONVERTERS = {**caffe_layers.CONVERTERS, **fassst_layers.CONVERTERS}
_TEST = caffe_pb2.TEST


def _in_test_phase(layer):
    for rule in list(layer.include) + list(layer.exclude):
        if rule.HasField("min_level") or rule.HasField("max_level") or rule.stage or rule.not_stage:
            raise ExportError(f"layer {layer.name}: level/stage rules are not exported")
    if layer.include:
        return any(r.phase == _TEST for r in layer.include if r.HasField("phase"))
    return not any(r.phase == _TEST for r in layer.exclude if r.HasField("phase"))


def convert_net(net_param, blobs, opset=DEFAULT_OPSET, input_names=None, output_names=()):
    """A Graph holding every layer of `net_param` (TEST phase); blobs: {layer name: arrays}.
    output_names: names the caller will give graph outputs, kept free of internal values."""
    if len(net_param.input) or len(net_param.layers):
        raise ExportError(f"{net_param.name}: legacy net inputs or V1 layers; use Input layers")
    g = Graph(opset, reserved=output_names)
    for layer in net_param.layer:
        if not _in_test_phase(layer):
            continue
        convert = CONVERTERS.get(layer.type)
        if convert is None:
            raise ExportError(f"layer {layer.name}: type {layer.type!r} has no ONNX converter "
                              f"(known: {', '.join(sorted(CONVERTERS))})")
        if layer.type == "Input":
            caffe_layers.input_layer(g, layer, None, names=input_names)
        else:
            convert(g, layer, blobs.get(layer.name))
        for top in layer.top:  # a converter that knows no better keeps the input's (rank, C)
            if top not in g.hints and layer.bottom and layer.bottom[0] in g.hints:
                g.hints[top] = g.hints[layer.bottom[0]]
    return g


def with_slot_top(net_param):
    """Copy of a deploy net whose IAMDecode also writes its fourth top, `slots`."""
    out = copy.deepcopy(net_param)
    decodes = [layer for layer in out.layer if layer.type == "IAMDecode"]
    if len(decodes) != 1:
        raise ExportError(f"{net_param.name}: expected one IAMDecode layer, found {len(decodes)}")
    if len(decodes[0].top) == 3:
        decodes[0].top.append("slots")
    return out


def deploy_net_param(cfg):
    """The FASSST deploy net as exported: build_net(cfg, "deploy") with the slots top."""
    return with_slot_top(build_net(cfg, "deploy"))


def export_deploy(cfg, weights, opset=DEFAULT_OPSET, fold_bn=False):
    """ModelProto of the whole FASSST deploy net; weights: a .caffemodel path or a blob dict."""
    net_param = deploy_net_param(cfg)
    blobs = read_caffemodel(weights) if isinstance(weights, str) else weights
    if fold_bn:
        net_param, blobs = fold_batchnorm(net_param, blobs)
    g = convert_net(net_param, blobs, opset, input_names={"data": "image"}, output_names=OUTPUTS)
    mask = roi_sides(cfg.roi_size)[3]
    rois = g.value("rois", "outputs")
    g.add_output("boxes", g.node("Slice", [rois, g.i64("out/b0", [1]), g.i64("out/b1", [5]),
                                           g.i64("out/b_axis", [1])], "out/boxes"), ["R", 4])
    g.add_output("scores", g.value("scores", "outputs"), ["R"])
    g.add_output("classes", g.node("Cast", [g.value("labels", "outputs")], "out/classes",
                                   to=TensorProto.INT64), ["R"], TensorProto.INT64)
    g.add_output("masks", g.value("masks", "outputs"), ["R", 1, mask, mask])
    g.add_output("slots", g.node("Cast", [g.value("slots", "outputs")], "out/slots",
                                 to=TensorProto.INT64), ["R"], TensorProto.INT64)
    doc = (f"FASSST {cfg.name}: image (1, 3, {cfg.input_size}, {cfg.input_size}) letterboxed, "
           f"ImageNet-normalised RGB -> boxes (input pixels), scores, classes, masks, slots; "
           f"score > {cfg.score_threshold}, at most {cfg.num_slots}; BN "
           f"{'folded' if fold_bn else 'as BatchNormalization'}")
    model = g.model(f"{cfg.name}_deploy", doc)
    onnx.helper.set_model_props(model, dict(
        config=cfg.name, input_size=str(cfg.input_size), num_classes=str(cfg.num_classes),
        num_slots=str(cfg.num_slots), score_threshold=repr(float(cfg.score_threshold)),
        mask_size=str(mask), batchnorm="folded" if fold_bn else "BatchNormalization"))
    return model


def save(model, path):
    onnx.save(model, path)
    return path
