"""Times a pycaffe net's forward and backward passes: warm-up, then the median of repeats."""
import statistics
import time

import caffe

from fassst.net.load import caffe_net


def net_from_spec(proto, phase=caffe.TEST):
    """caffe.Net from a NetParameter, with force_backward so every bottom gets a diff."""
    proto.force_backward = True
    return caffe_net(proto, phase)


def time_nets(nets, warmup=2, repeats=10):
    """Median milliseconds of (forward, backward) per net over `repeats` runs after `warmup`; the
    nets take turns every run, so load from other processes hits them alike."""
    times = [([], []) for _ in nets]
    for i in range(warmup + repeats):
        for (fwd, bwd), net in zip(times, nets):
            t0 = time.perf_counter()
            net.forward()
            t1 = time.perf_counter()
            net.backward()
            t2 = time.perf_counter()
            if i >= warmup:
                fwd.append((t1 - t0) * 1e3)
                bwd.append((t2 - t1) * 1e3)
    return [(statistics.median(f), statistics.median(b)) for f, b in times]


def time_net(net, warmup=2, repeats=10):
    """Median milliseconds of (forward, backward) over `repeats` runs after `warmup` runs."""
    return time_nets([net], warmup, repeats)[0]
