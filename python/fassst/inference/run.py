"""Runs a predictor over an image, a folder of images or a video (scripts/infer.py): overlays
into a folder, OUT/<image stem>.png per image or OUT/<video stem>.mp4, and the COCO results.

An image that cannot be read (missing, not an image, truncated) or a video frame that cannot be
decoded is skipped with a warning naming it, and counted; the rest is processed. With strict,
the first one stops the run instead (ImageReadError).
"""
import os
import sys
from typing import List, NamedTuple

import cv2

from fassst.evaluation.coco_evaluator import instances_to_results
from fassst.images.draw import overlay_instances, write_overlay
from fassst.images.read import ImageReadError, read_rgb
from fassst.inference import media


class MediaRun(NamedTuple):
    results: List[dict]  # COCO results format
    processed: int       # images or frames predicted
    skipped: int         # images or frames that could not be read


def _warn(text):
    print(f"warning: {text}", file=sys.stderr)


def predict_media(predict, source, out_dir, class_names, category_ids, image_ids=None,
                  draw_threshold=0.3, strict=False, log=print, warn=_warn):
    """MediaRun of every image or frame of `source`; overlays go to out_dir.

    predict: a LetterboxPredictor (RGB image -> instances). image_ids: file name -> COCO image
    id (others are numbered 1, 2, ... in order; frame i of a video is image i + 1).
    draw_threshold: overlays show instances scoring at least this (the results keep all)."""
    os.makedirs(out_dir, exist_ok=True)
    if media.is_video(source):
        return _video(predict, media.Video(source), out_dir, class_names, category_ids,
                      draw_threshold, strict, warn)
    results, skipped = [], 0
    files = media.image_files(source)
    for k, (name, path) in enumerate(files, start=1):
        try:
            image = read_rgb(path)
        except ImageReadError as e:
            if strict:
                raise
            warn(f"skipped {e}")
            skipped += 1
            continue
        inst = predict(image)
        write_overlay(os.path.join(out_dir, os.path.splitext(name)[0] + ".png"), image, inst,
                      class_names, min_score=draw_threshold)
        results += instances_to_results((image_ids or {}).get(name, k), inst, category_ids,
                                        image.shape[:2])
        log(f"{name}: {len(inst['scores'])} instances")
    return MediaRun(results, len(files) - skipped, skipped)


def _video(predict, video, out_dir, class_names, category_ids, draw_threshold, strict, warn):
    stem = os.path.splitext(os.path.basename(video.path))[0]
    writer, results, done, bad = None, [], 0, []
    for i, frame in video:
        if frame is None:
            if strict:
                raise ImageReadError(f"{video.path}: frame {i} (of {video.declared_frames} the "
                                     f"file declares) cannot be decoded: truncated or corrupt")
            bad.append(i)
            continue
        inst = predict(frame)
        pic = cv2.cvtColor(overlay_instances(frame, inst, class_names, min_score=draw_threshold),
                           cv2.COLOR_RGB2BGR)
        if writer is None:
            writer = cv2.VideoWriter(os.path.join(out_dir, stem + ".mp4"),
                                     cv2.VideoWriter_fourcc(*"mp4v"), video.fps, pic.shape[1::-1])
        writer.write(pic)
        results += instances_to_results(i + 1, inst, category_ids, frame.shape[:2])
        done += 1
    if writer is not None:
        writer.release()
    if bad:
        warn(f"skipped {len(bad)} of the {video.declared_frames} frames of {video.path} (frames "
             f"{_spans(bad)}): they cannot be decoded, the file is truncated or corrupt")
    return MediaRun(results, done, len(bad))


def _spans(indices):
    """"3, 7-9" for [3, 7, 8, 9]."""
    spans = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
