"""Small NetSpec building blocks shared by the FASSST parts."""
from caffe import layers as L
from caffe import params as P

FROZEN = [dict(lr_mult=0, decay_mult=0)] * 3  # BatchNorm's mean, variance, scale factor
WEIGHT = dict(lr_mult=1, decay_mult=1)
BIAS = dict(lr_mult=2, decay_mult=0)


def conv(ns, name, bottom, num_output, kernel, stride=1, group=1, bias=True, weight_std=None):
    """Convolution with pad k//2 (so a stride-s conv gives ceil(side / s)).

    MSRA init, or Gaussian(weight_std) for prediction layers: those start near zero logits
    (sigmoid 0.5), so the Dice and focal losses begin unsaturated."""
    filler = dict(type="msra") if weight_std is None else dict(type="gaussian", std=weight_std)
    kw = dict(num_output=num_output, kernel_size=kernel, stride=stride, pad=kernel // 2,
              group=group, weight_filler=filler, bias_term=bias)
    if bias:
        kw["bias_filler"] = dict(type="constant", value=0)
    setattr(ns, name, L.Convolution(bottom, param=[WEIGHT, BIAS] if bias else [WEIGHT],
                                    convolution_param=kw))
    return getattr(ns, name)


def bn_scale(ns, name, top, phase):
    """BatchNorm + Scale in place on `top` (layers name/bn, name/scale); "train" uses batch
    statistics, anything else the stored ones."""
    setattr(ns, name + "/bn", L.BatchNorm(top, in_place=True, param=FROZEN,
                                          use_global_stats=(phase != "train")))
    setattr(ns, name + "/scale", L.Scale(top, in_place=True, bias_term=True))


def conv_bn_relu(ns, name, bottom, num_output, kernel, stride, phase, relu=True):
    """Conv (no bias) + BatchNorm + Scale (+ ReLU), in place after the conv, Caffe's BN idiom.

    phase: "train" uses batch statistics; anything else the stored ones.
    """
    top = conv(ns, name, bottom, num_output, kernel, stride, bias=False)
    bn_scale(ns, name, top, phase)
    if relu:
        setattr(ns, name + "/relu", L.ReLU(top, in_place=True))
    return top


def conv_relu(ns, name, bottom, num_output, kernel, stride=1):
    top = conv(ns, name, bottom, num_output, kernel, stride)
    setattr(ns, name + "/relu", L.ReLU(top, in_place=True))
    return top


__all__ = ["conv", "conv_bn_relu", "conv_relu", "P"]
