"""Times a pycaffe net's forward and backward passes: warm-up, then the median of repeats."""
import statistics
import time

import caffe

from fassst.net.load import caffe_net


def net_from_spec(proto, phase=caffe.TEST):
    """caffe.Net from a NetParameter, with force_backward so every bottom gets a diff."""
    proto.force_backward = True
    return caffe_net(proto, phase)


def time_net(net, warmup=2, repeats=10):
    """Median milliseconds of (forward, backward) over `repeats` runs after `warmup` runs."""
    fwd, bwd = [], []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        net.forward()
        t1 = time.perf_counter()
        net.backward()
        t2 = time.perf_counter()
        if i >= warmup:
            fwd.append((t1 - t0) * 1e3)
            bwd.append((t2 - t1) * 1e3)
    return statistics.median(fwd), statistics.median(bwd)
