"""The backbone stages, by the MobileNetV2 stage index the generator uses, for a config's backbone.

mobilenet_v2: the stages S1..S7 themselves.
resnet50_fpn: the FPN outputs stand in for the indices the generator taps, by stride
(geometry.RESNET50_FPN_STAGES): pyramid 3 -> P3 (stride 8), 5 -> P4 (16), 7 -> P5 (32); the IAM's
E at head depth 4 or 5 -> P4 (16) and 6 -> P5 (32), the strides of S4, S5 and S6. Head depths 4
and 5 therefore build the same net with this backbone.
"""
import caffe

from fassst.net import resnet50_fpn as r50
from fassst.net.mobilenet_v2 import STAGE_ENDS, mobilenet_v2
from fassst.net.resnet50_fpn import resnet50_fpn

RESNET50_FPN_LEVELS = {3: "P3", 4: "P4", 5: "P4", 6: "P5", 7: "P5"}


def stage_blob_names(cfg):
    """Blob names of the backbone's stage outputs, input side first (the blobs a run watches)."""
    if cfg.backbone == "mobilenet_v2":
        return tuple(STAGE_ENDS.values())
    return tuple(blob for blob, _, _ in r50.STAGES.values()) + tuple(
        f"fpn.layer_blocks.{i}" for i in range(len(r50.LEVELS)))


def lr_mults(cfg, stage):
    """(conv, BN affine) learning-rate multipliers of backbone stage 1..7 under cfg's recipe:
    stages up to freeze_backbone_stages are frozen, the rest train at backbone_lr_mult (the
    affine at 0 when freeze_backbone_affine), the stages after the head's E (the main body,
    which only P3 reads) at backbone_body_lr_mult when that is >= 0."""
    if stage <= cfg.freeze_backbone_stages:
        return 0, 0
    m = cfg.backbone_lr_mult
    if stage > cfg.head_depth and cfg.backbone_body_lr_mult >= 0:
        m = cfg.backbone_body_lr_mult
    return m, 0 if cfg.freeze_backbone_affine else m


def stages(ns, data, cfg, phase):
    """{stage index: top}: 1..7 for mobilenet_v2, 3..7 for resnet50_fpn.

    Backbone BatchNorm is frozen in training when cfg.freeze_backbone_bn (batches of 8 images
    are too small for its statistics; reading, standard for detection fine-tuning).
    """
    caffe_phase = caffe.TRAIN if phase == "train" else caffe.TEST
    if cfg.backbone == "mobilenet_v2":
        named = mobilenet_v2(ns, data, caffe_phase, freeze_bn=cfg.freeze_backbone_bn,
                             lr_mults=lambda stage: lr_mults(cfg, stage),
                             fold_bn=cfg.fold_backbone_bn)
        return {int(k[1:]): top for k, top in named.items()}
    if cfg.backbone == "resnet50_fpn":
        _, levels = resnet50_fpn(ns, data, caffe_phase, freeze_bn=cfg.freeze_backbone_bn)
        return {k: levels[p] for k, p in RESNET50_FPN_LEVELS.items()}
    raise ValueError(f"{cfg.name}: backbone must be mobilenet_v2 or resnet50_fpn, "
                     f"got {cfg.backbone!r}")
