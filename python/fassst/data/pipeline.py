"""Training batches from a COCO data set: batch k is a pure function of (settings, k).

The image stream is epochs laid end to end; stream position p is image order_e[p mod N] of
epoch e = p // N, order_e a permutation drawn from (seed, e) (or the file order without
shuffle). Batch k holds positions k B .. k B + B - 1, and position p's augmentation is drawn
from (seed, p). So which worker process builds a batch, or how many there are, changes nothing.

Per image: read -> (augment: flip, colour jitter, scale jitter) -> letterbox -> assign slots -> mask targets
of the assigned instances. gt_rois are the assigned instances' GT boxes in input pixels, in
(image, slot) order, and mask_target follows the same order.

An unreadable image (missing, corrupt, truncated, size unlike the json) raises, naming the file; with
skip_bad_images it is replaced by the next readable image of the same epoch order, and counted.
"""
import logging
from collections import Counter
from typing import Dict, NamedTuple

import numpy as np

from fassst.data.assign import assign
from fassst.data.augment import color_jitter, draw_flip, draw_jitter, draw_placement
from fassst.data.coco_dataset import CocoDataset, DatasetError, decode_mask
from fassst.data.letterbox import fit, image_to_input
from fassst.data.mask_target import mask_targets
from fassst.images.read import ImageReadError
from fassst.net.geometry import grid_side, roi_sides

log = logging.getLogger(__name__)

COUNT_KEYS = ("images", "skipped_images", "instances", "assigned", "dropped_no_cell", "crowd",
              "zero_area", "degenerate_box")


class Batch(NamedTuple):
    images: np.ndarray       # (B, S, S, 3) uint8 RGB letterboxed (normalised by the layer)
    cls_target: np.ndarray   # (B, n, C) float32
    loc_target: np.ndarray   # (B, n, 4) float32
    loc_weight: np.ndarray   # (B, n, 4) float32
    gt_rois: np.ndarray      # (R, 5) float32 (batch index, x1, y1, x2, y2), input pixels
    mask_target: np.ndarray  # (R, 1, M, M) float32
    counts: Dict[int, Counter]  # epoch -> COUNT_KEYS counts of this batch's images
    epochs_done: int         # epochs whose every image is in batches 0..k
    dataset_size: int        # images per epoch


class BatchMaker:
    """Builds batch k; `params` as fassst.data.params.parse_params returns them."""

    def __init__(self, params):
        self.params = dict(params)
        self.dataset = CocoDataset(params["ann"], params["images"])
        if self.dataset.num_classes != params["num_classes"]:
            raise DatasetError(f"{params['ann']} has {self.dataset.num_classes} categories "
                               f"({self.dataset.class_names}), the net num_classes "
                               f"{params['num_classes']}")
        if len(self.dataset) == 0:
            raise DatasetError(f"{params['ann']}: no images")
        self.grid = grid_side(params["num_slots"])
        self.mask_size = roi_sides(params["roi_size"])[3]
        self._orders = {}
        self._bad = set()  # indices known unreadable in this process (a cache: same result)

    def order(self, epoch):
        """The epoch's image order (dataset indices)."""
        if epoch not in self._orders:
            n = len(self.dataset)
            if self.params["shuffle"]:
                rng = np.random.default_rng([self.params["seed"], 0, epoch])
                self._orders[epoch] = rng.permutation(n)
            else:
                self._orders[epoch] = np.arange(n)
            if len(self._orders) > 4:
                del self._orders[min(self._orders)]
        return self._orders[epoch]

    def _load(self, position, counts):
        n = len(self.dataset)
        epoch, j = divmod(position, n)
        order = self.order(epoch)
        for attempt in range(n):
            index = int(order[(j + attempt) % n])
            if index not in self._bad:
                try:
                    return self.dataset.load(index)
                except (ImageReadError, DatasetError) as e:
                    if not self.params["skip_bad_images"]:
                        raise
                    self._bad.add(index)
                    log.warning("skipping image: %s", e)
            if attempt == 0:
                counts["skipped_images"] += 1
        raise DatasetError(f"{self.params['ann']}: no image of the data set could be read")

    def sample(self, position):
        """(input image, Assignment, rois (r, 4), masks (r, 1, M, M), Counter) of position p."""
        p = self.params
        counts = Counter()
        s = self._load(position, counts)
        rng = np.random.default_rng([p["seed"], 1, position])
        lb = fit(s.image.shape[0], s.image.shape[1], p["input_size"])
        image = s.image
        if p["augment"]:
            if draw_flip(rng):
                lb = lb.flipped()
            image = color_jitter(image, draw_jitter(rng))
            if p["scale_min"] < 1:  # drawn last: runs without it see the same flips and colours
                lb = lb.placed(*draw_placement(rng, p["scale_min"]))
        boxes = lb.boxes_to_input(s.boxes)
        a = assign(boxes, s.classes, s.areas, self.grid, p["num_classes"],
                   p["input_size"], p["input_size"], box_coding=p["box_coding"])
        chosen = [i for _, i in a.pairs]
        rois = boxes[chosen].reshape(-1, 4)
        masks = mask_targets([decode_mask(s.rles[i]) for i in chosen], rois, lb.affine,
                             self.mask_size)
        counts.update(images=1, instances=len(s.boxes), assigned=len(chosen),
                      dropped_no_cell=a.dropped, crowd=len(s.crowd_boxes), **s.dropped)
        return image_to_input(image, lb), a, rois, masks, counts

    def batch(self, k):
        b, n = self.params["batch_size"], len(self.dataset)
        images, cls, loc, weight, rois, masks = [], [], [], [], [], []
        counts = {}
        for i in range(b):
            position = k * b + i
            image, a, r, m, c = self.sample(position)
            images.append(image)
            cls.append(a.cls_target)
            loc.append(a.loc_target)
            weight.append(a.loc_weight)
            rois.append(np.column_stack([np.full(len(r), i, np.float32), r]))
            masks.append(m)
            counts.setdefault(position // n, Counter()).update(c)
        return Batch(np.stack(images), np.stack(cls), np.stack(loc), np.stack(weight),
                     np.concatenate(rois).astype(np.float32).reshape(-1, 5),
                     np.concatenate(masks).reshape(-1, 1, self.mask_size, self.mask_size),
                     counts, (k + 1) * b // n, n)
