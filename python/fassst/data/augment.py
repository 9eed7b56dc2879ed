"""Training augmentation: horizontal flip, a modest colour jitter and (optional) scale jitter,
driven by a given numpy Generator so that a sample's augmentation is fixed by its seed.

Colour jitter follows torchvision's ColorJitter definitions (brightness: scale; contrast: blend
with the mean grey level; saturation: blend with the grey image), applied in that fixed order
to the photo before letterboxing, so the padding keeps the mean colour.
"""
import numpy as np

# ITU-R 601 luma, the grey torchvision and OpenCV use.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def draw_flip(rng, probability=0.5):
    """Whether to mirror this sample."""
    return bool(rng.random() < probability)


def draw_jitter(rng, brightness=0.2, contrast=0.2, saturation=0.2):
    """(brightness, contrast, saturation) factors, each uniform in [1 - s, 1 + s]."""
    return tuple(float(rng.uniform(1 - s, 1 + s)) for s in (brightness, contrast, saturation))


def draw_placement(rng, scale_min):
    """(scale, u, v) for Letterbox.placed: scale uniform in [scale_min, 1], position uniform.
    Shrinking and moving the photo moves each instance to other slots of the IAM's grid and
    other sizes, which a small data set otherwise shows at one place and size only."""
    return float(rng.uniform(scale_min, 1.0)), float(rng.random()), float(rng.random())


def color_jitter(image, factors):
    """(H, W, 3) uint8 RGB -> uint8 RGB with the (brightness, contrast, saturation) factors."""
    b, c, s = factors
    x = image.astype(np.float32) * b
    x = np.clip(x, 0, 255)
    grey_mean = float((x @ _LUMA).mean())
    x = np.clip((x - grey_mean) * c + grey_mean, 0, 255)
    grey = (x @ _LUMA)[..., None]
    x = np.clip((x - grey) * s + grey, 0, 255)
    return (x + 0.5).astype(np.uint8)
