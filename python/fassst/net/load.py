"""A NetParameter (NetSpec's output, or an edited prototxt) as a caffe.Net. pycaffe reads nets
only from files, so the text goes through a temporary prototxt that is removed again. Weights
are checked against the net before Caffe copies them (net/weights_fit.py): a misfit would abort
the process inside Caffe."""
import os
import tempfile

import caffe

from fassst.net.weights_fit import check_fits


def caffe_net(net_param, phase, weights=None, cfg=None, complete=False):
    """The net, with `weights` (a .caffemodel) copied in if given; cfg names the config in a
    WeightsMismatch. complete: the file must hold every layer with weights (check_fits)."""
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(str(net_param))
    try:
        net = caffe.Net(f.name, phase)
    finally:
        os.unlink(f.name)
    if weights:
        check_fits(net, weights, cfg, complete=complete)
        net.copy_from(weights)
    return net


def use_device(gpu=None):
    """Runs Caffe on the CPU (gpu None) or on GPU `gpu` (a GPU build), for the nets made after."""
    if gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)
        caffe.set_mode_gpu()


def check_config_weights(cfg, weights):
    """Raises WeightsMismatch (or MissingFileError) unless `weights` fits cfg's train net, the
    net a training run copies them into (built here with Input layers, one image, fillers)."""
    from fassst.net.fassst_net import build_net
    check_fits(caffe_net(build_net(cfg, "train", batch_size=1), caffe.TRAIN), weights, cfg)
