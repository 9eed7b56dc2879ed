"""MobileNetV2's depthwise convolutions at a given input size, each as a one-layer net, two ways:
the stock grouped Convolution (group = channels, Caffe's one im2col + GEMM per channel) and the
DepthwiseConvolution layer, on the same parameters (3x3, pad 1, no bias, as in the backbone).
`table` times both, interleaved so that load from other processes hits them alike."""
import collections

import caffe
import numpy as np
from caffe import layers as L

from fassst.bench.timing import net_from_spec, time_nets
from fassst.net.mobilenet_v2 import block_settings

KINDS = ("Convolution", "DepthwiseConvolution")


def shapes(input_size=416):
    """OrderedDict (channels, side, stride) -> how many of the 17 blocks have that depthwise
    conv; side is the conv's input side (the stem halves the input, pad 1 rounds up)."""
    out = collections.OrderedDict()
    side = (input_size + 1) // 2
    for t, c_in, _, stride in block_settings():
        key = (c_in * t, side, stride)
        out[key] = out.get(key, 0) + 1
        side = (side + stride - 1) // stride
    return out


def net(kind, channels, side, stride):
    """NetParameter: Input (1, channels, side, side) -> one depthwise conv of type `kind`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[1, channels, side, side]))
    ns.dw = getattr(L, kind)(ns.data, convolution_param=dict(
        num_output=channels, group=channels, kernel_size=3, stride=stride, pad=1,
        bias_term=False, weight_filler=dict(type="msra")))
    proto = ns.to_proto()
    proto.name = f"{kind}_{channels}x{side}_s{stride}"
    return proto


def fill(net_, seed=0):
    rng = np.random.default_rng(seed)
    net_.blobs["data"].data[...] = rng.standard_normal(net_.blobs["data"].shape)


def cases(input_size=416):
    """(name, builder, fill) per shape and kind, as fassst.bench.caffe_time.write_cases takes."""
    out = []
    for (c, side, stride), count in shapes(input_size).items():
        for kind in KINDS:
            name = f"{kind} {c}x{side}x{side} s{stride} (x{count})"
            out.append((name, lambda k=kind, c=c, s=side, st=stride: net(k, c, s, st), fill))
    return out


def table(input_size=416, warmup=3, repeats=20, clock="wall"):
    """One row per shape: channels, side, stride, count, and (forward, backward) ms per kind
    (clock: see fassst.bench.timing.CLOCKS)."""
    rows = []
    for (c, side, stride), count in shapes(input_size).items():
        nets = []
        for kind in KINDS:
            n = net_from_spec(net(kind, c, side, stride))
            fill(n)
            nets.append(n)
        stock, layer = time_nets(nets, warmup, repeats, clock)
        rows.append(dict(channels=c, side=side, stride=stride, count=count,
                         stock_ms=list(stock), depthwise_ms=list(layer)))
    return rows


def markdown(rows, input_size, device, clock, repeats):
    """table()'s rows as markdown, with the speedups and the sum over the 17 layers."""
    lines = [f"Depthwise 3x3 convolutions of MobileNetV2 at input {input_size}, {device}, ms "
             f"({clock} clock, median of {repeats})", "",
             "| channels x side, stride | layers | stock fwd | depthwise fwd | speedup | stock bwd "
             "| depthwise bwd | speedup |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    total = [0.0] * 4
    for r in rows:
        (sf, sb), (df, db) = r["stock_ms"], r["depthwise_ms"]
        for i, v in enumerate((sf, df, sb, db)):
            total[i] += r["count"] * v
        lines.append(f"| {r['channels']} x {r['side']}, s{r['stride']} | {r['count']} | {sf:.2f} | "
                     f"{df:.2f} | {sf / df:.1f}x | {sb:.2f} | {db:.2f} | {sb / db:.1f}x |")
    sf, df, sb, db = total
    lines.append(f"| all 17 layers | 17 | {sf:.1f} | {df:.1f} | {sf / df:.1f}x | {sb:.1f} | "
                 f"{db:.1f} | {sb / db:.1f}x |")
    return "\n".join(lines)
