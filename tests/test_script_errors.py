"""Bad input to the entry scripts, one test per kind: a missing file, a file that is not JSON (or
not what it should be), wrong shapes. Each must end the script with a non-zero exit and one
`error: ...` line naming the file or setting, never a traceback (scripts end through
fassst.cli.run)."""
import json
import os
import subprocess
import sys

import pytest

from fassst.datasets.sample_data import ensure_sample_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", name), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def one_error(done, *fragments):
    """The run's single `error:` line, after checking the exit status, that no traceback was
    printed and that the line holds every fragment."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def sample():
    return ensure_sample_data()


@pytest.fixture
def not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')  # cut short
    return path


# ---- configs (every script that takes --config) ----

def test_missing_config(tmp_path):
    one_error(run_script("flops.py", "--config", tmp_path / "nope.json"), "nope.json: no such config")


def test_config_not_json(not_json):
    one_error(run_script("gen_prototxt.py", "--config", not_json, "--out", not_json.parent),
              "broken.json: config is not JSON")


def test_config_value_of_the_wrong_type(tmp_path):
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"name": "typo", "input_size": "416"}))
    one_error(run_script("flops.py", "--config", path), "typo.json: input_size must be an integer")


def test_config_value_out_of_range(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"name": "odd", "num_slots": 17}))
    one_error(run_script("flops.py", "--config", path), "odd: num_slots must be a square")


# ---- eval.py ----

def test_eval_missing_annotation_file(tmp_path):
    results = tmp_path / "results.json"
    results.write_text("[]")
    one_error(run_script("eval.py", "--ann", tmp_path / "gone.json", "--results", results,
                         "--out", tmp_path / "out"), "gone.json: no such annotation file")


def test_eval_results_not_json(sample, not_json, tmp_path):
    one_error(run_script("eval.py", "--ann", sample[0], "--results", not_json,
                         "--out", tmp_path / "out"), "broken.json: results file is not JSON")


@pytest.mark.parametrize("results, message", [
    ({"image_id": 1}, "a COCO results file is a JSON list, got dict"),
    ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}],
     "a result has no 'segmentation'"),
    ([{"image_id": 999, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5,
       "segmentation": {"size": [1, 1], "counts": "0"}}], "image_id 999 is not an image"),
], ids=["not_a_list", "no_segmentation", "unknown_image"])
def test_eval_results_of_the_wrong_shape(sample, tmp_path, results, message):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    one_error(run_script("eval.py", "--ann", sample[0], "--results", path, "--out", tmp_path / "out",
                         "--iou-types", "segm"), message)


# ---- train.py / infer.py: the data set ----

def test_train_annotations_not_json(not_json, tmp_path):
    one_error(run_script("train.py", "--config", "fassst_cpu_sample", "--ann", not_json,
                         "--images", tmp_path, "--out", tmp_path / "run"),
              "broken.json: not a readable COCO json")


def test_train_annotations_not_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    one_error(run_script("train.py", "--config", "fassst_cpu_sample", "--ann", path,
                         "--images", tmp_path, "--out", tmp_path / "run"),
              "list.json: not a readable COCO json")


def test_train_validation_set_of_other_classes(sample, tmp_path):
    ann, images = sample
    d = json.loads(open(ann).read())
    d["categories"] = d["categories"][:3]
    d["annotations"] = [a for a in d["annotations"] if a["category_id"] in (1, 2, 3)]
    path = tmp_path / "three_classes.json"
    path.write_text(json.dumps(d))
    one_error(run_script("train.py", "--config", "fassst_cpu_sample", "--val-ann", path,
                         "--val-images", images, "--out", tmp_path / "run"),
              "three_classes.json: categories", "class indices would not match")
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_train_truncated_image_fails_or_with_the_flag_is_skipped(sample, tmp_path):
    """A training set with a JPEG cut to its first 2,000 bytes: train.py names it and stops; with
    --skip-bad-images it trains to the end and the epoch counts show the skipped image."""
    ann, images = sample
    with open(ann) as f:
        doc = json.load(f)
    keep = ["labelme_voc_2011_000003.jpg", "labelme_voc_2011_000025.jpg"]
    doc["images"] = [im for im in doc["images"] if im["file_name"] in keep]
    ids = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in ids]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in keep:
        data = open(os.path.join(images, name), "rb").read()
        (folder / name).write_bytes(data[:2000] if name == keep[0] else data)
    sub = tmp_path / "two.json"
    sub.write_text(json.dumps(doc))
    base = ["--config", "fassst_cpu_sample", "--ann", sub, "--images", folder, "--iters", 2,
            "--workers", 0]
    one_error(run_script("train.py", *base, "--out", tmp_path / "strict"),
              "labelme_voc_2011_000003.jpg: truncated JPEG")
    done = run_script("train.py", *base, "--out", tmp_path / "skip", "--skip-bad-images")
    assert done.returncode == 0, done.stderr[-3000:]
    log = (tmp_path / "skip" / "caffe.log").read_text()  # the run's stderr, logging included
    assert "skipping image" in log and "labelme_voc_2011_000003.jpg: truncated JPEG" in log
    assert "skipped_images 1" in log


def test_infer_missing_weights(sample, tmp_path):
    one_error(run_script("infer.py", "--config", "fassst_cpu_sample", "--weights", tmp_path / "w.caffemodel",
                         "--input", sample[1], "--out", tmp_path / "out"),
              "w.caffemodel: no such caffemodel")


def test_infer_missing_onnx_model(sample, tmp_path):
    one_error(run_script("infer.py", "--config", "fassst_cpu_sample", "--backend", "onnxruntime",
                         "--weights", tmp_path / "m.onnx", "--input", tmp_path / "nothing",
                         "--out", tmp_path / "out"), "m.onnx: no such ONNX model")


def test_infer_onnx_model_not_onnx(sample, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model" * 10)
    one_error(run_script("infer.py", "--config", "fassst_cpu_sample", "--backend", "onnxruntime",
                         "--weights", junk, "--input", sample[1], "--out", tmp_path / "out"),
              "junk.onnx: ONNX Runtime cannot load it")


# ---- merge_bn.py, export_onnx.py ----

def test_merge_bn_missing_prototxt(tmp_path):
    one_error(run_script("merge_bn.py", tmp_path / "net.prototxt", tmp_path / "net.caffemodel",
                         "--out", tmp_path / "merged"), "net.prototxt: no such prototxt")


def test_merge_bn_not_a_prototxt(tmp_path):
    prototxt, caffemodel = tmp_path / "net.prototxt", tmp_path / "net.caffemodel"
    prototxt.write_text("layer { name: 'conv' type: 'Convolution' bottom: \n")
    caffemodel.write_bytes(b"")
    one_error(run_script("merge_bn.py", prototxt, caffemodel, "--out", tmp_path / "merged"),
              "net.prototxt: not a Caffe net prototxt")


def test_export_onnx_missing_weights(tmp_path):
    one_error(run_script("export_onnx.py", "--config", "fassst_cpu_sample",
                         "--weights", tmp_path / "w.caffemodel", "--out", tmp_path / "m.onnx"),
              "w.caffemodel: no such caffemodel")


# ---- make_sample_data.py, convert_backbone.py, classify.py ----

def test_make_sample_data_out_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    one_error(run_script("make_sample_data.py", "--out", path), "file: exists and is not a folder")


def test_make_sample_data_refuses_a_folder_of_something_else(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    one_error(run_script("make_sample_data.py", "--out", tmp_path), "not a sample data set")
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_convert_backbone_out_dir_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    one_error(run_script("convert_backbone.py", "--out-dir", path), "file: exists and is not a folder")


def test_classify_names_each_unreadable_image_and_classifies_the_rest(sample, tmp_path):
    photo = os.path.join(sample[1], "labelme_voc_2011_000025.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    cut = tmp_path / "cut.jpg"
    with open(photo, "rb") as f:
        cut.write_bytes(f.read()[:2000])
    done = run_script("classify.py", tmp_path / "gone.jpg", text, cut, photo, "--top", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3 and "gone.jpg: no such image file" in errors[0]
    assert "notes.jpg: OpenCV cannot decode it" in errors[1]
    assert "cut.jpg: truncated JPEG" in errors[2]
    assert photo in done.stdout and "  1. " in done.stdout


# ---- weights that do not fit (Caffe would abort the process: refused before it sees them) ----

@pytest.fixture(scope="module")
def sample_model(tmp_path_factory):
    """A fassst_cpu_sample deploy caffemodel (fillers: only its shapes matter here)."""
    import caffe
    from fassst.config import load_config
    from fassst.net.fassst_net import build_net
    from fassst.net.load import caffe_net
    path = tmp_path_factory.mktemp("weights") / "cpu_sample.caffemodel"
    caffe_net(build_net(load_config("fassst_cpu_sample"), "deploy"), caffe.TEST).save(str(path))
    return path


def test_infer_weights_of_another_config(sample, sample_model, tmp_path):
    one_error(run_script("infer.py", "--config", "fassst_416_coco", "--weights", sample_model,
                         "--input", sample[1], "--out", tmp_path / "out"),
              "cpu_sample.caffemodel does not fit config fassst_416_coco: layer 'iam/conv1' blob 0 "
              "is (64, 96, 3, 3) in the file, (192, 96, 3, 3) in the net")


def test_train_unfolded_imagenet_weights_for_a_folded_config(tmp_path):
    from fassst.weights.convert_mobilenet_v2 import convert
    unfolded = convert(log=lambda *a: None)[1]
    one_error(run_script("train.py", "--config", "fassst_cpu_sample", "--weights", unfolded,
                         "--out", tmp_path / "run"),
              "does not fit config fassst_cpu_sample: layer 'features.0.0' has 1 blob(s) in "
              "the file, 2 in the net", "not BatchNorm-folded", "fold_backbone_bn")
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_merge_bn_weights_of_another_net(sample_model, tmp_path):
    from fassst.weights.convert_mobilenet_v2 import convert
    prototxt = convert(log=lambda *a: None)[0]
    one_error(run_script("merge_bn.py", prototxt, sample_model, "--out", tmp_path / "merged"),
              "cpu_sample.caffemodel does not fit this net: layer 'features.0.0' has 2 blob(s) in "
              "the file, 1 in the net")


def test_export_onnx_weights_not_a_caffemodel(tmp_path):
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff" * 64)
    one_error(run_script("export_onnx.py", "--config", "fassst_cpu_sample", "--weights", junk,
                         "--out", tmp_path / "m.onnx"), "junk.caffemodel: not a caffemodel")


def test_export_onnx_weights_of_another_config(sample_model, tmp_path):
    one_error(run_script("export_onnx.py", "--config", "fassst_416_coco", "--weights", sample_model,
                         "--out", tmp_path / "m.onnx"),
              "layer iam/conv1: weights (64, 96, 3, 3) do not give num_output 192")
