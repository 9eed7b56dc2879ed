"""FassstDataLayer: the train net's Python data layer, and `data_layer_tops` to put it in a net.

    layer { type: "Python" top: "data" top: "cls_target" top: "loc_target" top: "loc_weight"
            top: "gt_rois" top: "mask_target"
            python_param { module: "fassst.data.layer" layer: "FassstDataLayer"
                           param_str: '{"ann": "...", "images": "...", ...}' } }

Tops (fassst.net.train_tops.TRAIN_TOPS order), B images, n slots, C classes, R assigned
instances in the batch (varies; may be 0), M = 8 * roi_size:
    data (B, 3, S, S)  letterboxed RGB, ImageNet-normalised
    cls_target (B, n, C)  one-hot at assigned slots   loc_target (B, n, 4)  (t, l, b, r)
    loc_weight (B, n, 4)  1 at assigned slots         gt_rois (R, 5)  (batch, x1, y1, x2, y2)
    mask_target (R, 1, M, M)  in [0, 1], gt_rois' order
Settings: fassst.data.params (param_str JSON; ann and images may name environment variables,
read at setup). Batches come from fassst.data.prefetch; counts of skipped images and dropped
instances are logged (logger "fassst.data") as each epoch completes.

Under the `caffe` tool (Python embedded in another program), the project's own errors (a data
set that is missing or contradicts the net, an unset variable) end the process with one
`error: ...` line and status 1, as the scripts do; the tool would print a traceback.
"""
import functools
import json
import logging
import os
import sys
from collections import Counter

import caffe
from caffe import layers as L

from fassst.data.letterbox import to_blob
from fassst.data.params import parse_params, resolve_env
from fassst.data.pipeline import COUNT_KEYS
from fassst.data.prefetch import Prefetcher
from fassst.errors import FassstError
from fassst.net.geometry import roi_sides
from fassst.net.train_tops import TRAIN_TOPS

log = logging.getLogger("fassst.data")


def _visible_log():
    """Epoch counts are the point of this log: show them on stderr unless the application
    configured logging itself."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _embedded():
    """True when the running program is not a Python interpreter (the `caffe` tool): there
    sys.executable is a guess and /proc/self/exe is the program that embeds Python."""
    try:
        return os.path.realpath("/proc/self/exe") != os.path.realpath(sys.executable or "/")
    except OSError:
        return False


def _user_errors_end_process(method):
    """Under the `caffe` tool, a FassstError becomes `error: ...` and exit status 1: the tool
    prints Python exceptions with PyErr_Print, which exits quietly on SystemExit."""
    @functools.wraps(method)
    def wrapped(self, *args):
        try:
            return method(self, *args)
        except FassstError as e:
            if not _embedded():
                raise
            print(f"error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
    return wrapped


class FassstDataLayer(caffe.Layer):

    @_user_errors_end_process
    def setup(self, bottom, top):
        self.settings = resolve_env(parse_params(self.param_str))
        if bottom:
            raise ValueError(f"FassstDataLayer takes no bottoms, got {len(bottom)}")
        if len(top) != len(TRAIN_TOPS):
            raise ValueError(f"FassstDataLayer has {len(TRAIN_TOPS)} tops {TRAIN_TOPS}, "
                             f"got {len(top)}")
        _visible_log()
        s = self.settings
        self.epoch_counts = {}   # epoch -> Counter (COUNT_KEYS), completed epochs included
        self.logged_epochs = []  # epochs whose counts were logged, in order
        self._batches = Prefetcher(s, s["workers"])
        # Batch 0 is waited for here, so that a bad setting or data set (class count, the first
        # unreadable image) fails at net construction, also with worker processes.
        self._next = next(self._batches)
        self.num_images = self._next.dataset_size  # for callers that size passes by epochs
        b, n, c, side = s["batch_size"], s["num_slots"], s["num_classes"], s["input_size"]
        m = roi_sides(s["roi_size"])[3]
        r = max(len(self._next.gt_rois), 1)
        shapes = [(b, 3, side, side), (b, n, c), (b, n, 4), (b, n, 4), (r, 5), (r, 1, m, m)]
        for i, shape in enumerate(shapes):  # (pycaffe's blob vectors index, they do not iterate)
            top[i].reshape(*shape)

    def reshape(self, bottom, top):
        pass  # R is known only once the batch is there: forward reshapes

    @_user_errors_end_process
    def forward(self, bottom, top):
        batch = self._next if self._next is not None else next(self._batches)
        self._next = None
        arrays = (to_blob(batch.images), batch.cls_target, batch.loc_target, batch.loc_weight,
                  batch.gt_rois, batch.mask_target)
        for i, array in enumerate(arrays):
            top[i].reshape(*array.shape)
            top[i].data[...] = array
        self._account(batch)

    def backward(self, top, propagate_down, bottom):
        pass

    def _account(self, batch):
        for epoch, counts in batch.counts.items():
            self.epoch_counts.setdefault(epoch, Counter()).update(counts)
        for epoch in range(len(self.logged_epochs), batch.epochs_done):
            c = self.epoch_counts.get(epoch, Counter())
            log.info("epoch %d: %s", epoch, ", ".join(f"{k} {c[k]}" for k in COUNT_KEYS))
            self.logged_epochs.append(epoch)

    def __del__(self):
        batches = getattr(self, "_batches", None)
        if batches is not None:
            batches.close()


def data_layer_tops(ns, cfg, ann, images, batch_size=None, **opts):
    """Adds FassstDataLayer to NetSpec `ns` with tops named as TRAIN_TOPS; returns {name: top}.

    Sizes come from `cfg` (FassstConfig); opts are further param_str keys (seed, augment,
    workers, skip_bad_images, shuffle). Use as build_net's data_layer with functools.partial.
    """
    settings = dict(ann=ann, images=images, input_size=cfg.input_size,
                    num_slots=cfg.num_slots, num_classes=cfg.num_classes,
                    roi_size=cfg.roi_size,
                    batch_size=batch_size or cfg.solver.batch_size // cfg.solver.iter_size,
                    **opts)
    if cfg.train_scale_min < 1:  # only then: the nets of configs without it stay as they were
        settings.setdefault("scale_min", cfg.train_scale_min)
    if cfg.box_coding != "image":  # likewise
        settings.setdefault("box_coding", cfg.box_coding)
    parse_params(settings)  # fail here, naming the key, rather than at net construction
    tops = L.Python(ntop=len(TRAIN_TOPS), python_param=dict(
        module="fassst.data.layer", layer="FassstDataLayer",
        param_str=json.dumps(settings, sort_keys=True)))
    for name, blob in zip(TRAIN_TOPS, tops):
        ns[name] = blob
    return {name: ns[name] for name in TRAIN_TOPS}
