"""The backend-independent half of a predictor: letterbox in, instances in photo pixels out.

A backend (Caffe's deploy net in predictor.py, its ONNX export in onnx_predictor.py) maps the
letterboxed, normalised input to the kept slots' boxes (input pixels), scores, labels and mask
probabilities; this class letterboxes the photo, maps the boxes back, pastes the masks through
the letterbox and thresholds them (0.5). No NMS (the paper's point). No Caffe import here, so
the ONNX backend runs where pycaffe is not installed.
"""
import numpy as np

from fassst import native
from fassst.data import letterbox


class LetterboxPredictor:
    """Subclasses implement `forward(blob)`: (3, S, S) float32 -> dict(boxes (R, 4) input
    pixels x1 y1 x2 y2, scores (R), labels (R), masks (R, M, M) probabilities)."""

    def __init__(self, cfg, mask_threshold=0.5):
        self.cfg, self.mask_threshold = cfg, mask_threshold

    def forward(self, blob):
        raise NotImplementedError

    def __call__(self, image_rgb):
        """(H, W, 3) uint8 RGB -> dict(boxes (K, 4) xyxy, scores, labels, masks (K, H, W) bool,
        mask_windows (K, 4) x0 y0 x1 y1: photo pixels, ends exclusive, holding all of each mask,
        so that RLE encoding (coco_rle.encode) reads only them)."""
        blob, lb = self.preprocess(image_rgb)
        return self.postprocess(self.forward(blob), lb)

    def preprocess(self, image_rgb):
        """The photo letterboxed and normalised: ((3, S, S) float32 blob, its Letterbox)."""
        lb = letterbox.fit(*image_rgb.shape[:2], self.cfg.input_size)
        return letterbox.image_to_blob(image_rgb, lb), lb

    def postprocess(self, out, lb):
        """forward's output -> instances in photo pixels (the dict __call__ returns)."""
        masks, windows = self.paste_masks(out, lb)
        return dict(self.decode(out, lb), masks=masks, mask_windows=windows)

    def decode(self, out, lb):
        """forward's boxes mapped to photo pixels, scores and integer labels."""
        boxes = out["boxes"]
        return dict(boxes=lb.boxes_to_original(boxes) if len(boxes) else np.zeros((0, 4), np.float32),
                    scores=np.asarray(out["scores"], np.float32),
                    labels=np.asarray(out["labels"]).astype(int))

    def paste_masks(self, out, lb):
        """((K, H, W) bool masks, (K, 4) windows): each ROI mask pasted at photo size and
        thresholded, computed only inside its window (letterbox.paste_window; 0 outside).
        All ROIs in one C++ call where fassst.native is built, else the numpy / OpenCV loop."""
        boxes, masks = out["boxes"], out["masks"]
        # zeroed pages are mapped lazily: only the windows' pages are ever touched
        pasted = np.zeros((len(boxes), lb.height, lb.width), bool)
        fast = native.masks()
        if fast is not None and len(boxes):
            windows = fast.paste_masks(masks, boxes, lb.affine, pasted, self.mask_threshold)
            return pasted, windows
        windows = np.zeros((len(boxes), 4), np.int32)
        for i in range(len(boxes)):
            windows[i] = x0, y0, x1, y1 = letterbox.paste_window(boxes[i], lb, masks[i].shape)
            block = letterbox.paste_roi_mask(masks[i], boxes[i], lb, windows[i])
            np.greater_equal(block, self.mask_threshold, out=pasted[i, y0:y1, x0:x1])
        return pasted, windows
