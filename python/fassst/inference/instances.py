"""Turns a deploy net's outputs for one image into instances in original-image pixels."""
import numpy as np

from fassst.inference.paste import paste_mask


def instances_from_outputs(rois, scores, labels, masks, image_index, to_original, height, width,
                           mask_threshold=0.5):
    """rois (R, 5) batch-indexed boxes in input pixels; masks (R, 1, M, M) probabilities.

    to_original: maps (K, 4) input-pixel boxes to original-image pixels (the letterbox inverse).
    Returns dict(boxes (K, 4) xyxy, scores (K,), labels (K,) int, masks (K, H, W) bool), the
    COCOEvaluator.process() format, for the ROIs of image `image_index`.
    """
    keep = np.flatnonzero(rois[:, 0].astype(int) == image_index) if len(rois) else np.zeros(0, int)
    boxes = to_original(rois[keep, 1:5]) if len(keep) else np.zeros((0, 4), np.float32)
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    pasted = np.zeros((len(keep), height, width), bool)
    for k, i in enumerate(keep):
        pasted[k] = paste_mask(masks[i, 0], boxes[k], height, width, mask_threshold)
    return dict(boxes=boxes, scores=scores[keep].astype(np.float32),
                labels=labels[keep].astype(int), masks=pasted)
