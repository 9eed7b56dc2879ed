"""Stock Caffe layers as ONNX nodes, one function per layer type.

Each converter is `f(g, layer, weights)`: it reads its bottoms through `g.value`, writes its
tops through `g.set_value` (with a (rank, channels) hint where it knows them; the walker copies
the first bottom's hint otherwise) and takes its blobs from `weights` (float32 arrays, the
caffemodel's order). Layouts agree with Caffe's: NCHW, convolution weights (Cout, Cin / g, kh,
kw), deconvolution weights (Cin, Cout / g, kh, kw) = ONNX Conv / ConvTranspose's.
"""
import numpy as np

from fassst.export.graph import ExportError


def _blobs(layer, weights, counts):
    """The layer's blobs, checked to be one of `counts` in number."""
    if weights is None:
        raise ExportError(f"layer {layer.name} ({layer.type}): no weights for it in the caffemodel")
    if len(weights) not in counts:
        raise ExportError(f"layer {layer.name} ({layer.type}): {len(weights)} blobs, expected "
                          f"{' or '.join(map(str, counts))}")
    return weights


def _pair(repeated, h, w, has_hw, default, what, layer):
    """A 2-D setting from Caffe's `x` (repeated, 0, 1 or 2 values) or its `x_h`/`x_w` pair."""
    if has_hw:
        return [int(h), int(w)]
    values = list(repeated)
    if len(values) > 2:
        raise ExportError(f"layer {layer.name}: {what} has {len(values)} values; only 2-D is exported")
    if not values:
        return [default, default]
    return [int(values[0])] * 2 if len(values) == 1 else [int(v) for v in values]


def _conv_geometry(layer):
    p = layer.convolution_param
    if p.axis != 1:
        raise ExportError(f"layer {layer.name}: convolution axis {p.axis}; only axis 1 is exported")
    kernel = _pair(p.kernel_size, p.kernel_h, p.kernel_w, p.HasField("kernel_h"), None, "kernel_size", layer)
    pad = _pair(p.pad, p.pad_h, p.pad_w, p.HasField("pad_h"), 0, "pad", layer)
    stride = _pair(p.stride, p.stride_h, p.stride_w, p.HasField("stride_h"), 1, "stride", layer)
    dilation = _pair(p.dilation, 0, 0, False, 1, "dilation", layer)
    return dict(kernel_shape=kernel, pads=pad + pad, strides=stride, dilations=dilation)


def _conv_inputs(g, layer, weights, weight_axis_out):
    """Conv/ConvTranspose inputs (x, W[, B]), the blob shapes checked against num_output."""
    p = layer.convolution_param
    blobs = _blobs(layer, weights, (2,) if p.bias_term else (1,))
    w = blobs[0]
    if w.ndim != 4:
        raise ExportError(f"layer {layer.name}: weights of shape {w.shape}, expected 4-D")
    groups = p.group if weight_axis_out == 1 else 1  # deconvolution stores Cout / g on axis 1
    if w.shape[weight_axis_out] * groups != p.num_output:
        raise ExportError(f"layer {layer.name}: weights {w.shape} do not give num_output "
                          f"{p.num_output}")
    inputs = [g.value(layer.bottom[0], layer.name), g.const(layer.name + "/W", w)]
    if p.bias_term:
        inputs.append(g.const(layer.name + "/B", blobs[1].reshape(-1)))
    return inputs


def convolution(g, layer, weights, group=None):
    p = layer.convolution_param
    out = g.node("Conv", _conv_inputs(g, layer, weights, 0), layer.name,
                 group=int(group or p.group), **_conv_geometry(layer))
    g.set_value(layer.top[0], out, (4, p.num_output))


def depthwise_convolution(g, layer, weights):
    """DepthwiseConvolution (a depthwise conv layer type for the GPU build): Convolution with
    group = input channels."""
    rank, channels = g.hints.get(layer.bottom[0], (None, None))
    if channels is None:
        raise ExportError(f"layer {layer.name}: input channels of {layer.bottom[0]!r} unknown, "
                          f"so the depthwise group cannot be set")
    if layer.convolution_param.group not in (0, 1, channels):
        raise ExportError(f"layer {layer.name}: DepthwiseConvolution with group "
                          f"{layer.convolution_param.group} on {channels} channels")
    convolution(g, layer, weights, group=channels)


def deconvolution(g, layer, weights):
    p = layer.convolution_param
    out = g.node("ConvTranspose", _conv_inputs(g, layer, weights, 1), layer.name,
                 group=int(p.group), **_conv_geometry(layer))
    g.set_value(layer.top[0], out, (4, p.num_output))


def batch_norm(g, layer, weights):
    """Inference BatchNorm: (x - mean) / sqrt(var + eps), Caffe's statistics divided by blob 2."""
    p = layer.batch_norm_param
    if p.HasField("use_global_stats") and not p.use_global_stats:
        raise ExportError(f"layer {layer.name}: BatchNorm with use_global_stats: false normalises "
                          f"with batch statistics; export a deploy (TEST) net")
    mean, var, factor = _blobs(layer, weights, (3,))
    f = float(factor.ravel()[0])
    norm = 0.0 if f == 0 else 1.0 / f
    mean = (mean.astype(np.float64) * norm).astype(np.float32)
    var = (var.astype(np.float64) * norm).astype(np.float32)
    out = g.node("BatchNormalization", [
        g.value(layer.bottom[0], layer.name), g.f32(layer.name + "/gamma", np.ones_like(mean)),
        g.f32(layer.name + "/beta", np.zeros_like(mean)), g.f32(layer.name + "/mean", mean),
        g.f32(layer.name + "/var", var)], layer.name, epsilon=float(p.eps))
    g.set_value(layer.top[0], out)


def scale(g, layer, weights):
    """Per-channel y = gamma x (+ beta): Mul (+ Add) with (C, 1, 1) constants."""
    p = layer.scale_param
    if len(layer.bottom) != 1 or p.axis != 1 or p.num_axes != 1:
        raise ExportError(f"layer {layer.name}: only a one-bottom, per-channel Scale (axis 1, "
                          f"num_axes 1) is exported")
    blobs = _blobs(layer, weights, (2,) if p.bias_term else (1,))
    rank = g.hints.get(layer.bottom[0], (4, None))[0] or 4
    shape = (-1,) + (1,) * (rank - 2)
    out = g.node("Mul", [g.value(layer.bottom[0], layer.name),
                         g.f32(layer.name + "/gamma", blobs[0].reshape(shape))], layer.name)
    if p.bias_term:
        out = g.node("Add", [out, g.f32(layer.name + "/beta", blobs[1].reshape(shape))],
                     layer.name + "/bias")
    g.set_value(layer.top[0], out)


def relu(g, layer, weights):
    x = g.value(layer.bottom[0], layer.name)
    slope = layer.relu_param.negative_slope
    out = (g.node("LeakyRelu", [x], layer.name, alpha=float(slope)) if slope
           else g.node("Relu", [x], layer.name))
    g.set_value(layer.top[0], out)


def relu6(g, layer, weights):
    """The fork's ReLU6: min(max(x, 0), threshold), as Clip(0, threshold)."""
    p = layer.relu6_param
    if p.negative_slope:
        raise ExportError(f"layer {layer.name}: ReLU6 with negative_slope {p.negative_slope} "
                          f"is not a Clip; not exported")
    out = g.node("Clip", [g.value(layer.bottom[0], layer.name), g.f32(layer.name + "/min", 0.0),
                          g.f32(layer.name + "/max", p.threshold)], layer.name)
    g.set_value(layer.top[0], out)


def sigmoid(g, layer, weights):
    g.set_value(layer.top[0], g.node("Sigmoid", [g.value(layer.bottom[0], layer.name)], layer.name))


def eltwise(g, layer, weights):
    """SUM (with optional coefficients) as Add/Mul, PROD as Mul, MAX as Max."""
    p = layer.eltwise_param
    xs = [g.value(b, layer.name) for b in layer.bottom]
    if p.operation == p.SUM:
        if len(p.coeff) not in (0, len(xs)):
            raise ExportError(f"layer {layer.name}: {len(p.coeff)} coefficients for {len(xs)} bottoms")
        if p.coeff and any(c != 1 for c in p.coeff):
            xs = [x if c == 1 else g.node("Mul", [x, g.f32(f"{layer.name}/coeff{i}", c)],
                                          f"{layer.name}/coeff{i}")
                  for i, (x, c) in enumerate(zip(xs, p.coeff))]
        op = "Add"
    else:
        op = "Mul" if p.operation == p.PROD else "Max"
    out = xs[0]
    for i, x in enumerate(xs[1:]):
        out = g.node(op, [out, x], layer.name if i == len(xs) - 2 else f"{layer.name}/{i}")
    g.set_value(layer.top[0], out)


def pooling(g, layer, weights):
    """MAX/AVE pooling. Caffe rounds the output size up by default (ceil_mode: true in this fork)
    and, with padding, drops a last window that would start in the padding; it divides AVE sums
    by the window clipped to the padded map. ONNX agrees exactly without padding (AVE:
    count_include_pad 0 divides by the in-map count, which is Caffe's divisor when pad = 0) and
    for MAX in floor mode; other combinations are refused rather than approximated."""
    p = layer.pooling_param
    x = g.value(layer.bottom[0], layer.name)
    if p.pool not in (p.MAX, p.AVE):
        raise ExportError(f"layer {layer.name}: STOCHASTIC pooling has no ONNX operator")
    if p.global_pooling:
        out = g.node("GlobalMaxPool" if p.pool == p.MAX else "GlobalAveragePool", [x], layer.name)
        g.set_value(layer.top[0], out)
        return
    if not (p.HasField("kernel_size") or p.HasField("kernel_h")):
        raise ExportError(f"layer {layer.name}: pooling without kernel_size or global_pooling")
    kernel = _pair([p.kernel_size] if p.HasField("kernel_size") else [], p.kernel_h, p.kernel_w,
                   p.HasField("kernel_h"), None, "kernel_size", layer)
    pad = _pair([p.pad], p.pad_h, p.pad_w, p.HasField("pad_h"), 0, "pad", layer)
    stride = _pair([p.stride], p.stride_h, p.stride_w, p.HasField("stride_h"), 1, "stride", layer)
    if any(pad) and (p.ceil_mode or p.pool == p.AVE):
        raise ExportError(f"layer {layer.name}: {'AVE' if p.pool == p.AVE else 'MAX'} pooling with "
                          f"pad {pad}{' in ceil mode' if p.ceil_mode else ''}: Caffe's window "
                          f"clipping differs from ONNX's; not exported")
    attrs = dict(kernel_shape=kernel, pads=pad + pad, strides=stride, ceil_mode=int(p.ceil_mode))
    if p.pool == p.AVE:
        out = g.node("AveragePool", [x], layer.name, count_include_pad=0, **attrs)
    else:
        out = g.node("MaxPool", [x], layer.name, **attrs)
    g.set_value(layer.top[0], out)


def input_layer(g, layer, weights, names=None):
    shapes = list(layer.input_param.shape)
    if len(shapes) not in (1, len(layer.top)):
        raise ExportError(f"layer {layer.name}: {len(shapes)} shapes for {len(layer.top)} tops")
    for i, top in enumerate(layer.top):
        dims = list(shapes[min(i, len(shapes) - 1)].dim)
        name = g.add_input((names or {}).get(top, top), dims)
        g.set_value(top, name, (len(dims), dims[1] if len(dims) > 1 else None))


def split(g, layer, weights):
    for top in layer.top:
        g.set_value(top, g.value(layer.bottom[0], layer.name), g.hints.get(layer.bottom[0]))


def silence(g, layer, weights):
    for b in layer.bottom:
        g.value(b, layer.name)  # the bottoms must exist; nothing is produced


CONVERTERS = {
    "Input": input_layer,
    "Convolution": convolution,
    "DepthwiseConvolution": depthwise_convolution,
    "Deconvolution": deconvolution,
    "BatchNorm": batch_norm,
    "Scale": scale,
    "ReLU": relu,
    "ReLU6": relu6,
    "Sigmoid": sigmoid,
    "Eltwise": eltwise,
    "Pooling": pooling,
    "Split": split,
    "Silence": silence,
}
