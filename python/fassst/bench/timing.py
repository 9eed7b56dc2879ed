"""Times a pycaffe net's forward and backward passes: warm-up, then the median of repeats."""
import statistics
import time

import caffe

from fassst.net.load import caffe_net


def net_from_spec(proto, phase=caffe.TEST):
    """caffe.Net from a NetParameter, with force_backward so every bottom gets a diff."""
    proto.force_backward = True
    return caffe_net(proto, phase)


# "wall": elapsed time. "cpu": this thread's CPU time, which leaves out the time it waits for a
# core on a machine shared with other jobs (Caffe's CPU layers run on the calling thread; so
# does OpenBLAS with OPENBLAS_NUM_THREADS=1, with more threads their work would be missed).
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def time_nets(nets, warmup=2, repeats=10, clock="wall"):
    """Median milliseconds of (forward, backward) per net over `repeats` runs after `warmup`; the
    nets take turns every run, so load from other processes hits them alike. clock: a CLOCKS
    key."""
    now = CLOCKS[clock]
    times = [([], []) for _ in nets]
    for i in range(warmup + repeats):
        for (fwd, bwd), net in zip(times, nets):
            t0 = now()
            net.forward()
            t1 = now()
            net.backward()
            t2 = now()
            if i >= warmup:
                fwd.append((t1 - t0) * 1e3)
                bwd.append((t2 - t1) * 1e3)
    return [(statistics.median(f), statistics.median(b)) for f, b in times]


def time_net(net, warmup=2, repeats=10):
    """Median milliseconds of (forward, backward) over `repeats` runs after `warmup` runs."""
    return time_nets([net], warmup, repeats)[0]
