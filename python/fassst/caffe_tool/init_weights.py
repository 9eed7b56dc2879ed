"""A config's whole train net at the start of training, as one caffemodel, for Caffe's own
`caffe train -weights` (README, "Training with Caffe's own tool").

It holds what scripts/train.py starts a run from: the backbone weights (the ImageNet MobileNetV2
or a given caffemodel), every other layer from its filler drawn at the run's seed (Caffe's RNG
seeded as the trainer's solver seeds it, the layers created in the same order), and the IAM's
class biases at the prior (net/iam.set_class_prior). The prior cannot live in the prototxt: a
Caffe filler gives every channel of a bias the same value, and `iam/out` holds the 4 box biases
(0) and the C class biases (-log((1 - p) / p)) in one blob. Started from this file with the same
seed, `caffe train` and scripts/train.py compute the same first iterations
(tests/test_caffe_train.py).

Results are cached in <cache>/weights/init/ under a name that hashes everything they depend on.
"""
import hashlib
import os
import tempfile

import caffe
from fassst.errors import MissingFileError
from fassst.net.fassst_net import build_net
from fassst.net.iam import set_class_prior
from fassst.net.load import caffe_net
from fassst.registry import cache_root, sha256_of
from fassst.weights.convert_mobilenet_v2 import imagenet_weights

VERSION = 1  # bump when what goes into the file changes


def _key(cfg, net_text, seed, weights):
    h = hashlib.sha256(f"{VERSION}\n{seed}\n{cfg.cls_prior}\n".encode())
    h.update(net_text.encode())
    h.update((sha256_of(weights) if weights else "none").encode())
    return h.hexdigest()[:16]


def init_weights(cfg, seed=0, weights="imagenet", out=None, log=print):
    """Path of the caffemodel (written to `out`, else cached); weights: "imagenet", a
    .caffemodel path or None (every layer from its filler)."""
    if weights == "imagenet":
        weights = imagenet_weights(cfg, log=log)
    if weights and not os.path.isfile(weights):
        raise MissingFileError(f"{weights}: no such caffemodel")
    net_param = build_net(cfg, "train", batch_size=1)  # Input layers: no data set needed
    if out is None:
        folder = os.path.join(cache_root(), "weights", "init")
        out = os.path.join(folder, f"{cfg.name}_seed{seed}_{_key(cfg, str(net_param), seed, weights)}"
                                   ".caffemodel")
        if os.path.isfile(out):
            return out
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    # Solver::Init seeds Caffe's RNG, then builds the train net: the fillers draw in layer order,
    # and the data layer (here Input layers) draws nothing.
    caffe.set_random_seed(seed)
    net = caffe_net(net_param, caffe.TRAIN, weights=weights, cfg=cfg)
    set_class_prior(net, cfg)
    fd, tmp = tempfile.mkstemp(suffix=".caffemodel", dir=os.path.dirname(os.path.abspath(out)))
    os.close(fd)
    try:
        net.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log(f"wrote {out}")
    return out
