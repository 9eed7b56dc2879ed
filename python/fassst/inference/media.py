"""Inputs for inference: one image, a folder of images, or a video, as (name, RGB frame) pairs."""
import os

import cv2

from fassst.errors import InputError, MissingFileError
from fassst.image_io import read_rgb

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def is_video(path):
    return path.lower().endswith(VIDEO_EXTS)


def iter_images(path):
    """(file name, RGB uint8 image) for an image file or every image in a folder (sorted)."""
    if os.path.isdir(path):
        names = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTS))
        if not names:
            raise MissingFileError(f"{path}: no images ({', '.join(IMAGE_EXTS)}) in this folder")
        for name in names:
            yield name, read_rgb(os.path.join(path, name))
    elif os.path.isfile(path):
        yield os.path.basename(path), read_rgb(path)
    else:
        raise MissingFileError(f"{path}: no such image, folder or video")


class Video:
    """A video file: `fps` (25 if the file does not say), and its frames as (index, RGB frame)
    when iterated."""

    def __init__(self, path):
        self.path = path
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise InputError(f"{path}: OpenCV cannot open this video")
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        cap.release()

    def __iter__(self):
        cap = cv2.VideoCapture(self.path)
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                i += 1
        finally:
            cap.release()
