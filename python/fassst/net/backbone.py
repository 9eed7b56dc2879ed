"""The backbone stages S1..S7 (name -> top) for a config's backbone choice."""
import caffe

from fassst.net.mobilenet_v2 import mobilenet_v2


def stages(ns, data, cfg, phase):
    """{1: S1 top, ..., 7: S7 top}. Backbone BatchNorm is frozen in training (batches of 8
    images are too small for its statistics; reading, standard for detection fine-tuning)."""
    if cfg.backbone == "mobilenet_v2":
        named = mobilenet_v2(ns, data, caffe.TRAIN if phase == "train" else caffe.TEST,
                             freeze_bn=cfg.freeze_backbone_bn)
        return {int(k[1:]): top for k, top in named.items()}
    raise NotImplementedError(
        f"{cfg.name}: backbone {cfg.backbone!r} is not built yet (ResNet-50-FPN for Table 6 is "
        f"planned); use mobilenet_v2")
