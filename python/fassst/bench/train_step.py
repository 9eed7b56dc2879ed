"""The train net's forward + backward (a solver step less the data layer and the update), with
the depthwise convs as DepthwiseConvolution and as Caffe's grouped Convolution, taking turns.
Inputs are synthetic but valid: noise images, ROIs inside the input, binary mask targets."""
import statistics
import time

import caffe
import numpy as np

from fassst.net.depthwise import as_stock
from fassst.net.fassst_net import TRAIN_TOPS, build_net
from fassst.net.load import caffe_net


def _fill(net, cfg, rng):
    side = cfg.input_size
    blobs = {k: net.blobs[k].data for k in TRAIN_TOPS}
    blobs["data"][...] = rng.standard_normal(blobs["data"].shape)
    cls = blobs["cls_target"]
    cls[...] = 0
    n_img, n_slots = cls.shape[:2]
    for b in range(n_img):
        for s in rng.choice(n_slots, size=min(4, n_slots), replace=False):
            cls[b, s, rng.integers(cls.shape[2])] = 1
    blobs["loc_target"][...] = rng.uniform(0.2, 0.8, blobs["loc_target"].shape)
    blobs["loc_weight"][...] = (cls.max(axis=2, keepdims=True) > 0)
    rois = blobs["gt_rois"]
    xy = rng.uniform(0, side * 0.6, (len(rois), 2))
    wh = rng.uniform(16, side * 0.4, (len(rois), 2))
    rois[:, 0] = np.arange(len(rois)) % n_img
    rois[:, 1:3], rois[:, 3:5] = xy, xy + wh
    blobs["mask_target"][...] = rng.uniform(size=blobs["mask_target"].shape) > 0.5


def time_train_step(cfg, warmup=2, repeats=10, seed=0):
    """{"stock": ms, "layer": ms}: median forward + backward of the train net (Input tops)."""
    caffe.set_mode_cpu()
    caffe.set_random_seed(seed)
    proto = build_net(cfg, "train")
    nets = {"stock": caffe_net(as_stock(proto), caffe.TRAIN),
            "layer": caffe_net(proto, caffe.TRAIN)}
    for name, net in nets.items():
        _fill(net, cfg, np.random.default_rng(seed))
    times = {k: [] for k in nets}
    for i in range(warmup + repeats):
        for name, net in nets.items():
            t0 = time.perf_counter()
            net.forward()
            net.backward()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}
