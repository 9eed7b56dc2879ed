"""Inputs for inference: one image, a folder of images, or a video.

Reading is left to the caller (inference/run.py), image by image and frame by frame, so that one
unreadable input can be skipped and counted while the rest is processed.
"""
import os

import cv2

from fassst.errors import InputError, MissingFileError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def is_video(path):
    return path.lower().endswith(VIDEO_EXTS)


def image_files(path):
    """[(file name, path)] of an image file, or of every image in a folder (sorted by name)."""
    if os.path.isdir(path):
        names = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTS))
        if not names:
            raise MissingFileError(f"{path}: no images ({', '.join(IMAGE_EXTS)}) in this folder")
        return [(name, os.path.join(path, name)) for name in names]
    if os.path.isfile(path):
        return [(os.path.basename(path), path)]
    raise MissingFileError(f"{path}: no such image, folder or video")


class Video:
    """A video file: `fps` (25 if the file does not say), `declared_frames` (the count its header
    gives; 0 if none), and its frames as (index, RGB frame) when iterated.

    A frame that cannot be decoded comes as (index, None): one that fails in the middle of the
    stream, or one of those the header declares after the stream stops early (a truncated file).
    """

    def __init__(self, path):
        self.path = path
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise InputError(f"{path}: OpenCV cannot open this video")
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.declared_frames = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        cap.release()

    def __iter__(self):
        cap = cv2.VideoCapture(self.path)
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if ok:
                    yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                elif i < self.declared_frames:
                    yield i, None
                else:
                    return
                i += 1
        finally:
            cap.release()
