"""Composes a FASSST net from its parts for one phase: train, test or deploy.

    data -> backbone stages S1..S7 -> E = S_head_depth -> IAM -> I (N, 4 + C, S, S)
                                   -> pyramid P1, P2, P3 (S3, S5, S7)
    (resnet50_fpn: FPN outputs stand in for the stages by stride, see backbone.py)
    train:  ROIs = ground-truth boxes of assigned slots; losses Lm, Ll, Lc
    test/deploy: ROIs = IAMDecode(I); masks = sigmoid(tail(RFF(ROIAlign(P, ROIs))))

Without a data layer (the generated prototxt, tests) the train net takes its blobs from Input
layers of the right shapes (max_train_rois ROIs); `data_layer` replaces them with one layer
producing the same tops (train_tops.py: the contract between the two).
"""
import caffe
from caffe import layers as L, params as P

from fassst.net import backbone as backbone_lib
from fassst.net.geometry import grid_side
from fassst.net.iam import iam, iam_slots
from fassst.net.losses import losses
from fassst.net.mask_head import mask_tail, roi_features
from fassst.net.pyramid import pyramid
from fassst.net.train_tops import TRAIN_TOPS, train_input_shapes

PHASES = ("train", "test", "deploy")


def _inputs(ns, names, shapes):
    for name, shape in zip(names, shapes):
        ns[name] = L.Input(input_param=dict(shape=dict(dim=list(shape))))
    return [ns[name] for name in names]


def build_net(cfg, phase, batch_size=None, data_layer=None, iam_bn_frozen=False):
    """NetParameter for `phase`. batch_size defaults to the solver's per-iteration share
    (train) or 1 (test/deploy). data_layer: optional callable(ns) -> dict of TRAIN_TOPS tops.
    iam_bn_frozen: the train net's IAM BatchNorm uses its stored statistics (the second stage
    of a run with solver.freeze_iam_bn_at, engine/trainer.py); test and deploy always do."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    grid_side(cfg.num_slots)
    ns = caffe.NetSpec()
    if phase == "train":
        batch = batch_size or cfg.solver.images_per_pass
        if data_layer is not None:
            tops = data_layer(ns)
        else:
            tops = dict(zip(TRAIN_TOPS, _inputs(ns, TRAIN_TOPS, train_input_shapes(cfg, batch))))
        data = tops["data"]
    else:
        data = _inputs(ns, ["data"], [(batch_size or 1, 3, cfg.input_size, cfg.input_size)])[0]

    stages = backbone_lib.stages(ns, data, cfg, phase)
    iam_map = iam(ns, stages[cfg.head_depth], cfg, "frozen" if iam_bn_frozen else phase)
    levels = pyramid(ns, stages, cfg, phase)

    if phase == "train":
        loc_logits, cls_logits = iam_slots(ns, iam_map, cfg)
        mask_logits = mask_tail(ns, roi_features(ns, levels, tops["gt_rois"], cfg), cfg, phase)
        losses(ns, mask_logits, loc_logits, cls_logits, tops, cfg)
    else:
        decode = dict(num_classes=cfg.num_classes, score_threshold=cfg.score_threshold,
                      top_k=cfg.num_slots, image_width=cfg.input_size, image_height=cfg.input_size)
        if cfg.box_coding == "cell":  # only then: the image-coded nets stay as they were
            decode["box_coding"] = P.IAMDecode.CELL
        ns.rois, ns.scores, ns.labels = L.IAMDecode(iam_map, ntop=3, iam_decode_param=decode)
        mask_logits = mask_tail(ns, roi_features(ns, levels, ns.rois, cfg), cfg, phase)
        ns.masks = L.Sigmoid(mask_logits)
    proto = ns.to_proto()
    proto.name = f"{cfg.name}_{phase}"
    return proto
