"""A NetParameter (NetSpec's output, or an edited prototxt) as a caffe.Net. pycaffe reads nets
only from files, so the text goes through a temporary prototxt that is removed again."""
import os
import tempfile

import caffe


def caffe_net(net_param, phase, weights=None):
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(str(net_param))
    try:
        return caffe.Net(f.name, phase, weights=weights) if weights else caffe.Net(f.name, phase)
    finally:
        os.unlink(f.name)
