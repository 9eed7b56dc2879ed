"""Runs a predictor over a COCO-format data set: COCO metrics, results json, overlay PNGs."""
import os

from tqdm import tqdm

from fassst.data.coco_dataset import CocoDataset
from fassst.evaluation.coco_evaluator import COCOEvaluator
from fassst.images.draw import write_overlay


def predict_dataset(predictor, ann, images, overlay_dir=None, quiet=False):
    """Predicts every image of ann/images; returns the filled COCOEvaluator.

    overlay_dir: if given, writes <image file stem>.png with masks, boxes, classes and scores.
    """
    dataset = CocoDataset(ann, images)
    evaluator = COCOEvaluator(ann, category_ids=dataset.category_ids)
    if overlay_dir:
        os.makedirs(overlay_dir, exist_ok=True)
    for i in tqdm(range(len(dataset)), desc="predict", unit="img", disable=quiet):
        sample = dataset.load(i)
        inst = predictor(sample.image)
        evaluator.process(sample.image_id, inst)
        if overlay_dir:
            stem = os.path.splitext(os.path.basename(sample.path))[0]
            write_overlay(os.path.join(overlay_dir, stem + ".png"), sample.image, inst,
                          dataset.class_names)
    return evaluator
