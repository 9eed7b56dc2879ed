"""Pictures: overlays draw only what scores high enough, in the right place; the montage lays
tiles out left to right, top to bottom, at one height."""
import numpy as np

from fassst.images.draw import montage, overlay


def _instances():
    masks = np.zeros((2, 60, 80), bool)
    masks[0, 10:30, 10:30] = True
    masks[1, 35:55, 45:75] = True
    boxes = np.array([[10, 10, 29, 29], [45, 35, 74, 54]], np.float32)
    return boxes, masks


def test_overlay_tints_masks_above_the_threshold_only():
    image = np.full((60, 80, 3), 100, np.uint8)
    boxes, masks = _instances()
    out = overlay(image, boxes, [0.9, 0.1], [0, 1], masks, ["a", "b"], min_score=0.3)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[20, 20] != 100).any()            # inside the kept mask
    assert (out[45, 60] == 100).all()            # inside the dropped one: untouched
    assert (out[5, 75] == 100).all()             # background
    assert (image == 100).all()                  # the input is not drawn on


def test_small_image_is_drawn_enlarged_with_its_instances_in_place():
    image = np.full((60, 80, 3), 100, np.uint8)
    boxes, masks = _instances()
    out = overlay(image, boxes, [0.9, 0.9], [0, 1], masks, ["a", "b"], min_side=128)
    assert out.shape == (180, 240, 3)            # factor ceil(128 / 60) = 3
    assert (out[3 * 20, 3 * 20] != 100).any()    # mask 0 moved with the enlargement
    assert (out[3 * 45 + 1, 3 * 60 + 1] != 100).any()
    assert (out[3 * 32, 3 * 38] == 100).all()    # between the two instances: untouched
    same = overlay(image, boxes, [0.9, 0.9], [0, 1], masks, ["a", "b"], min_side=60)
    assert same.shape == image.shape             # big enough: drawn as is


def test_montage_places_tiles_in_rows_at_one_height():
    red = np.zeros((50, 100, 3), np.uint8)
    red[..., 0] = 255
    green = np.zeros((100, 100, 3), np.uint8)
    green[..., 1] = 255
    blue = np.zeros((20, 20, 3), np.uint8)
    blue[..., 2] = 255
    sheet = montage([red, green, blue], cols=2, tile_height=40, gap=4)
    # row 1: red 80 x 40, gap, green 40 x 40; row 2: blue 40 x 40
    assert sheet.shape == (84, 124, 3)
    assert tuple(sheet[20, 40]) == (255, 0, 0)
    assert tuple(sheet[20, 82]) == (255, 255, 255)  # the gap
    assert tuple(sheet[20, 100]) == (0, 255, 0)
    assert tuple(sheet[60, 20]) == (0, 0, 255)
    assert tuple(sheet[60, 100]) == (255, 255, 255)  # no tile there
