"""Runs the converted MobileNetV2 + classifier on photos: probabilities and top-k names."""
import numpy as np

import caffe
from fassst.imagenet.labels import class_names
from fassst.imagenet.preprocess import imagenet_input
from fassst.images.read import read_rgb


class ImageNetClassifier:
    def __init__(self, prototxt, caffemodel):
        self.net = caffe.Net(prototxt, caffe.TEST, weights=caffemodel)
        self.names = class_names()

    def probabilities(self, rgb):
        """(1000,) softmax probabilities for one (H, W, 3) uint8 RGB image."""
        self.net.blobs["data"].data[...] = imagenet_input(rgb)
        return self.net.forward()["prob"][0].copy()

    def top_k(self, path, k=5):
        """[(class id, name, probability)] for the image file `path`, most probable first."""
        prob = self.probabilities(read_rgb(path))
        order = np.argsort(-prob)[:k]
        return [(int(i), self.names[i], float(prob[i])) for i in order]
