"""ResNet-50 in torchvision's layout plus an FPN on C3, C4, C5, as Caffe layers built with NetSpec.

ResNet-50 (torchvision `resnet50`, v1.5: the stride of a downsampling block is on its 3x3 conv):
stem `conv1` 7x7/s2 to 64 + `bn1` + ReLU + `maxpool` 3x3/s2 (pad 1, floor rounding as PyTorch:
the fork's PoolingParameter.ceil_mode false; Caffe's default ceil rounding would give one extra
row and column), then bottleneck stages layer1..layer4 of 3, 4, 6, 3 blocks with widths
64/128/256/512 and outputs 256/512/1024/2048. Block `layerK.J`: conv1 1x1 + bn1 + ReLU, conv2
3x3 (stride 2 in block 0 of layer2..4) + bn2 + ReLU, conv3 1x1 + bn3, plus the input or, in block
0, `downsample.0` (1x1 conv with the block's stride) + `downsample.1` (BN); then ReLU.

Name mapping, torchvision state-dict key prefix P -> Caffe (conversion is this table lookup, as
for MobileNetV2):
    P.weight of a Conv2d                        -> Convolution layer "P", blob 0 (no bias)
    P.running_mean / P.running_var of a BN      -> BatchNorm layer "P", blobs 0 / 1 (blob 2 = 1)
    P.weight / P.bias of a BN                   -> Scale layer "P/scale", blobs 0 / 1
e.g. conv1, bn1, layer1.0.conv1, layer1.0.bn1, layer1.0.downsample.0, layer1.0.downsample.1.
ReLUs are "P/relu" after BN P, and "layerK.J/relu" after the residual sum "layerK.J/add".
torchvision's fc (the ImageNet classifier) is not built.

Blob names: a conv's output blob has the conv's name and BatchNorm, Scale and ReLU work in place
on it; the output of module layerK.J is the blob "layerK.J" (its sum, ReLU in place), the stem's
is "maxpool". BatchNorm eps 1e-5 (nn.BatchNorm2d's default), stated in the prototxt; its blobs
are statistics (lr_mult 0).

Bottom-up stages, the blob that ends each (at input 416: 52, 26, 13):
    C2 layer1.2  stride 4,  256 ch       C4 layer3.5  stride 16, 1024 ch
    C3 layer2.3  stride 8,  512 ch       C5 layer4.2  stride 32, 2048 ch

FPN (Lin et al. 2017; torchvision.ops.FeaturePyramidNetwork with in_channels [512, 1024, 2048]
and 256 out, no extra max-pool level; its module names, so index i = 0, 1, 2 is C3, C4, C5;
torchvision >= 0.13 adds ".0" to these keys in its state dicts):
    fpn.inner_blocks.i   lateral 1x1 conv to 256 (with bias) on C3, C4, C5
    fpn/up5, fpn/up4     top-down x2 upsampling of the level-5 and level-4 maps
    fpn/merge4, fpn/merge3  lateral + upsampled (Eltwise SUM)
    fpn.layer_blocks.i   3x3 output conv to 256 (with bias): P3, P4, P5 at strides 8, 16, 32
No ReLU on the outputs, as in the FPN paper and torchvision.

Upsampling x2 is nearest-neighbour, as torchvision's FPN (F.interpolate, mode "nearest"): a
Deconvolution 2x2/s2 with group = channels whose weights are the constant 1 (lr 0, no bias), so
output (2y + a, 2x + b) = input (y, x). It has a backward on CPU and GPU; the fork's Upsample
layer does the same forward but its backward is empty, so no gradient would reach C4, C5 through
the top-down path. The input side is a multiple of 32 (config.validate), so every map is an exact
half of the one before and the upsampled map matches its lateral without a Crop.
"""
import collections

import caffe
from caffe import layers as L
from caffe import params as P

from fassst.net.blocks import BIAS, FROZEN, WEIGHT

BN_EPS = 1e-5  # torch.nn.BatchNorm2d default, as in torchvision's weights
STEM_CHANNELS = 64
FPN_CHANNELS = 256
EXPANSION = 4
# torchvision resnet50: (module, blocks, bottleneck width, stride of block 0)
LAYER_SETTING = (("layer1", 3, 64, 1), ("layer2", 4, 128, 2), ("layer3", 6, 256, 2),
                 ("layer4", 3, 512, 2))

# bottom-up stage -> (last block's blob, stride, channels)
STAGES = collections.OrderedDict([
    ("C2", ("layer1.2", 4, 256)), ("C3", ("layer2.3", 8, 512)),
    ("C4", ("layer3.5", 16, 1024)), ("C5", ("layer4.2", 32, 2048))])
# FPN level -> (bottom-up stage it starts from, stride); FPN index i = position here
LEVELS = collections.OrderedDict([("P3", ("C3", 8)), ("P4", ("C4", 16)), ("P5", ("C5", 32))])


def _bn_global_stats(phase, freeze_bn):
    # TEST always uses the stored statistics; TRAIN the batch's unless frozen.
    return True if phase == caffe.TEST else bool(freeze_bn)


def conv_bn(ns, bottom, conv_name, bn_name, *, num_output, kernel, stride, relu, phase,
            freeze_bn):
    """Convolution `conv_name` (no bias, pad (k - 1) / 2) + BatchNorm `bn_name` + Scale
    (+ ReLU), all in place on the conv's blob; returns that blob."""
    ns[conv_name] = L.Convolution(
        bottom, name=conv_name, num_output=num_output, kernel_size=kernel, stride=stride,
        pad=(kernel - 1) // 2, bias_term=False, weight_filler=dict(type="msra"))
    top = L.BatchNorm(ns[conv_name], name=bn_name, in_place=True, param=FROZEN,
                      batch_norm_param=dict(use_global_stats=_bn_global_stats(phase, freeze_bn),
                                            eps=BN_EPS))
    top = L.Scale(top, name=bn_name + "/scale", bias_term=True, in_place=True)
    if relu:
        top = L.ReLU(top, name=bn_name + "/relu", in_place=True)
    return top


def bottleneck(ns, bottom, module, c_in, width, stride, phase, freeze_bn):
    """torchvision Bottleneck `module` (e.g. "layer2.0"); (N, c_in, H, W) ->
    (N, 4 width, H / stride, W / stride), the blob named `module`."""
    bn_args = dict(phase=phase, freeze_bn=freeze_bn)
    c_out = width * EXPANSION
    x = conv_bn(ns, bottom, f"{module}.conv1", f"{module}.bn1", num_output=width, kernel=1,
                stride=1, relu=True, **bn_args)
    x = conv_bn(ns, x, f"{module}.conv2", f"{module}.bn2", num_output=width, kernel=3,
                stride=stride, relu=True, **bn_args)
    x = conv_bn(ns, x, f"{module}.conv3", f"{module}.bn3", num_output=c_out, kernel=1,
                stride=1, relu=False, **bn_args)
    shortcut = bottom
    if stride != 1 or c_in != c_out:
        shortcut = conv_bn(ns, bottom, f"{module}.downsample.0", f"{module}.downsample.1",
                           num_output=c_out, kernel=1, stride=stride, relu=False, **bn_args)
    ns[module] = L.Eltwise(x, shortcut, name=f"{module}/add", operation=P.Eltwise.SUM)
    ns[f"{module}/relu"] = L.ReLU(ns[module], name=f"{module}/relu", in_place=True)
    return ns[module]


def resnet50(ns, data, phase, freeze_bn=False):
    """Adds ResNet-50 (no fc) on top `data` (N, 3, H, W); returns {"C2".."C5": top}."""
    bn_args = dict(phase=phase, freeze_bn=freeze_bn)
    x = conv_bn(ns, data, "conv1", "bn1", num_output=STEM_CHANNELS, kernel=7, stride=2,
                relu=True, **bn_args)
    ns.maxpool = L.Pooling(x, name="maxpool", pool=P.Pooling.MAX, kernel_size=3, stride=2,
                           pad=1, ceil_mode=False)
    x, c_in = ns.maxpool, STEM_CHANNELS
    for module, blocks, width, stride in LAYER_SETTING:
        for j in range(blocks):
            x = bottleneck(ns, x, f"{module}.{j}", c_in, width, stride if j == 0 else 1,
                           **bn_args)
            c_in = width * EXPANSION
    return collections.OrderedDict((c, ns[blob]) for c, (blob, _, _) in STAGES.items())


def _conv(ns, name, bottom, kernel):
    # Caffe's xavier (uniform, +-sqrt(3 / fan_in)) is torchvision's FPN init,
    # kaiming_uniform_(a=1); biases 0 as there.
    ns[name] = L.Convolution(bottom, name=name, param=[WEIGHT, BIAS], convolution_param=dict(
        num_output=FPN_CHANNELS, kernel_size=kernel, pad=kernel // 2,
        weight_filler=dict(type="xavier"), bias_filler=dict(type="constant", value=0)))
    return ns[name]


def _upsample2(ns, name, bottom):
    """Nearest x2 as a fixed depthwise 2x2/s2 Deconvolution of ones (see the module doc)."""
    ns[name] = L.Deconvolution(bottom, name=name, param=[dict(lr_mult=0, decay_mult=0)],
                               convolution_param=dict(
                                   num_output=FPN_CHANNELS, group=FPN_CHANNELS, kernel_size=2,
                                   stride=2, bias_term=False,
                                   weight_filler=dict(type="constant", value=1)))
    return ns[name]


def fpn(ns, stages):
    """FPN on {"C3", "C4", "C5": top}; returns {"P3", "P4", "P5": top}, 256 channels each."""
    levels = list(LEVELS)  # P3, P4, P5: top-down runs from the end
    inner = [_conv(ns, f"fpn.inner_blocks.{i}", stages[LEVELS[p][0]], 1)
             for i, p in enumerate(levels)]
    top_down = inner[-1]
    merged = [top_down]
    for i in range(len(levels) - 2, -1, -1):
        up = _upsample2(ns, f"fpn/up{levels[i + 1][1:]}", top_down)
        name = f"fpn/merge{levels[i][1:]}"
        ns[name] = L.Eltwise(inner[i], up, name=name, operation=P.Eltwise.SUM)
        top_down = ns[name]
        merged.insert(0, top_down)
    return collections.OrderedDict(
        (p, _conv(ns, f"fpn.layer_blocks.{i}", merged[i], 3)) for i, p in enumerate(levels))


def resnet50_fpn(ns, data, phase, freeze_bn=False):
    """ResNet-50 + FPN on `data`. phase: caffe.TRAIN or caffe.TEST (BatchNorm's
    use_global_stats); freeze_bn: in TRAIN, use the stored statistics instead of the batch's.
    Returns (bottom-up {"C2".."C5": top}, FPN {"P3", "P4", "P5": top})."""
    stages = resnet50(ns, data, phase, freeze_bn)
    return stages, fpn(ns, stages)
