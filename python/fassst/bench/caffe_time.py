"""The benchmark cases as nets for Caffe's own `caffe time` tool, and its log read back.

Why: on a machine with only the `caffe` binary (an edge board, or a GPU box whose Python cannot
load this build's pycaffe) the layers are still timed the same way. `caffe time` cannot be fed
arrays, so each Input becomes stock layers that draw the same distributions the pycaffe fillers
use (`layer_cases.fill`, `rff_cases.fill`): Gaussian features, binary targets with 10 % ones,
ROIs of 8 px to 30 % of the image inside it.
"""
import json
import os
import re

from caffe.proto import caffe_pb2

from fassst.bench.layer_cases import SIZE
from fassst.errors import InputError, MissingFileError, read_json

_LINE = re.compile(r"\]\s+(\S+)\s+(forward|backward): ([0-9.]+) ms")
_FORWARD = re.compile(r"Average Forward pass: ([0-9.]+) ms")


def _dummy(top, dims, filler):
    layer = caffe_pb2.LayerParameter(name=top, type="DummyData", top=[top])
    layer.dummy_data_param.shape.add().dim.extend(dims)
    layer.dummy_data_param.data_filler.add().CopyFrom(filler)
    return layer


def _filler(kind, **kw):
    return caffe_pb2.FillerParameter(type=kind, **kw)


def _rois(top, count, size=SIZE):
    xy, wh, x2y2, idx = (f"{top}_{s}" for s in ("xy", "wh", "x2y2", "idx"))
    add = caffe_pb2.LayerParameter(name=x2y2, type="Eltwise", bottom=[xy, wh], top=[x2y2])
    cat = caffe_pb2.LayerParameter(name=top, type="Concat", bottom=[idx, xy, x2y2], top=[top])
    cat.concat_param.axis = 1
    return [_dummy(xy, [count, 2], _filler("uniform", min=0, max=size * 0.7)),
            _dummy(wh, [count, 2], _filler("uniform", min=8, max=size * 0.3)),
            add, _dummy(idx, [count, 1], _filler("constant", value=0)), cat]


def _binary(top, dims):
    # Threshold would be exact but has no backward, and `caffe time` calls every layer's;
    # sigmoid(1000 (u - 0.9)) is 0 or 1 except on a sliver of width 0.01.
    u, scaled = f"{top}_u", f"{top}_scaled"
    power = caffe_pb2.LayerParameter(name=scaled, type="Power", bottom=[u], top=[scaled])
    power.power_param.scale, power.power_param.shift = 1000, -900
    sig = caffe_pb2.LayerParameter(name=top, type="Sigmoid", bottom=[scaled], top=[top])
    return [_dummy(u, dims, _filler("uniform", min=0, max=1)), power, sig]


def _random_input(top, dims, size=SIZE):
    if top == "rois":
        return _rois(top, dims[0], size)
    if top == "target":
        return _binary(top, dims)
    return [_dummy(top, dims, _filler("gaussian", std=1))]


def for_caffe_time(proto, size=SIZE, force_backward=True):
    """The case's NetParameter with every Input replaced by random stock-layer inputs (ROIs
    inside a size x size image)."""
    out = caffe_pb2.NetParameter(name=proto.name or "bench", force_backward=force_backward)
    for layer in proto.layer:
        if layer.type != "Input":
            out.layer.add().CopyFrom(layer)
            continue
        for top, shape in zip(layer.top, layer.input_param.shape):
            out.layer.extend(_random_input(top, list(shape.dim), size))
    return out


def timed_layers(proto):
    """Names of the layers a case times: all but its inputs."""
    return [layer.name for layer in proto.layer if layer.type != "Input"]


def parse_log(text):
    """{layer: [forward ms, backward ms]} from `caffe time`'s per-layer average lines."""
    times = {}
    for name, direction, ms in _LINE.findall(text):
        times.setdefault(name, [0.0, 0.0])[direction == "backward"] = float(ms)
    return times


def forward_pass_ms(text):
    """`caffe time`'s "Average Forward pass" of a whole net, ms."""
    m = _FORWARD.search(text)
    if not m:
        raise InputError("no 'Average Forward pass' line: did `caffe time` finish?")
    return float(m.group(1))


_WHOLE = re.compile(r"^fassst_time: .*: forward over (\d+) passes: median ([0-9.]+) ms", re.M)


def whole_forward_ms(text):
    """fassst_time's median forward of a whole net, ms (one synchronisation per pass, unlike
    `caffe time`'s per-layer timers)."""
    m = _WHOLE.search(text)
    if not m:
        raise InputError("no 'fassst_time: ... forward over N passes' line: did fassst_time finish?")
    return float(m.group(2))


_CHECK = re.compile(r"^fassst_time: .*: \S+(?: \d+)? vs CPU over (\d+) blobs: worst relative "
                    r"difference (\S+) \(blob (\S+)\); (\d+) over (\S+)$", re.M)


def cpu_check(text):
    """fassst_time -check_cpu's verdict: dict(blobs, worst, blob, over, tolerance), or None when
    the log has no such line (not asked for, or the run ended first)."""
    m = _CHECK.search(text)
    if not m:
        return None
    return dict(blobs=int(m.group(1)), worst=float(m.group(2)), blob=m.group(3),
                over=int(m.group(4)), tolerance=float(m.group(5)))


def _slug(index, name):
    return f"{index:02d}_" + "".join(c if c.isalnum() else "_" for c in name.split(" ")[0])


def write_cases(cases, out_dir):
    """Writes out_dir/NN_<layer>.prototxt per (name, build, fill) case and cases.json, which
    names each file's case and timed layers; returns the number of cases."""
    os.makedirs(out_dir, exist_ok=True)
    index = {}
    for i, (name, build, _) in enumerate(cases):
        proto = build()
        slug = _slug(i, name)
        with open(os.path.join(out_dir, slug + ".prototxt"), "w") as f:
            f.write(str(for_caffe_time(proto)))
        index[slug] = dict(case=name, layers=timed_layers(proto))
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(index, f, indent=2)
    return len(index)


def rows_from_logs(log_dir, partial=False):
    """[(case, forward ms, backward ms)] from the NN_<layer>.log files `caffe time` wrote beside
    write_cases' nets; a case's time is the sum over its timed layers. A missing or unfinished
    log is an error, or with partial=True (a run cut short) that case is left out."""
    index = read_json(os.path.join(log_dir, "cases.json"), "cases.json of write_cases")
    rows = []
    for slug, case in index.items():
        log = os.path.join(log_dir, slug + ".log")
        if not os.path.exists(log):
            if partial:
                continue
            raise MissingFileError(f"{log}: missing; run `caffe time -model "
                                    f"{log_dir}/{slug}.prototxt ... 2> {log}`")
        with open(log, errors="replace") as f:
            times = parse_log(f.read())
        missing = [name for name in case["layers"] if name not in times]
        if missing:
            if partial:
                continue
            raise InputError(f"{log}: no timing lines for {missing}; did `caffe time` finish?")
        rows.append((case["case"], sum(times[n][0] for n in case["layers"]),
                     sum(times[n][1] for n in case["layers"])))
    return rows


def logs_markdown(log_dir):
    """rows_from_logs as a markdown table (bench_layers.py and bench_depthwise.py --from-logs)."""
    lines = ["| layer (caffe time, mean) | forward ms | backward ms |", "|---|---:|---:|"]
    lines += [f"| {name} | {fwd:.3f} | {bwd:.3f} |" for name, fwd, bwd in rows_from_logs(log_dir)]
    return "\n".join(lines)
