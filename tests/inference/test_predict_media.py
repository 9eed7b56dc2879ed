"""inference/run.py: a predictor over an image, a folder of images or a video (scripts/infer.py's
work), with a stand-in predictor: one instance, the image's centre quarter. Unreadable images
and frames are skipped, named and counted, or stop a strict run."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fassst.build_paths import REPO_ROOT
from fassst.datasets.sample_data import ensure_sample_data
from fassst.images.read import ImageReadError
from fassst.inference import media
from fassst.inference.run import predict_media

NAMES = ["labelme_voc_2011_000025.jpg", "stardist_nuclei_2d_y0_x0.png"]


def centre_instance(image):
    h, w = image.shape[:2]
    masks = np.zeros((1, h, w), bool)
    masks[0, h // 4:3 * h // 4, w // 4:3 * w // 4] = True
    return dict(boxes=np.float32([[w // 4, h // 4, 3 * w // 4, 3 * h // 4]]),
                scores=np.float32([0.9]), labels=np.int64([0]), masks=masks)


@pytest.fixture(scope="module")
def images():
    return ensure_sample_data()[1]


@pytest.fixture
def folder(tmp_path, images):
    path = tmp_path / "photos"
    path.mkdir()
    for name in NAMES:
        shutil.copyfile(os.path.join(images, name), path / name)
    return path


def _video(path, images, frames=3):
    frame = cv2.imread(os.path.join(images, NAMES[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, frame.shape[1::-1])
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path


def test_folder_gives_an_overlay_and_results_per_image(folder, tmp_path):
    out = tmp_path / "out"
    lines = []
    run = predict_media(centre_instance, str(folder), str(out), ["thing"], [7],
                        image_ids={NAMES[1]: 42}, log=lines.append)
    results = run.results
    assert (run.processed, run.skipped) == (2, 0)
    assert sorted(os.listdir(out)) == sorted(os.path.splitext(n)[0] + ".png" for n in NAMES)
    assert [r["image_id"] for r in results] == [1, 42]  # file order; ids from the json by name
    assert {r["category_id"] for r in results} == {7}
    assert lines == [f"{n}: 1 instances" for n in NAMES]
    small = cv2.imread(str(out / "stardist_nuclei_2d_y0_x0.png"))
    assert small.shape == (384, 384, 3)  # a 128 px tile is drawn enlarged
    json.dumps(results)


def test_video_gives_an_mp4_and_results_per_frame(images, tmp_path):
    video = _video(tmp_path / "clip.avi", images)
    assert media.Video(str(video)).fps == 5
    run = predict_media(centre_instance, str(video), str(tmp_path / "out"), ["thing"], [7])
    assert [r["image_id"] for r in run.results] == [1, 2, 3] and run.skipped == 0
    assert os.path.getsize(tmp_path / "out" / "clip.mp4") > 0


def _add_bad_files(folder, images):
    """A text file, a JPEG cut short and an empty PNG among the photos (sorted first, so they
    come first)."""
    (folder / "a_notes.jpg").write_text("not a photo")
    with open(os.path.join(images, NAMES[0]), "rb") as f:
        (folder / "a_cut.jpg").write_bytes(f.read()[:2000])
    (folder / "a_empty.png").write_bytes(b"")


def test_unreadable_images_are_skipped_named_and_counted(folder, images, tmp_path):
    _add_bad_files(folder, images)
    warnings = []
    run = predict_media(centre_instance, str(folder), str(tmp_path / "out"), ["thing"], [7],
                        log=lambda *a: None, warn=warnings.append)
    assert (run.processed, run.skipped) == (2, 3)
    assert len(warnings) == 3
    assert "a_cut.jpg: truncated JPEG" in warnings[0] and "a_empty.png: empty file" in warnings[1]
    assert "a_notes.jpg: OpenCV cannot" in warnings[2]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.splitext(n)[0] + ".png" for n in NAMES)
    with pytest.raises(ImageReadError, match="a_cut.jpg: truncated JPEG"):
        predict_media(centre_instance, str(folder), str(tmp_path / "strict"), ["thing"], [7],
                      strict=True, log=lambda *a: None)


def test_truncated_video_frames_are_skipped_named_and_counted(images, tmp_path):
    whole = _video(tmp_path / "whole.avi", images, frames=10).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[:len(whole) * 6 // 10])
    video = media.Video(str(cut))
    assert video.declared_frames == 10
    warnings = []
    run = predict_media(centre_instance, str(cut), str(tmp_path / "out"), ["thing"], [7],
                        warn=warnings.append)
    assert 0 < run.processed < 10 and run.processed + run.skipped == 10
    assert [r["image_id"] for r in run.results] == list(range(1, run.processed + 1))
    assert len(warnings) == 1 and f"skipped {run.skipped} of the 10 frames of {cut}" in warnings[0]
    with pytest.raises(ImageReadError, match=f"cut.avi: frame {run.processed} .of 10"):
        predict_media(centre_instance, str(cut), str(tmp_path / "strict"), ["thing"], [7],
                      strict=True)


@pytest.fixture(scope="module")
def sample_model(tmp_path_factory):
    """A fassst_cpu_sample deploy caffemodel (fillers: the predictions do not matter here)."""
    import caffe
    from fassst.config import load_config
    from fassst.net.fassst_net import build_net
    from fassst.net.load import caffe_net
    path = tmp_path_factory.mktemp("weights") / "cpu_sample.caffemodel"
    caffe_net(build_net(load_config("fassst_cpu_sample"), "deploy"), caffe.TEST).save(str(path))
    return str(path)


def _infer(*args):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "infer.py"),
                           "--config", "fassst_cpu_sample", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_infer_script_skips_unreadable_images_and_exits_1(folder, images, sample_model, tmp_path):
    _add_bad_files(folder, images)
    done = _infer("--weights", sample_model, "--input", folder, "--out", tmp_path / "out")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning: skipped")]
    assert [w.split("/")[-1].split(":")[0] for w in warned] == ["a_cut.jpg", "a_empty.png",
                                                                "a_notes.jpg"]
    assert all(f"{n}: " in done.stdout for n in NAMES) and "2 predicted, 3 skipped" in done.stdout
    assert len(os.listdir(tmp_path / "out")) == 3  # two overlays and results.json

    strict = _infer("--weights", sample_model, "--input", folder, "--out", tmp_path / "strict",
                    "--strict")
    assert strict.returncode == 1 and "Traceback" not in strict.stderr, strict.stderr
    errors = [line for line in strict.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "a_cut.jpg: truncated JPEG" in errors[0]
    assert not any(n in strict.stdout for n in NAMES)  # stopped at the first
