"""Recomputes the running statistics of the batch-statistics BatchNorm layers ("precise BN").

Caffe keeps an exponential average of each BatchNorm's batch statistics while training
(moving_average_fraction 0.999: a window of about 1000 iterations). On a short fine-tuning run
the weights move a lot inside that window, so at test time the stored statistics describe
features the net no longer computes. Measured on the demo (docs/DESIGN.md, "Training"): mask AP50
on the training images fell from 19.4 at iteration 1000 to 0 at 1950 while the training losses
kept falling. As detectron2's PreciseBN does, this runs the final weights forward over training
batches and stores the exact mean of the batch statistics instead.

Caffe's BatchNorm accumulates `stat = f * stat + batch_stat` and `factor = f * factor + 1`; with
f = 1 from zero it holds the sum and the count, which is what it divides by at test time.
Layers with use_global_stats (the frozen ImageNet backbone) are left as they are.
"""
import caffe
import numpy as np
from tqdm import tqdm

from fassst.engine.train_net import train_net_param
from fassst.net.load import caffe_net


def recompute_bn_stats(cfg, weights, ann, images, out_path, batches=None, seed=0, quiet=False,
                       iam_bn_frozen=False, skip_bad_images=False):
    """Writes `weights` with exact-average BatchNorm statistics to out_path; returns the names
    of the BatchNorm layers it recomputed. batches: forward passes (default: two epochs' worth,
    at least 20, at most 200). iam_bn_frozen: leave the IAM's statistics as they are (a run
    that trained its last stage with them fixed)."""
    proto = train_net_param(cfg, ann, images, seed=seed, workers=0, augment=False,
                            iam_bn_frozen=iam_bn_frozen, skip_bad_images=skip_bad_images)
    names = []
    for layer in proto.layer:
        if layer.type == "BatchNorm" and not layer.batch_norm_param.use_global_stats:
            layer.batch_norm_param.moving_average_fraction = 1.0
            names.append(layer.name)
    net = caffe_net(proto, caffe.TRAIN, weights=weights)
    for name in names:
        for blob in net.params[name]:
            blob.data[...] = 0
    if batches is None:
        data = next(layer for layer in net.layers if layer.type == "Python")
        n_images = data.num_images  # the data layer has the set loaded already
        batches = int(np.clip(2 * -(-n_images // cfg.solver.images_per_pass), 20, 200))
    for _ in tqdm(range(batches), desc="precise BN", unit="batch", disable=quiet):
        net.forward()
    empty = [name for name in names if net.params[name][2].data[0] == 0]
    if empty:
        raise RuntimeError(f"precise BN: {empty} saw no data in {batches} batches (every batch "
                           f"had zero ROIs?): {ann}")
    net.save(out_path)
    return names
