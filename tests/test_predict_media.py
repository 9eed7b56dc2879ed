"""inference/run.py: a predictor over an image, a folder of images or a video (scripts/infer.py's
work), with a stand-in predictor: one instance, the image's centre quarter."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from fassst.data.sample_data import ensure_sample_data
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
    results = predict_media(centre_instance, str(folder), str(out), ["thing"], [7],
                            image_ids={NAMES[1]: 42}, log=lines.append)
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
    results = predict_media(centre_instance, str(video), str(tmp_path / "out"), ["thing"], [7])
    assert [r["image_id"] for r in results] == [1, 2, 3]
    assert os.path.getsize(tmp_path / "out" / "clip.mp4") > 0
