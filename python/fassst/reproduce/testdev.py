"""COCO test-dev predictions in the evaluation server's format.

The server takes a zip holding one json named `[type]_[testset]_[alg]_results.json`
(cocodataset.org, "Upload"): here detections_test-dev2017_<alg>_results.json, a list of
{image_id, category_id, bbox [x, y, w, h], score, segmentation (RLE, counts as text)} over the
images of image_info_test-dev2017.json; the segm track reads the masks. Test-dev has no public
annotations, so its numbers come only from the server.
"""
import json
import os
import zipfile

from tqdm import tqdm

from fassst.data.coco_dataset import CocoDataset
from fassst.errors import InputError
from fassst.evaluation.coco_evaluator import instances_to_results


def submission_stem(alg="fassst"):
    return f"detections_test-dev2017_{alg}_results"


def write_submission(predictor, ann, images, out_dir, category_ids, alg="fassst", quiet=True):
    """Predicts every image of the test-dev image info json; writes the results json and the zip
    to upload. category_ids: the json category id of each class the model predicts (the training
    set's), checked against test-dev's. Returns {json, zip, images, detections}."""
    dataset = CocoDataset(ann, images)
    if list(dataset.category_ids) != list(category_ids):
        raise InputError(f"{ann}: its categories {dataset.category_ids[:5]}... differ from the "
                         f"model's {list(category_ids)[:5]}...")
    results = []
    for i in tqdm(range(len(dataset)), desc="test-dev", unit="img", disable=quiet):
        sample = dataset.load(i)
        results += instances_to_results(sample.image_id, predictor(sample.image), category_ids,
                                        sample.image.shape[:2])
    os.makedirs(out_dir, exist_ok=True)
    stem = submission_stem(alg)
    json_path = os.path.join(out_dir, stem + ".json")
    with open(json_path, "w") as f:
        json.dump(results, f)
    zip_path = os.path.join(out_dir, stem + ".zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(json_path, arcname=stem + ".json")  # at the zip's root, as the server reads it
    return dict(json=json_path, zip=zip_path, images=len(dataset), detections=len(results))
