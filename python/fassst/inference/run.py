"""Runs a predictor over an image, a folder of images or a video (scripts/infer.py): overlays
into a folder, OUT/<image stem>.png per image or OUT/<video stem>.mp4, and the COCO results."""
import os

import cv2

from fassst.evaluation.coco_evaluator import instances_to_results
from fassst.inference import media
from fassst.vis import overlay_instances, write_overlay


def predict_media(predict, source, out_dir, class_names, category_ids, image_ids=None,
                  draw_threshold=0.3, log=print):
    """The COCO results list of every image or frame of `source`; overlays go to out_dir.

    predict: a LetterboxPredictor (RGB image -> instances). image_ids: file name -> COCO image
    id (others are numbered 1, 2, ... in order; frame i of a video is image i + 1).
    draw_threshold: overlays show instances scoring at least this (the results keep all)."""
    os.makedirs(out_dir, exist_ok=True)
    if media.is_video(source):
        return _video(predict, media.Video(source), out_dir, class_names, category_ids,
                      draw_threshold)
    results = []
    for k, (name, image) in enumerate(media.iter_images(source), start=1):
        inst = predict(image)
        write_overlay(os.path.join(out_dir, os.path.splitext(name)[0] + ".png"), image, inst,
                      class_names, min_score=draw_threshold)
        results += instances_to_results((image_ids or {}).get(name, k), inst, category_ids,
                                        image.shape[:2])
        log(f"{name}: {len(inst['scores'])} instances")
    return results


def _video(predict, video, out_dir, class_names, category_ids, draw_threshold):
    stem = os.path.splitext(os.path.basename(video.path))[0]
    writer, results = None, []
    for i, frame in video:
        inst = predict(frame)
        pic = cv2.cvtColor(overlay_instances(frame, inst, class_names, min_score=draw_threshold),
                           cv2.COLOR_RGB2BGR)
        if writer is None:
            writer = cv2.VideoWriter(os.path.join(out_dir, stem + ".mp4"),
                                     cv2.VideoWriter_fourcc(*"mp4v"), video.fps, pic.shape[1::-1])
        writer.write(pic)
        results += instances_to_results(i + 1, inst, category_ids, frame.shape[:2])
    if writer is not None:
        writer.release()
    return results
