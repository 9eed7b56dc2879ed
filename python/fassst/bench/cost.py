"""Multiply-adds, parameters and caffemodel size of a net, from its prototxt, and the paper's
stated figures to hold them against (scripts/flops.py; the benchmark's tables).

Counted as the paper's "FLOPs" (reading, see docs/DESIGN.md): multiply-accumulates of the
Convolution (and DepthwiseConvolution), Deconvolution and InnerProduct layers (bias adds and
elementwise layers are not counted). Shapes come from instantiating the net in pycaffe, so every
count follows the real blob sizes. In a deploy net the ROI count is data-dependent;
`with_rois(net_param, n)` replaces IAMDecode by an Input of n ROIs so the tail is counted for n
instances, as the paper does for its FLOPs.

The paper's figures: cost_targets.json (its GFLOPs and MB per config, with the tolerances the
project holds them to) and paper_efficiency.json (the rows of its Tables 2 and 4: FPS, GFLOPs, MB
of FASSST and the methods it compares with), both beside this file.
"""
import collections
import copy
import json
import os
import tempfile

import caffe

from fassst.errors import read_json
from fassst.net.fassst_net import build_net
from fassst.net.load import caffe_net

HERE = os.path.dirname(os.path.abspath(__file__))
PAPER_COST = os.path.join(HERE, "cost_targets.json")
PAPER_EFFICIENCY = os.path.join(HERE, "paper_efficiency.json")
# The paper's efficiency tables, by the config that is its row (configs carry no data-set field).
PAPER_TABLE_OF = {"fassst_416_coco": "coco", "fassst_768_cityscapes": "cityscapes"}

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


def part_totals(rows):
    """{part (group_of): [multiply-adds, params]} over layer_costs' rows, parts in net order."""
    parts = collections.OrderedDict()
    for r in rows:
        p = parts.setdefault(group_of(r["name"]), [0, 0])
        p[0] += r["macs"]
        p[1] += r["params"]
    return parts


def paper_cost(name):
    """The paper's GFLOPs and MB for the config `name` with their tolerances, else None."""
    return read_json(PAPER_COST, "the paper's cost figures").get(name)


def paper_rows(cfg):
    """The paper's Table 2 or 4 rows for the config it reports, else None."""
    key = PAPER_TABLE_OF.get(cfg.name)
    if key is None:
        return None
    with open(PAPER_EFFICIENCY) as f:
        return json.load(f)[key]


def count(cfg, rois=None):
    """The cost of cfg's deploy net with `rois` ROIs through the tail (default n, the slot count,
    as the paper counts): total and per part, every layer's row, and the paper's figures."""
    rois = rois or cfg.num_slots
    rows, net = layer_costs(with_rois(build_net(cfg, "deploy"), rois))
    total = summarize(rows, net)
    return dict(config=cfg.name, rois=rois, gmacs=total["macs"] / 1e9, params=total["params"],
                caffemodel_mb=total["caffemodel_bytes"] / 1e6,
                parts={k: dict(gmacs=m / 1e9, params=p) for k, (m, p) in part_totals(rows).items()},
                layers=rows, paper=paper_cost(cfg.name))


def markdown(summary, cfg, layers=False):
    """count()'s summary as text: every layer (layers=True), the parts, the total, and the
    difference from the paper's figures when the tail is counted n times, as there."""
    lines = []
    if layers:
        lines.append(f"{'layer':32s} {'type':16s} {'GMACs':>9s} {'params':>10s}  top")
        lines += [f"{r['name']:32s} {r['type']:16s} {r['macs'] / 1e9:9.4f} {r['params']:10d}  "
                  f"{r['shape']}" for r in summary["layers"] if r["macs"] or r["params"]]
    lines += [f"{cfg.name}: input {cfg.input_size}, n = {cfg.num_slots}, C = {cfg.num_classes}, "
              f"D = {cfg.mask_dim}, IAM width {cfg.iam_dim}, {summary['rois']} ROIs through the tail",
              "| part | GMACs | params (M) |", "|---|---:|---:|"]
    lines += [f"| {name} | {p['gmacs']:.2f} | {p['params'] / 1e6:.2f} |"
              for name, p in summary["parts"].items() if p["gmacs"] or p["params"]]
    gmacs, mb, paper = summary["gmacs"], summary["caffemodel_mb"], summary["paper"]
    lines += [f"| **total** | **{gmacs:.2f}** | **{summary['params'] / 1e6:.2f}** |",
              f"caffemodel (fp32): {mb:.2f} MB"]
    if paper and summary["rois"] == cfg.num_slots:
        lines.append(f"paper: {paper['gflops']} GFLOPs ({100 * (gmacs / paper['gflops'] - 1):+.1f}%), "
                     f"{paper['mb']} MB ({100 * (mb / paper['mb'] - 1):+.1f}%)")
    return "\n".join(lines)
