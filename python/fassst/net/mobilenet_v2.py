"""MobileNetV2 (width 1.0) as Caffe layers, in torchvision's layout, built with NetSpec.

Layout (torchvision `mobilenet_v2`): stem conv 3x3/s2 to 32 channels (`features.0`), 17
inverted-residual blocks (`features.1` .. `features.17`; block i is `features.{i+1}`), a 1x1 conv
to 1280 (`features.18`), and for ImageNet a global average pool and Linear 1280 -> 1000
(`classifier.1`). Every torchvision ConvBNReLU becomes Convolution (bias_term false) + BatchNorm
+ Scale (bias) + ReLU6; depthwise convs are DepthwiseConvolution (the project's layer: stock
convolution_param with group = channels, the grouped Convolution's blob shapes). A block adds its
input back (Eltwise SUM) when its stride is 1 and its channels do not change.

Name mapping, torchvision state-dict key prefix P -> Caffe (conversion is this table lookup):
    P.weight of a Conv2d                       -> (Depthwise)Convolution layer "P", blob 0
    P.running_mean / P.running_var of a BN     -> BatchNorm layer "P", blobs 0 / 1 (blob 2 = 1)
    P.num_batches_tracked                      -> (training counter, no Caffe counterpart)
    P.weight / P.bias of a BN                  -> Scale layer "P/scale", blobs 0 / 1
    classifier.1.weight / .bias                -> InnerProduct layer "classifier.1", blobs 0 / 1
ReLU6 layers are "P/relu" (P the BN before them); the residual sums are "features.K/add".

Blob names: each conv's output blob has the conv's name and BatchNorm, Scale and ReLU6 work in
place on it, except that the output of torchvision module features.K is always the blob
"features.K" (the last layer of the module writes it), so a head taps a module by its name.

Stages by resolution (docs/DESIGN.md, "The network"), the blob that ends each:
    S1 features.1  stride 2,  16 ch   (stem + block 0)
    S2 features.3  stride 4,  24 ch   (blocks 1-2)
    S3 features.6  stride 8,  32 ch   (blocks 3-5)
    S4 features.10 stride 16, 64 ch   (blocks 6-9)
    S5 features.13 stride 16, 96 ch   (blocks 10-12)
    S6 features.16 stride 32, 160 ch  (blocks 13-15)
    S7 features.18 stride 32, 1280 ch (block 16 + conv 1x1 1280)

BatchNorm: eps 1e-5 (torchvision's nn.BatchNorm2d default), stated in the prototxt. Its three
blobs are statistics that Caffe's forward pass updates, never gradients, so lr_mult is 0.
"""
import collections

import caffe
from caffe import layers as L
from caffe import params as P

BN_EPS = 1e-5  # torch.nn.BatchNorm2d default, as in the torchvision weights
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
NUM_CLASSES = 1000

# torchvision's inverted_residual_setting: expansion t, output channels c, repeats n, stride s
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# stage name -> torchvision module whose output blob ends the stage
STAGE_ENDS = collections.OrderedDict([
    ("S1", "features.1"), ("S2", "features.3"), ("S3", "features.6"), ("S4", "features.10"),
    ("S5", "features.13"), ("S6", "features.16"), ("S7", "features.18")])
STAGE_STRIDES = {"S1": 2, "S2": 4, "S3": 8, "S4": 16, "S5": 16, "S6": 32, "S7": 32}


def block_settings():
    """One (expansion, in_channels, out_channels, stride) per block 0..16, in order."""
    out, c_in = [], STEM_CHANNELS
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for i in range(n):
            out.append((t, c_in, c, s if i == 0 else 1))
            c_in = c
    return out


def _bn_global_stats(phase, freeze_bn):
    # TEST always uses the stored statistics; TRAIN uses batch statistics unless frozen
    # (small detection batches are usually trained with frozen BN).
    return True if phase == caffe.TEST else bool(freeze_bn)


def _lr_params(mult, count, decay):
    """`param` specs for a layer's `count` blobs at learning-rate multiplier `mult`; None (Caffe's
    defaults, nothing written) at 1, so the prototxt changes only where a config asks."""
    if mult == 1:
        return {}
    return dict(param=[dict(lr_mult=mult, decay_mult=decay if mult else 0)] * count)


def conv_bn(ns, bottom, conv_name, bn_name, *, num_output, kernel, stride, group, relu, phase,
            freeze_bn, out_name=None, lr_mult=1, affine_lr_mult=1, fold_bn=False):
    """Convolution `conv_name` + BatchNorm `bn_name` + Scale (+ ReLU6); returns the last top.

    All of it works in place on the conv's blob, except that with `out_name` the last layer
    writes a new blob of that name (a torchvision module's output, see the module docstring).
    lr_mult / affine_lr_mult scale the learning rate of the conv weights / the Scale's
    gamma and beta (0 = frozen; BatchNorm's statistics never train).
    fold_bn: no BatchNorm or Scale; the conv has a bias and carries them folded in
    (weights: convert_mobilenet_v2.convert_folded). Why: docs/DESIGN.md, "Training that converges".
    """
    # Depthwise (group = channels): the project's DepthwiseConvolution layer, same parameters
    # and blobs as the grouped Convolution, which Caffe runs as one GEMM per channel.
    conv = L.DepthwiseConvolution if group > 1 and group == num_output else L.Convolution
    conv_kw = dict(num_output=num_output, kernel_size=kernel, stride=stride, pad=(kernel - 1) // 2,
                   group=group, bias_term=fold_bn, weight_filler=dict(type="msra"))
    if fold_bn:
        conv_kw["bias_filler"] = dict(type="constant", value=0)
    ns[conv_name] = conv(bottom, name=conv_name, convolution_param=conv_kw,
                         **_lr_params(lr_mult, 2 if fold_bn else 1, 1))
    last_in_place = out_name is None
    top = ns[conv_name]
    if not fold_bn:
        top = L.BatchNorm(top, name=bn_name, in_place=True,
                          batch_norm_param=dict(use_global_stats=_bn_global_stats(phase, freeze_bn),
                                                eps=BN_EPS),
                          param=[dict(lr_mult=0, decay_mult=0)] * 3)
        top = L.Scale(top, name=bn_name + "/scale", bias_term=True,
                      in_place=True if relu else last_in_place, **_lr_params(affine_lr_mult, 2, 1))
    if relu:
        top = L.ReLU6(top, name=bn_name + "/relu", relu6_param=dict(threshold=6.0),
                      in_place=last_in_place)
    if out_name:
        ns[out_name] = top
    return top


def inverted_residual(ns, bottom, index, expansion, c_in, c_out, stride, phase, freeze_bn,
                      lr_mult=1, affine_lr_mult=1, fold_bn=False):
    """Block `index` (0..16) = torchvision features.{index+1}; returns its output blob."""
    module = f"features.{index + 1}"
    hidden = c_in * expansion
    residual = stride == 1 and c_in == c_out
    bn_args = dict(phase=phase, freeze_bn=freeze_bn, lr_mult=lr_mult, affine_lr_mult=affine_lr_mult,
                   fold_bn=fold_bn)
    x, k = bottom, 0  # k: position inside torchvision's `conv` Sequential
    if expansion != 1:
        x = conv_bn(ns, x, f"{module}.conv.0.0", f"{module}.conv.0.1", num_output=hidden,
                    kernel=1, stride=1, group=1, relu=True, **bn_args)
        k = 1
    x = conv_bn(ns, x, f"{module}.conv.{k}.0", f"{module}.conv.{k}.1", num_output=hidden,
                kernel=3, stride=stride, group=hidden, relu=True, **bn_args)  # depthwise
    x = conv_bn(ns, x, f"{module}.conv.{k + 1}", f"{module}.conv.{k + 2}", num_output=c_out,
                kernel=1, stride=1, group=1, relu=False, out_name=None if residual else module,
                **bn_args)
    if residual:
        ns[module] = L.Eltwise(bottom, x, name=f"{module}/add", operation=P.Eltwise.SUM)
    return ns[module]


def module_stage(k):
    """Stage index 1..7 of torchvision module features.K (K = 0..18), by STAGE_ENDS."""
    ends = [int(m.split(".")[1]) for m in STAGE_ENDS.values()]
    return next(i for i, end in enumerate(ends, start=1) if k <= end)


def mobilenet_v2(ns, data, phase, freeze_bn=False, lr_mults=None, fold_bn=False):
    """Adds the backbone on top `data` (N, 3, H, W) to NetSpec `ns`.

    phase: caffe.TRAIN or caffe.TEST (sets BatchNorm's use_global_stats explicitly).
    freeze_bn: in TRAIN, use the stored statistics instead of the batch's.
    lr_mults: optional callable(stage 1..7) -> (conv lr_mult, affine lr_mult); default (1, 1).
    fold_bn: every BatchNorm + Scale folded into its conv (conv_bn).
    Returns an OrderedDict stage name ("S1".."S7") -> top, see STAGE_ENDS.
    """
    def args(k):
        conv_mult, affine_mult = lr_mults(module_stage(k)) if lr_mults else (1, 1)
        return dict(phase=phase, freeze_bn=freeze_bn, lr_mult=conv_mult, affine_lr_mult=affine_mult,
                    fold_bn=fold_bn)

    x = conv_bn(ns, data, "features.0.0", "features.0.1", num_output=STEM_CHANNELS, kernel=3,
                stride=2, group=1, relu=True, out_name="features.0", **args(0))
    for i, (t, c_in, c_out, s) in enumerate(block_settings()):
        x = inverted_residual(ns, x, i, t, c_in, c_out, s, **args(i + 1))
    conv_bn(ns, x, "features.18.0", "features.18.1", num_output=LAST_CHANNELS, kernel=1,
            stride=1, group=1, relu=True, out_name="features.18", **args(18))
    return collections.OrderedDict((s, ns[m]) for s, m in STAGE_ENDS.items())


def imagenet_classifier(ns, features, num_classes=NUM_CLASSES):
    """Global average pool + InnerProduct "classifier.1" + Softmax "prob" on the S7 top.

    torchvision's Dropout(0.2) before the Linear is left out: it is the identity at test time,
    and this head exists for the ImageNet check, not for training.
    """
    ns.pool = L.Pooling(features, name="pool", pool=P.Pooling.AVE, global_pooling=True)
    ns["classifier.1"] = L.InnerProduct(ns.pool, name="classifier.1", num_output=num_classes)
    ns.prob = L.Softmax(ns["classifier.1"], name="prob")
    return ns.prob


def deploy_net(batch=1, size=224, with_classifier=True):
    """NetParameter of the TEST-phase backbone on an Input blob "data" (batch, 3, size, size)."""
    ns = caffe.NetSpec()
    ns.data = L.Input(name="data", shape=dict(dim=[batch, 3, size, size]))
    stages = mobilenet_v2(ns, ns.data, caffe.TEST)
    if with_classifier:
        imagenet_classifier(ns, stages["S7"])
    proto = ns.to_proto()
    proto.name = "mobilenet_v2" + ("_imagenet" if with_classifier else "_backbone")
    return proto
