"""Instance Attention Module (paper s3.2): from the head's features E to I, n slots x (4 + C).

Reading (docs/DESIGN.md): `iam_convs` conv3x3 + BN + ReLU of width `iam_dim`, the first one or two
with stride 2 (geometry.iam_plan), an average pooling to the S x S slot grid, and a 1x1 conv
giving 4 + C values per cell: t, l, b, r logits then C class logits. Together with the output
conv that is the paper's 9 conv layers for iam_convs = 8.
"""
import math

from caffe import layers as L
from caffe import params as P

from fassst.net.blocks import conv, conv_bn_relu
from fassst.net.geometry import iam_plan


def iam(ns, bottom, cfg, phase):
    """Returns the IAM output map (N, 4 + C, S, S); slot = y * S + x. phase: "train" normalises
    with batch statistics, anything else ("test", "deploy", "frozen") with the stored ones."""
    downs, pool_kernel, pool_stride = iam_plan(cfg.input_size, cfg.head_depth, cfg.num_slots,
                                                 cfg.backbone)
    # "early": after the last stride-2 conv (or on E when there is none).
    pool_after = min(downs, cfg.iam_convs) if cfg.iam_pool == "early" else cfg.iam_convs
    top = bottom
    for i in range(cfg.iam_convs + 1):
        if i == pool_after and pool_kernel > 1:
            ns["iam/pool"] = L.Pooling(top, pool=P.Pooling.AVE, kernel_size=pool_kernel,
                                       stride=pool_stride)
            top = ns["iam/pool"]
        if i < cfg.iam_convs:
            top = conv_bn_relu(ns, f"iam/conv{i + 1}", top, cfg.iam_dim, 3,
                               stride=2 if i < downs else 1, phase=phase)
    return conv(ns, "iam/out", top, 4 + cfg.num_classes, 1, weight_std=0.01)


def iam_slots(ns, iam_map, cfg):
    """(N, 4 + C, S, S) -> loc logits (N, n, 4) and class logits (N, n, C), slot-major."""
    ns["iam/perm"] = L.Permute(iam_map, permute_param=dict(order=[0, 2, 3, 1]))
    ns["iam/slots"] = L.Reshape(ns["iam/perm"], reshape_param=dict(
        shape=dict(dim=[0, cfg.num_slots, 4 + cfg.num_classes])))
    ns["iam/loc"], ns["iam/cls"] = L.Slice(ns["iam/slots"], ntop=2,
                                           slice_param=dict(axis=2, slice_point=[4]))
    return ns["iam/loc"], ns["iam/cls"]


def set_class_prior(net, cfg):
    """Sets the class-logit biases of `iam/out` to -log((1 - p) / p), p = cfg.cls_prior
    (RetinaNet's prior: every class starts at probability p instead of 0.5, so the n x C
    negatives do not swamp the first iterations); the box biases stay 0. No-op when p is 0."""
    if cfg.cls_prior > 0:
        net.params["iam/out"][1].data[4:] = -math.log((1 - cfg.cls_prior) / cfg.cls_prior)
