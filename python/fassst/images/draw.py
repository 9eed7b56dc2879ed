"""Draws instances (mask, box, class, score) over an image with OpenCV, for people to look at."""
import cv2
import numpy as np


READABLE_MIN_SIDE = 384  # overlays of smaller still images are drawn enlarged (overlay())


def colour(i):
    """A stable, distinct RGB colour per index (golden-ratio hue steps)."""
    hue = int((i * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def overlay(image_rgb, boxes, scores, labels, masks, class_names, alpha=0.5, min_score=0.3,
            min_side=0):
    """image (H, W, 3) uint8 RGB; boxes (K, 4) xyxy; masks (K, H, W) bool -> RGB uint8.

    Draws the instances scoring at least min_score: evaluation keeps every detection down to
    the decoder's threshold (AP needs the low ones), but a picture of them is unreadable.
    An image whose shorter side is below min_side (a microscopy tile) is drawn enlarged by a
    whole factor, pixels kept square, so that labels and outlines stay legible."""
    keep = np.flatnonzero(np.asarray(scores, np.float32) >= min_score)
    boxes, scores, labels = (np.asarray(a)[keep] for a in (boxes, scores, labels))
    masks = [masks[k] for k in keep]
    f = -(-min_side // min(image_rgb.shape[:2])) if min_side else 1
    if f > 1:
        image_rgb = np.repeat(np.repeat(image_rgb, f, axis=0), f, axis=1)
        masks = [np.repeat(np.repeat(m, f, axis=0), f, axis=1) for m in masks]
        boxes = np.asarray(boxes, np.float32) * f
    out = image_rgb.copy()
    order = np.argsort(-np.asarray([m.sum() for m in masks])) if len(masks) else []
    for k in order:  # big masks first, so small ones stay visible on top
        c = np.array(colour(int(labels[k]) * 7 + k), np.float32)
        m = masks[k]
        out[m] = (out[m] * (1 - alpha) + c * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(v) for v in c), 2)
    thick = max(1, round(min(out.shape[:2]) / 300))
    for k in range(len(boxes)):
        c = colour(int(labels[k]) * 7 + k)
        x1, y1, x2, y2 = [int(round(v)) for v in boxes[k]]
        cv2.rectangle(out, (x1, y1), (x2, y2), c, thick)
        text = f"{class_names[int(labels[k])]} {scores[k]:.2f}"
        scale = 0.4 * thick + 0.1
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(y1, th + base)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), c, -1)
        cv2.putText(out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return out


def overlay_instances(image_rgb, inst, class_names, min_score=0.3, min_side=0):
    """overlay() of a predictor's output dict (boxes, scores, labels, masks)."""
    return overlay(image_rgb, inst["boxes"], inst["scores"], inst["labels"], inst["masks"],
                   class_names, min_score=min_score, min_side=min_side)


def write_overlay(path, image_rgb, inst, class_names, min_score=0.3):
    """Writes the overlay of a still image to `path` (an image file; OpenCV writes BGR), small
    images enlarged to READABLE_MIN_SIDE."""
    pic = overlay_instances(image_rgb, inst, class_names, min_score, READABLE_MIN_SIDE)
    cv2.imwrite(path, cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))


def montage(images_rgb, cols=3, tile_height=200, gap=4):
    """Images scaled to one height and laid out in rows of `cols` on a white sheet."""
    if not images_rgb:
        raise ValueError("montage: no images")
    tiles = [cv2.resize(im, (max(1, round(im.shape[1] * tile_height / im.shape[0])), tile_height),
                        interpolation=cv2.INTER_AREA) for im in images_rgb]
    rows = [tiles[i:i + cols] for i in range(0, len(tiles), cols)]
    width = max(sum(t.shape[1] for t in r) + gap * (len(r) - 1) for r in rows)
    sheet = np.full((len(rows) * (tile_height + gap) - gap, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        x = 0
        for t in row:
            y = r * (tile_height + gap)
            sheet[y:y + tile_height, x:x + t.shape[1]] = t
            x += t.shape[1] + gap
    return sheet
