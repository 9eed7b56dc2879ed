"""The train net's inputs: the contract between the net builder (fassst_net.build_net) and the
data layer that feeds it (fassst.data.layer). Both import it; neither imports the other.

Tops, in this order (B images, n slots, C classes, R ground-truth ROIs, M = 8 * roi_size):
    data (B, 3, S, S), cls_target (B, n, C), loc_target (B, n, 4), loc_weight (B, n, 4),
    gt_rois (R, 5), mask_target (R, 1, M, M)
"""
from fassst.net.geometry import roi_sides

TRAIN_TOPS = ("data", "cls_target", "loc_target", "loc_weight", "gt_rois", "mask_target")


def train_input_shapes(cfg, batch_size):
    """Shapes of the train net's input tops, in TRAIN_TOPS order."""
    n, c, side = cfg.num_slots, cfg.num_classes, cfg.input_size
    r, mask = cfg.max_train_rois, roi_sides(cfg.roi_size)[3]
    return [(batch_size, 3, side, side), (batch_size, n, c), (batch_size, n, 4),
            (batch_size, n, 4), (r, 5), (r, 1, mask, mask)]
