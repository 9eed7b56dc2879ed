"""The Python side of end-to-end inference stage by stage (scripts/bench.py --profile-python).

Around the net's forward a photo goes through: read (decode the file to RGB), letterbox +
normalise (the (3, S, S) float32 input), decode (boxes to photo pixels, scores, labels), paste
masks (each ROI's M x M probabilities at photo size, thresholded) and RLE (COCO's encoding of
the K masks, what results files and the evaluator hold); those two in C++ where fassst.native is
built (FASSST_NATIVE=0: the numpy path, for a before / after). Each photo's forward is run once,
before timing; the stages are then timed on every sample photo in turn for `rounds` rounds.

Two clocks per stage: the calling thread's CPU time (time.thread_time), which other processes on
a shared machine barely move, and elapsed time. OpenCV runs single-threaded while profiling so
that the thread clock holds all of its work (the end-to-end timing in net_bench keeps OpenCV's
default threads). A benchmark that prints numbers, not a test.
"""
import os
import statistics
import time

import cv2
import numpy as np

from fassst import native
from fassst.data import coco_rle
from fassst.images.read import read_rgb

STAGES = ("read", "letterbox + normalise", "decode", "paste masks", "RLE")


def _clocked(fn, *args):
    c0, w0 = time.thread_time(), time.perf_counter()
    result = fn(*args)
    return result, (time.thread_time() - c0) * 1e3, (time.perf_counter() - w0) * 1e3


def stage_times(predictor, path, out):
    """{stage: (thread CPU ms, elapsed ms)} of one photo, given its forward output `out`."""
    image, *t_read = _clocked(read_rgb, path)
    (_, lb), *t_pre = _clocked(predictor.preprocess, image)
    _, *t_dec = _clocked(predictor.decode, out, lb)
    (masks, windows), *t_paste = _clocked(predictor.paste_masks, out, lb)
    _, *t_rle = _clocked(coco_rle.encode, masks, windows)
    return dict(zip(STAGES, (t_read, t_pre, t_dec, t_paste, t_rle)))


def profile(predictor, photos, rounds=5, warmup=1, log=print):
    """Per-stage medians over every (photo, round) and the slowest photo's medians, both clocks.

    predictor: a LetterboxPredictor (preprocess / forward / decode / paste_masks)."""
    outputs, info = [], []
    for path in photos:
        blob, lb = predictor.preprocess(read_rgb(path))
        out = predictor.forward(blob)
        outputs.append(out)
        b = lb.boxes_to_original(out["boxes"]) if len(out["boxes"]) else np.zeros((0, 4))
        info.append(dict(photo=os.path.basename(path), size=[lb.height, lb.width],
                         rois=len(out["boxes"]),
                         mean_box_px=float(np.mean((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))
                         if len(b) else 0.0))
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    samples = [[] for _ in photos]  # per photo: one dict per round
    log(f"{warmup} + {rounds} rounds over {len(photos)} photos, stage by stage")
    try:
        for r in range(warmup + rounds):
            for i, path in enumerate(photos):
                t = stage_times(predictor, path, outputs[i])
                if r >= warmup:
                    samples[i].append(t)
    finally:
        cv2.setNumThreads(threads)
    stages = {}
    for stage in STAGES + ("total",):
        rec = {}
        for k, clock in enumerate(("cpu", "wall")):
            per_photo = [[_value(t, stage, k) for t in photo] for photo in samples]
            rec[clock + "_ms"] = statistics.median(v for photo in per_photo for v in photo)
            rec[clock + "_slowest_photo_ms"] = max(statistics.median(p) for p in per_photo)
        stages[stage] = rec
    return dict(stages=stages, photos=info, rounds=rounds, warmup=warmup, paste_rle=paste_rle_path())


def paste_rle_path():
    """Which code pastes the masks and encodes the RLE: the C++ module or the numpy path."""
    return "C++ (fassst_masks)" if native.masks() is not None else "numpy (FASSST_NATIVE=0 or not built)"


def _value(t, stage, k):
    return sum(v[k] for v in t.values()) if stage == "total" else t[stage][k]


def markdown(rec, title):
    lines = [f"### {title}", "",
             f"Python side stage by stage: median over {len(rec['photos'])} photos x "
             f"{rec['rounds']} rounds (after {rec['warmup']} warm-up), and the median of the "
             f"slowest photo; ms of the thread's CPU time and elapsed; OpenCV single-threaded; "
             f"paste and RLE: {rec.get('paste_rle', 'numpy')}.",
             "", "| stage | CPU ms | elapsed ms | slowest photo CPU ms | slowest photo elapsed ms |",
             "|---|---:|---:|---:|---:|"]
    for stage, r in rec["stages"].items():
        lines.append(f"| {stage} | {r['cpu_ms']:.2f} | {r['wall_ms']:.2f} | "
                     f"{r['cpu_slowest_photo_ms']:.2f} | {r['wall_slowest_photo_ms']:.2f} |")
    rois = sorted({p["rois"] for p in rec["photos"]})
    area = statistics.median(p["mean_box_px"] for p in rec["photos"])
    lines += ["", f"ROIs per photo: {', '.join(map(str, rois))}; median over photos of the mean "
              f"box area: {area:.0f} photo pixels; photos "
              + ", ".join(f"{p['size'][1]}x{p['size'][0]}" for p in rec["photos"]) + "."]
    return "\n".join(lines) + "\n"
