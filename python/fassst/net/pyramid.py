"""Pyramid mask layers (paper s3.3): P1, P2, P3 at strides 8, 16, 32, each D channels.

Reading: a lateral 1x1 conv + ReLU and a 3x3 conv + ReLU on the last backbone stage of each
stride (geometry.PYRAMID_STAGES); the paper names no top-down path, so there is none.
"""
from fassst.net.blocks import conv_relu
from fassst.net.geometry import PYRAMID_STAGES


def pyramid(ns, stages, cfg):
    """stages: {stage index: top}. Returns [P1, P2, P3]."""
    levels = []
    for k, stage in enumerate(PYRAMID_STAGES, start=1):
        lateral = conv_relu(ns, f"p{k}/lateral", stages[stage], cfg.mask_dim, 1)
        levels.append(conv_relu(ns, f"p{k}/conv", lateral, cfg.mask_dim, 3))
    return levels
