"""Compares two backends' detections slot by slot (Caffe's deploy net vs its ONNX export).

Both keep the slots scoring above a threshold, best first, ties by slot. Their sigmoids differ
by a few ulps (glibc's expf vs ONNX Runtime's), so a score within that of the threshold may be
kept by one backend only, and two scores within it may come in either order. Matching by slot
makes the comparison immune to exactly those cases and to nothing else: a slot kept by one
backend only, or an order swap, is accepted only when the scores involved are within `tie_tol`
of the threshold or of each other; everything else is compared slot for slot.
"""
import numpy as np


def caffe_detections(net):
    """compare_detections' form of a forwarded Caffe deploy net with the `slots` top
    (onnx_export.deploy_net_param)."""
    b = net.blobs
    return dict(slots=b["slots"].data.copy(), boxes=b["rois"].data[:, 1:5].copy(),
                scores=b["scores"].data.copy(), classes=b["labels"].data.copy(),
                masks=b["masks"].data[:, 0].copy())


def onnx_detections(session, x):
    """compare_detections' form of an exported model's outputs on input x (1, 3, S, S)."""
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(names, {session.get_inputs()[0].name: x})))
    out["masks"] = out["masks"][:, 0]
    return out


class Mismatch(AssertionError):
    """The two backends disagree beyond float ties; the message says where."""


def compare_detections(ref, got, threshold, tie_tol=1e-5):
    """ref, got: dict(slots (R), boxes (R, 4), scores (R), classes (R), masks (R, M, M)).

    Returns dict(common, only_ref, only_got, reordered, box, score, mask (max abs differences
    over common slots), class_mismatches). Raises Mismatch on a disagreement no tie explains.
    """
    ref_slots = [int(s) for s in ref["slots"]]
    got_slots = [int(s) for s in got["slots"]]
    if len(set(ref_slots)) != len(ref_slots) or len(set(got_slots)) != len(got_slots):
        raise Mismatch(f"a slot appears twice: {ref_slots} / {got_slots}")
    for name, own, other, out in (("ref", ref_slots, set(got_slots), ref),
                                  ("got", got_slots, set(ref_slots), got)):
        for i, s in enumerate(own):
            if s not in other and abs(float(out["scores"][i]) - threshold) > tie_tol:
                raise Mismatch(f"slot {s} kept by {name} only, score {out['scores'][i]:.7f} is not "
                               f"within {tie_tol} of the threshold {threshold}")
    common = [s for s in ref_slots if s in set(got_slots)]
    ri = np.array([ref_slots.index(s) for s in common], int)
    gi = np.array([got_slots.index(s) for s in common], int)
    ref_scores = np.asarray(ref["scores"], np.float64)[ri]
    reordered = 0
    for a in range(len(common)):  # pairs whose order differs must be ties
        for b in range(a + 1, len(common)):
            if (ri[a] < ri[b]) != (gi[a] < gi[b]):
                reordered += 1
                if abs(ref_scores[a] - ref_scores[b]) > tie_tol:
                    raise Mismatch(f"slots {common[a]} and {common[b]} come in another order, "
                                   f"scores {ref_scores[a]:.7f} and {ref_scores[b]:.7f}")

    def maxdiff(key):
        if not len(common):
            return 0.0
        a = np.asarray(ref[key], np.float64)[ri]
        b = np.asarray(got[key], np.float64)[gi]
        return float(np.abs(a - b).max())

    return dict(common=len(common), only_ref=len(set(ref_slots) - set(got_slots)),
                only_got=len(set(got_slots) - set(ref_slots)), reordered=reordered,
                box=maxdiff("boxes"), score=maxdiff("scores"), mask=maxdiff("masks"),
                class_mismatches=int((np.asarray(ref["classes"])[ri] != np.asarray(got["classes"])[gi]).sum())
                if len(common) else 0)
