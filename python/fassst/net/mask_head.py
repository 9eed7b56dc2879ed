"""ROI extraction on the pyramid, ROI feature fusion and the mask tail (paper s3.3-3.4).

Tail (reading of "5 conv + 1 deconv"): `tail_convs` conv3x3(D) + BN + ReLU on the fused R, a 2x2
stride-2 deconvolution(D) + BN + ReLU, and a 1x1 conv to one class-agnostic mask logit map; the class
comes from the IAM. 28x28 fused ROIs give 56x56 masks.
"""
from caffe import layers as L

from fassst.net.blocks import WEIGHT, bn_scale, conv, conv_bn_relu


def roi_features(ns, levels, rois, cfg):
    """ROIAlign every ROI on P1, P2, P3 and fuse (RFF), or take R1 alone when cfg.rff is off."""
    ns.r1, ns.r2, ns.r3 = L.PyramidROIAlign(*levels, rois, ntop=3, pyramid_roi_align_param=dict(
        pooled_size=cfg.roi_size, first_stride=8, sampling_ratio=2, aligned=True))
    if cfg.rff:
        ns.rff = L.ROIFeatureFusion(ns.r1, ns.r2, ns.r3)
        return ns.rff
    ns["r23/silence"] = L.Silence(ns.r2, ns.r3, ntop=0)
    return ns.r1


def mask_tail(ns, fused, cfg, phase):
    """(R, D, 4s, 4s) -> mask logits (R, 1, 8s, 8s). BN (statistics over the batch's ROIs in
    training) keeps the tail from driving every mask logit positive, where the Dice loss's
    sigmoid saturates and stops learning (measured: docs/DESIGN.md, "Training")."""
    top = fused
    for i in range(cfg.tail_convs):
        top = conv_bn_relu(ns, f"tail/conv{i + 1}", top, cfg.mask_dim, 3, 1, phase)
    # BN here too: without it one large step can leave every deconv unit negative, the ReLU
    # then passes nothing and the mask logits freeze at the 1x1 conv's bias (box-shaped masks).
    ns["tail/deconv"] = L.Deconvolution(top, param=[WEIGHT], convolution_param=dict(
        num_output=cfg.mask_dim, kernel_size=2, stride=2, weight_filler=dict(type="msra"),
        bias_term=False))
    bn_scale(ns, "tail/deconv", ns["tail/deconv"], phase)
    ns["tail/deconv/relu"] = L.ReLU(ns["tail/deconv"], in_place=True)
    return conv(ns, "mask_logits", ns["tail/deconv"], 1, 1, weight_std=0.001)
