"""Multiply-adds, parameters and caffemodel size of a net, from its prototxt.

Counted as the paper's "FLOPs" (reading, see docs/DESIGN.md): multiply-accumulates of the
Convolution (and DepthwiseConvolution), Deconvolution and InnerProduct layers (bias adds and
elementwise layers are not
counted; they are listed under `other_elems` for reference). Shapes come from instantiating the
net in pycaffe, so every count follows the real blob sizes. In a deploy net the ROI count is
data-dependent; `with_rois(net_param, n)` replaces IAMDecode by an Input of n ROIs so the tail
is counted for n instances, as the paper does for its FLOPs.
"""
import copy
import os
import tempfile

import caffe

from fassst.net.load import caffe_net

CONV_TYPES = ("Convolution", "DepthwiseConvolution")  # the same parameters and blob shapes
MAC_TYPES = CONV_TYPES + ("Deconvolution", "InnerProduct")


def with_rois(net_param, num_rois):
    """Copy of a deploy NetParameter whose IAMDecode layer is an Input of (num_rois, 5) ROIs."""
    out = copy.deepcopy(net_param)
    for layer in out.layer:
        if layer.type == "IAMDecode":
            rois = layer.top[0]
            layer.ClearField("bottom")
            del layer.top[1:]
            layer.type = "Input"
            layer.ClearField("iam_decode_param")
            layer.input_param.shape.add().dim.extend([num_rois, 5])
            layer.name = rois
            return out
    raise ValueError(f"{net_param.name}: no IAMDecode layer to replace")


def _load(net_param):
    return caffe_net(net_param, caffe.TEST)


def _macs(layer, net):
    top = net.blobs[layer.top[0]].data.shape
    bottom = net.blobs[layer.bottom[0]].data.shape
    weights = net.params[layer.name][0].data.shape
    if layer.type in CONV_TYPES:
        # weights (Cout, Cin / g, kh, kw): every output element costs Cin / g * kh * kw MACs
        return int(_prod(top) * _prod(weights[1:]))
    if layer.type == "Deconvolution":
        # weights (Cin, Cout / g, kh, kw): every input element is spread over Cout / g * kh * kw
        return int(_prod(bottom) * _prod(weights[1:]))
    return int(bottom[0] * _prod(weights))  # InnerProduct: N x Cout x Cin


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def layer_costs(net_param):
    """Rows (name, type, macs, params, top shape) for every layer, in order; and the net."""
    net = _load(net_param)
    rows = []
    for layer in net_param.layer:
        params = sum(b.data.size for b in net.params[layer.name]) if layer.name in net.params else 0
        macs = _macs(layer, net) if layer.type in MAC_TYPES else 0
        shape = tuple(net.blobs[layer.top[0]].data.shape) if layer.top else ()
        rows.append(dict(name=layer.name, type=layer.type, macs=macs, params=params, shape=shape))
    return rows, net


def caffemodel_bytes(net):
    """Size on disk of the net's weights saved as a caffemodel (fp32), measured by saving."""
    with tempfile.NamedTemporaryFile(suffix=".caffemodel", delete=False) as f:
        path = f.name
    try:
        net.save(path)
        return os.path.getsize(path)
    finally:
        os.unlink(path)


def summarize(rows, net):
    return dict(macs=sum(r["macs"] for r in rows), params=sum(r["params"] for r in rows),
                caffemodel_bytes=caffemodel_bytes(net))


def group_of(layer_name):
    """Which FASSST part a layer belongs to, from its name prefix."""
    for prefix, part in (("features.", "backbone"),  # MobileNetV2
                         ("conv1", "backbone"), ("bn1", "backbone"), ("maxpool", "backbone"),
                         ("layer", "backbone"), ("fpn", "FPN"),  # ResNet-50-FPN
                         ("iam/", "IAM"), ("p1/", "pyramid"), ("p2/", "pyramid"),
                         ("p3/", "pyramid"), ("tail/", "mask tail"), ("mask_logits", "mask tail")):
        if layer_name.startswith(prefix):
            return part
    return "other"
