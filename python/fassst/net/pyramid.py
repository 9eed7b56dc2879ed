"""Pyramid mask layers (paper s3.3): P1, P2, P3 at strides 8, 16, 32, each D channels.

Reading: a lateral 1x1 conv + BN + ReLU and a 3x3 conv + BN + ReLU on the last backbone stage
of each stride (geometry.PYRAMID_STAGES); the paper names no top-down path, so there is none.
BN because the frozen backbone's stage outputs are unnormalised (hundreds at S3/S5): without it
the ROI features reaching the tail are as large, and the mask logits saturate.
"""
from fassst.net.blocks import conv_bn_relu
from fassst.net.geometry import PYRAMID_STAGES


def pyramid(ns, stages, cfg, phase):
    """stages: {stage index: top}. Returns [P1, P2, P3]."""
    levels = []
    for k, stage in enumerate(PYRAMID_STAGES, start=1):
        lateral = conv_bn_relu(ns, f"p{k}/lateral", stages[stage], cfg.mask_dim, 1, 1, phase)
        levels.append(conv_bn_relu(ns, f"p{k}/conv", lateral, cfg.mask_dim, 3, 1, phase))
    return levels
