"""Runs a trained FASSST deploy net in Caffe on photos: letterbox in, instances in photo pixels out.

The deploy net ends in IAMDecode -> ROIAlign -> RFF -> tail -> Sigmoid; its `rois` blob holds
the kept slots' boxes (input pixels), `scores`, `labels` and `masks` (R, 1, M, M) the rest.
Letterbox, paste-back and the 0.5 mask threshold are LetterboxPredictor's (shared with the ONNX
backend, onnx_predictor.py). No NMS (the paper's point). Weights that do not fit the config are
refused before Caffe sees them (net/weights_fit.py).
"""
import dataclasses
import os

import caffe

from fassst.errors import MissingFileError
from fassst.inference.letterbox_predictor import LetterboxPredictor
from fassst.net.fassst_net import build_net
from fassst.net.load import caffe_net, use_device


class Predictor(LetterboxPredictor):
    def __init__(self, cfg, weights, gpu=None, score_threshold=None, mask_threshold=0.5,
                 net_param=None):
        """net_param: a deploy NetParameter to run instead of build_net(cfg, "deploy"), e.g. the
        BatchNorm-folded one (fassst.net.merge_bn); its blobs must be the deploy net's."""
        if not os.path.isfile(weights):
            raise MissingFileError(f"{weights}: no such caffemodel (train one with scripts/train.py)")
        if score_threshold is not None:
            cfg = dataclasses.replace(cfg, score_threshold=score_threshold)
        use_device(gpu)
        super().__init__(cfg, mask_threshold)
        if net_param is None:
            net_param = build_net(cfg, "deploy")
        # complete: a file cut between two layers, or backbone-only weights, would leave layers
        # with their random fillers and predict noise
        self.net = caffe_net(net_param, caffe.TEST, weights=weights, cfg=cfg, complete=True)

    def forward(self, blob):
        self.net.blobs["data"].data[0] = blob
        self.net.forward()
        b = self.net.blobs
        return dict(boxes=b["rois"].data[:, 1:5].copy(), scores=b["scores"].data.copy(),
                    labels=b["labels"].data.copy(), masks=b["masks"].data[:, 0].copy())
