"""FASSST's loss, paper eq. 5: L = 5.75 Lm + 3 Ll + 1.25 Lc.

Lm: 1 - Dice on the ROI masks (DiceLoss, mean over ROIs).
Lc: sigmoid focal loss over all n x C class outputs, one-hot at assigned slots, normalised by
    the number of assigned slots (POSITIVE_TARGETS).
Ll (reading, "based on focal loss"): focal-modulated BCE on the t/l/b/r fractions, assigned
    slots only (weight 1 there, 0 elsewhere), no alpha, normalised by the weighted elements
    (4 per assigned slot, i.e. a mean per coordinate).
Lbce (not in the paper; cfg.mask_bce_weight, 0 = off): mean per-pixel BCE on the same masks.
    Dice alone lets a fine-tuning run with a large learning rate push every mask logit positive
    within ~25 iterations (a full box already scores Dice ~0.85), after which the saturated
    sigmoid passes no gradient and masks stay box-shaped; BCE's gradient (p - g) does not vanish
    there (measured: docs/DESIGN.md, "Training").
"""
from caffe import layers as L
from caffe import params as P


def losses(ns, mask_logits, loc_logits, cls_logits, targets, cfg):
    """targets: tops named mask_target, loc_target, loc_weight, cls_target."""
    w_mask, w_loc, w_cls = cfg.loss_weights
    ns.loss_mask = L.DiceLoss(mask_logits, targets["mask_target"], loss_weight=w_mask)
    ns.loss_loc = L.SigmoidFocalLoss(
        loc_logits, targets["loc_target"], targets["loc_weight"], loss_weight=w_loc,
        sigmoid_focal_loss_param=dict(alpha=-1, gamma=cfg.loc_focal_gamma,
                                      normalization=P.SigmoidFocalLoss.POSITIVE_WEIGHTS))
    ns.loss_cls = L.SigmoidFocalLoss(
        cls_logits, targets["cls_target"], loss_weight=w_cls,
        sigmoid_focal_loss_param=dict(alpha=cfg.focal_alpha, gamma=cfg.focal_gamma,
                                      normalization=P.SigmoidFocalLoss.POSITIVE_TARGETS))
    if cfg.mask_bce_weight > 0:
        # Caffe's SigmoidCrossEntropyLoss divides by the ROI count (NaN at zero ROIs) and has no
        # per-pixel mean; the focal layer with gamma 0 and unit weights is exactly mean BCE.
        ns["mask_bce/ones"] = L.Power(targets["mask_target"], power=0)
        ns.loss_mask_bce = L.SigmoidFocalLoss(
            mask_logits, targets["mask_target"], ns["mask_bce/ones"],
            loss_weight=cfg.mask_bce_weight, sigmoid_focal_loss_param=dict(
                alpha=-1, gamma=0, normalization=P.SigmoidFocalLoss.POSITIVE_WEIGHTS))


def loss_weights(cfg):
    """{loss top name: loss_weight} of the train net, in the order the trainer logs them."""
    w_mask, w_loc, w_cls = cfg.loss_weights
    out = dict(loss_mask=w_mask, loss_loc=w_loc, loss_cls=w_cls)
    if cfg.mask_bce_weight > 0:
        out["loss_mask_bce"] = cfg.mask_bce_weight
    return out
