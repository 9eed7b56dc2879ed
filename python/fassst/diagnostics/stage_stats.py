"""Where a training run moves the network: per part, how far a step moves the weights, how large
the gradient reaching it is, and how many ReLU6 units sit on a flat end.

The collapse watch (spread.py) says *that* a blob stopped depending on the image; these numbers
say *why*: a part whose step is a large fraction of its weights is being rewritten, and a ReLU6
whose units all sit at 0 or 6 passes no gradient back (docs/DESIGN.md, "Training that
converges").

Parts group the train net's layers by job: each backbone module (features.K), the three pyramid
levels, the IAM, the mask tail, the rest. The row of a part, after a solver step:
    weights  L2 norm of its parameters
    update   L2 norm of the step just applied (Caffe's SGD leaves it in the parameters' diff:
             rate x (gradient + decay x weights) + momentum x the previous step)
    ratio    update / weights (1e-3 is a usual fine-tuning pace; 1e-1 rewrites the part in a
             handful of steps)
    grad     RMS of the gradient that reached the part's output blob on the step's last pass
    at0/at6  for a ReLU6 output: the fraction of its values at 0 and at 6 on that pass
Works on anything shaped like a caffe.Net (layer names, types, params and blobs), so the
tests build one by hand.
"""
import re

import numpy as np

COLUMNS = ("part", "weights", "update", "ratio", "grad", "at0", "at6")


def part_of(layer):
    """The part a train-net layer belongs to, by the generator's names."""
    m = re.match(r"(features\.\d+)(\.|/|$)", layer)
    if m:
        return m.group(1)
    m = re.match(r"(p[123])/", layer)
    if m:
        return m.group(1)
    if layer.startswith("iam/"):
        return "iam"
    if layer.startswith(("tail/", "mask/", "rff")):
        return "tail"
    return "other"


def _part_order(part):
    m = re.match(r"features\.(\d+)$", part)
    return (0, int(m.group(1)), "") if m else (1, 0, part)


def stage_rows(net):
    """One dict per part (COLUMNS) from a net after a solver step, backbone first."""
    weights, updates, outputs, relu6 = {}, {}, {}, {}
    for name, layer, tops in zip(net._layer_names, net.layers, _layer_tops(net)):
        part = part_of(name)
        # BatchNorm's blobs are running statistics, not weights a step moves.
        for blob in (net.params.get(name, ()) if layer.type != "BatchNorm" else ()):
            weights[part] = weights.get(part, 0.0) + float(np.square(blob.data, dtype=np.float64).sum())
            updates[part] = updates.get(part, 0.0) + float(np.square(blob.diff, dtype=np.float64).sum())
        if tops:
            outputs[part] = tops[-1]  # the part's last layer's top: what leaves the part
            if layer.type == "ReLU6":
                relu6[part] = tops[-1]
    rows = []
    for part in sorted(set(weights) | set(outputs), key=_part_order):
        w, u = np.sqrt(weights.get(part, 0.0)), np.sqrt(updates.get(part, 0.0))
        row = dict(part=part, weights=w, update=u, ratio=u / w if w > 0 else np.nan,
                   grad=_rms(net.blobs[outputs[part]].diff) if part in outputs else np.nan,
                   at0=np.nan, at6=np.nan)
        if part in relu6 and relu6[part] == outputs.get(part):
            data = net.blobs[relu6[part]].data
            if data.size:
                row["at0"], row["at6"] = float((data <= 0).mean()), float((data >= 6).mean())
        rows.append(row)
    return rows


def relu6_rows(net, parts):
    """(part, blob, at0, at6) for every ReLU6 top inside the given parts (a block's expansion
    and depthwise ReLU6s, not just its output)."""
    out = []
    for name, layer, tops in zip(net._layer_names, net.layers, _layer_tops(net)):
        if layer.type == "ReLU6" and part_of(name) in parts and tops:
            data = net.blobs[tops[-1]].data
            if data.size:
                out.append((part_of(name), tops[-1], float((data <= 0).mean()),
                            float((data >= 6).mean())))
    return out


def _layer_tops(net):
    names = list(net._layer_names)
    return [list(net.top_names[n]) for n in names]


def _rms(a):
    return float(np.sqrt(np.square(a, dtype=np.float64).mean())) if a.size else np.nan
