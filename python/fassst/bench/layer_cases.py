"""Paper-size benchmark nets for the IAM decode, pyramid ROIAlign and loss layers.

Sizes (FASSST-416, COCO): batch 1 image, n = 36 slots, C = 80, D = 256 channels, P1/P2/P3
52/26/13, 36 ROIs, masks 56 x 56.
"""
import caffe
import numpy as np
from caffe import layers as L

N, SLOTS, C, D, ROIS, SIZE = 1, 36, 80, 256, 36, 416


def _input(ns, name, shape):
    ns[name] = L.Input(shape=dict(dim=list(shape)))
    return ns[name]


def iam_decode():
    ns = caffe.NetSpec()
    iam = _input(ns, "iam", (N, 4 + C, 6, 6))
    ns.rois, ns.scores, ns.labels = L.IAMDecode(iam, ntop=3, iam_decode_param=dict(
        num_classes=C, score_threshold=0.0, top_k=SLOTS))
    return ns.to_proto()


def pyramid_roi_align():
    ns = caffe.NetSpec()
    levels = [_input(ns, f"p{k}", (N, D, s, s)) for k, s in ((1, 52), (2, 26), (3, 13))]
    rois = _input(ns, "rois", (ROIS, 5))
    ns.r1, ns.r2, ns.r3 = L.PyramidROIAlign(*levels, rois, ntop=3)
    return ns.to_proto()


def dice_loss():
    ns = caffe.NetSpec()
    ns.loss = L.DiceLoss(_input(ns, "logits", (ROIS, 1, 56, 56)), _input(ns, "target", (ROIS, 1, 56, 56)))
    return ns.to_proto()


def focal_loss():
    ns = caffe.NetSpec()
    ns.loss = L.SigmoidFocalLoss(_input(ns, "logits", (8, SLOTS, C)), _input(ns, "target", (8, SLOTS, C)),
                                 sigmoid_focal_loss_param=dict(normalization=4))  # POSITIVE_TARGETS
    return ns.to_proto()


def fill(net, seed=0):
    rng = np.random.default_rng(seed)
    for name, blob in net.blobs.items():
        if name == "rois":
            xy = rng.uniform(0, SIZE * 0.7, (ROIS, 2))
            wh = rng.uniform(8, SIZE * 0.3, (ROIS, 2))
            blob.data[...] = np.column_stack([np.zeros(ROIS), xy, xy + wh])
        elif name == "target":
            blob.data[...] = rng.uniform(size=blob.shape) > 0.9
        elif name in ("iam", "logits") or name.startswith("p"):
            blob.data[...] = rng.standard_normal(blob.shape)
