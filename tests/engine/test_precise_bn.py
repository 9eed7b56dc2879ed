"""Precise BN: the stored statistics become the exact mean of the batch statistics over the
given batches, for the batch-statistics BatchNorms only; the frozen backbone is untouched."""
import numpy as np

import caffe

from fassst.bench.timing import net_from_spec
from fassst.config import load_config
from fassst.data.layer import data_layer_tops
from fassst.datasets.sample_data import ensure_sample_data
from fassst.engine.precise_bn import recompute_bn_stats
from fassst.net.fassst_net import build_net
from fassst.weights.convert_mobilenet_v2 import imagenet_weights


def test_precise_bn_is_the_mean_of_batch_statistics(tmp_path):
    ann, images = ensure_sample_data()
    cfg = load_config("fassst_cpu_sample", num_classes=10)
    start = str(tmp_path / "start.caffemodel")
    net = net_from_spec(build_net(cfg, "train"), caffe.TRAIN)
    net.copy_from(imagenet_weights(cfg))
    net.save(start)
    out = str(tmp_path / "precise.caffemodel")
    names = recompute_bn_stats(cfg, start, ann, images, out, batches=3, quiet=True)
    assert "p1/lateral/bn" in names and "tail/conv1/bn" in names
    assert not any(n.startswith("features") for n in names)  # frozen ImageNet statistics

    # Independently: the same three batches, each BN's last-batch statistics alone (fraction 0).
    proto = build_net(cfg, "train", data_layer=lambda ns: data_layer_tops(
        ns, cfg, ann, images, seed=0, workers=0, augment=False))
    for layer in proto.layer:
        if layer.name in names:
            layer.batch_norm_param.moving_average_fraction = 0.0
    ref = net_from_spec(proto, caffe.TRAIN)
    ref.copy_from(start)
    sums = {n: [0.0, 0.0] for n in names}
    for _ in range(3):
        ref.forward()
        for n in names:
            sums[n][0] = sums[n][0] + ref.params[n][0].data
            sums[n][1] = sums[n][1] + ref.params[n][1].data

    got = caffe.Net(_deploy(cfg, tmp_path), out, caffe.TEST)
    before = caffe.Net(_deploy(cfg, tmp_path), start, caffe.TEST)
    for n in names:
        mean, var, factor = (b.data for b in got.params[n])
        assert factor[0] == 3, n
        np.testing.assert_allclose(mean / 3, sums[n][0] / 3, rtol=1e-4, atol=1e-6, err_msg=n)
        np.testing.assert_allclose(var / 3, sums[n][1] / 3, rtol=1e-4, atol=1e-6, err_msg=n)
    for n, blobs in before.params.items():
        if n.startswith("features"):
            for x, y in zip(blobs, got.params[n]):
                np.testing.assert_array_equal(x.data, y.data, err_msg=n)


def _deploy(cfg, tmp_path):
    path = tmp_path / "deploy.prototxt"
    path.write_text(str(build_net(cfg, "deploy")))
    return str(path)
