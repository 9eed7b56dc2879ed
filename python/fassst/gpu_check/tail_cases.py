"""The mask tail's 3x3 convolutions as one-layer stock Convolution nets: the cuDNN question.

This Caffe's GPU build runs Convolution as im2col + cuBLAS GEMMs (cuDNN is off: its cuDNN layers
use APIs cuDNN 8 removed): the overlay's batched path (caffe/util/batched_conv.hpp, one GEMM
call over the ROIs) and, as its baseline, Caffe's own loop of one GEMM per ROI (engine: CAFFE).
The tail's convolutions are most of the multiply-adds after the backbone, so whether cuDNN would
be worth porting is decided on them. The shapes are read from the generated deploy net (n ROIs
through the tail, as the benchmark times it), not restated here, so a config change moves them.
"""
import collections

import caffe
from caffe import layers as L

from fassst.bench import cost
from fassst.bench.depthwise_cases import fill  # one Gaussian Input "data", as there
from fassst.net.fassst_net import build_net

TAIL_PREFIX = "tail/conv"


def shapes(cfg):
    """OrderedDict (rois, c_in, c_out, h, w, kernel, stride, pad) -> count of the tail's 3x3
    Convolutions in cfg's deploy net with all cfg.num_slots ROIs through the tail."""
    net_param = cost.with_rois(build_net(cfg, "deploy"), cfg.num_slots)
    _, net = cost.layer_costs(net_param)
    out = collections.OrderedDict()
    for layer in net_param.layer:
        if not (layer.name.startswith(TAIL_PREFIX) and layer.type == "Convolution"):
            continue
        p = layer.convolution_param
        kernel = p.kernel_size[0] if p.kernel_size else p.kernel_h
        if kernel != 3:
            continue
        n, c_in, h, w = net.blobs[layer.bottom[0]].data.shape
        key = (n, c_in, p.num_output, h, w, kernel, p.stride[0] if p.stride else 1,
               p.pad[0] if p.pad else 0)
        out[key] = out.get(key, 0) + 1
    if not out:
        raise ValueError(f"{cfg.name}: no 3x3 {TAIL_PREFIX}* Convolution in the deploy net")
    return out


def case_name(key, count):
    n, c_in, c_out, h, w, k, s, _ = key
    return f"tail/conv{k}x{k} {n}x{c_in}x{h}x{w} -> {c_out} s{s} (x{count})"


PER_IMAGE = " per ROI (engine CAFFE)"


def net(key, per_image=False):
    """NetParameter: Input (n, c_in, h, w) -> one stock Convolution as in the tail (no bias:
    BatchNorm follows it); per_image: on Caffe's own loop over the ROIs."""
    n, c_in, c_out, h, w, k, s, pad = key
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[n, c_in, h, w]))
    extra = dict(engine=caffe.params.Convolution.CAFFE) if per_image else {}
    ns.conv = L.Convolution(ns.data, convolution_param=dict(
        num_output=c_out, kernel_size=k, stride=s, pad=pad, bias_term=False,
        weight_filler=dict(type="msra"), **extra))
    proto = ns.to_proto()
    proto.name = f"tail_conv_{n}x{c_in}x{h}x{w}"
    return proto


def cases(cfg):
    """(name, builder, fill) per distinct tail shape, as caffe_time.write_cases takes: the
    layer as the nets run it, then on Caffe's per-ROI loop (PER_IMAGE)."""
    out = []
    for key, count in shapes(cfg).items():
        out.append((case_name(key, count), lambda key=key: net(key), fill))
        out.append((case_name(key, count) + PER_IMAGE, lambda key=key: net(key, True), fill))
    return out
