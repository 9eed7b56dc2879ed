"""Runs a trained FASSST deploy net on photos: letterbox in, instances in photo pixels out.

The deploy net ends in IAMDecode -> ROIAlign -> RFF -> tail -> Sigmoid; its `rois` blob holds
the kept slots' boxes (input pixels), `scores`, `labels` and `masks` (R, 1, M, M) the rest.
Masks are pasted back through the letterbox and thresholded at 0.5. No NMS (the paper's point).
"""
import dataclasses
import os

import caffe
import numpy as np

from fassst.data import letterbox
from fassst.net.fassst_net import build_net
from fassst.net.load import caffe_net


class Predictor:
    def __init__(self, cfg, weights, gpu=None, score_threshold=None, mask_threshold=0.5,
                 net_param=None):
        """net_param: a deploy NetParameter to run instead of build_net(cfg, "deploy"), e.g. the
        BatchNorm-folded one (fassst.deploy.merge_bn); its blobs must be the deploy net's."""
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"{weights}: no such caffemodel (train one with scripts/train.py)")
        if score_threshold is not None:
            cfg = dataclasses.replace(cfg, score_threshold=score_threshold)
        if gpu is None:
            caffe.set_mode_cpu()
        else:
            caffe.set_device(gpu)
            caffe.set_mode_gpu()
        if net_param is None:
            net_param = build_net(cfg, "deploy")
        self.net = caffe_net(net_param, caffe.TEST, weights=weights)
        self.cfg, self.mask_threshold = cfg, mask_threshold

    def __call__(self, image_rgb):
        """(H, W, 3) uint8 RGB -> dict(boxes (K, 4) xyxy, scores, labels, masks (K, H, W) bool)."""
        lb = self.preprocess(image_rgb)
        self.net.forward()
        return self.postprocess(lb)

    def preprocess(self, image_rgb):
        """Letterboxes the photo into the input blob; returns its Letterbox."""
        h, w = image_rgb.shape[:2]
        lb = letterbox.fit(h, w, self.cfg.input_size)
        self.net.blobs["data"].data[0] = letterbox.to_blob(letterbox.image_to_input(image_rgb, lb))
        return lb

    def postprocess(self, lb):
        """The forward's tops -> instances in photo pixels (the dict __call__ returns)."""
        rois = self.net.blobs["rois"].data.copy()
        masks = self.net.blobs["masks"].data
        pasted = np.zeros((len(rois), lb.height, lb.width), bool)
        for i in range(len(rois)):
            pasted[i] = letterbox.paste_roi_mask(masks[i, 0], rois[i, 1:5], lb) >= self.mask_threshold
        return dict(boxes=lb.boxes_to_original(rois[:, 1:5]) if len(rois) else np.zeros((0, 4), np.float32),
                    scores=self.net.blobs["scores"].data.astype(np.float32).copy(),
                    labels=self.net.blobs["labels"].data.astype(int).copy(), masks=pasted)
