"""ROI feature fusion at paper size, two ways: the fused ROIFeatureFusion layer, and the same
function from Caffe's stock layers (group Deconvolution with a bilinear filler as x2 upsampling,
Eltwise sum, ReLU) for comparison."""
import caffe
import numpy as np
from caffe import layers as L

R, D, S = 36, 256, 7  # paper: n = 36 ROIs, D = 256 channels, R3 7x7, R2 14x14, R1 28x28


def _inputs(ns, rois=R, channels=D, side=S):
    ns.r1, ns.r2, ns.r3 = [L.Input(shape=dict(dim=[rois, channels, k * side, k * side]))
                           for k in (4, 2, 1)]


def fused(rois=R, channels=D, side=S):
    ns = caffe.NetSpec()
    _inputs(ns, rois, channels, side)
    ns.rff = L.ROIFeatureFusion(ns.r1, ns.r2, ns.r3)
    return ns.to_proto()


def _up2_deconv(bottom, channels):
    # Caffe's idiom for bilinear x2: per-channel 4x4 deconvolution, stride 2, pad 1, frozen.
    return L.Deconvolution(bottom, param=dict(lr_mult=0, decay_mult=0), convolution_param=dict(
        num_output=channels, group=channels, kernel_size=4, stride=2, pad=1, bias_term=False,
        weight_filler=dict(type="bilinear")))


def stock(rois=R, channels=D, side=S):
    ns = caffe.NetSpec()
    _inputs(ns, rois, channels, side)
    ns.up3 = _up2_deconv(ns.r3, channels)
    ns.sum2 = L.Eltwise(ns.r2, ns.up3)
    ns.up2 = _up2_deconv(ns.sum2, channels)
    ns.sum1 = L.Eltwise(ns.r1, ns.up2)
    ns.rff = L.ReLU(ns.sum1, in_place=True)
    return ns.to_proto()


def fill(net, seed=0):
    rng = np.random.default_rng(seed)
    for name in ("r1", "r2", "r3"):
        net.blobs[name].data[...] = rng.standard_normal(net.blobs[name].shape)
