"""Derived sizes of a FASSST net, in one place for the generator, the data layer and the tests.

Strides are in input pixels. Stage indices follow the MobileNetV2 stages S1..S7 (docs/DESIGN.md);
every backbone maps the indices the generator uses (pyramid 3, 5, 7; IAM input 4, 5, 6) to a
map of the same stride (BACKBONE_STAGES).
"""
import math

# MobileNetV2 (torchvision layout): stage -> (stride, channels).
MOBILENET_V2_STAGES = {1: (2, 16), 2: (4, 24), 3: (8, 32), 4: (16, 64), 5: (16, 96),
                       6: (32, 160), 7: (32, 1280)}
# ResNet-50-FPN: stage index -> (stride, channels) of the FPN output standing in for it
# (resnet50_fpn.py; backbone.RESNET50_FPN_LEVELS): 3 -> P3, 4 and 5 -> P4, 6 and 7 -> P5.
RESNET50_FPN_STAGES = {3: (8, 256), 4: (16, 256), 5: (16, 256), 6: (32, 256), 7: (32, 256)}
BACKBONE_STAGES = {"mobilenet_v2": MOBILENET_V2_STAGES, "resnet50_fpn": RESNET50_FPN_STAGES}
# Reading: the pyramid mask layers tap the last stage of each stride 8, 16, 32.
PYRAMID_STAGES = (3, 5, 7)
# Where an IAM slot's box sits: its t, l, b, r as image fractions, or about the slot's cell
# (IAMDecodeParameter.BoxCoding IMAGE, CELL; data/assign.py codes the targets the same way).
BOX_CODINGS = ("image", "cell")


def stage_stride(backbone, stage):
    """Stride of stage index `stage` (1..7) of `backbone` (a config's backbone name)."""
    if backbone not in BACKBONE_STAGES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONE_STAGES)}, got {backbone!r}")
    table = BACKBONE_STAGES[backbone]
    if stage not in table:
        raise ValueError(f"{backbone} has no stage {stage}; it has {sorted(table)}")
    return table[stage][0]


def grid_side(num_slots):
    """S with S * S = n; the IAM's slots are an S x S grid."""
    s = int(round(math.sqrt(num_slots)))
    if s * s != num_slots or s < 1:
        raise ValueError(f"num_slots must be a square (16, 25, 36, 49, 64, 81), got {num_slots}")
    return s


def feature_side(input_size, stride):
    """Side of a feature map at `stride` for a square input (convs with pad k//2 round up)."""
    side = input_size
    while stride > 1:
        side = (side + 1) // 2
        stride //= 2
    return side


def iam_plan(input_size, head_depth, num_slots, backbone):
    """How the IAM brings E's grid to S x S: (number of stride-2 convs, pool kernel, pool stride).

    Reading: up to two stride-2 convs while the grid stays >= S, then an average pooling that
    maps the remaining grid g to S exactly: kernel = stride = g / S when S divides g, else
    kernel g - S + 1 with stride 1. E is stage `head_depth` of `backbone`.
    """
    s = grid_side(num_slots)
    g = feature_side(input_size, stage_stride(backbone, head_depth))
    if g < s:
        raise ValueError(f"E is {g}x{g} at input {input_size}, head depth {head_depth}: "
                         f"smaller than the {s}x{s} slot grid")
    downs = 0
    while downs < 2 and (g + 1) // 2 >= s:
        g = (g + 1) // 2
        downs += 1
    if g % s == 0:
        return downs, g // s, g // s
    return downs, g - s + 1, 1


def roi_sides(roi_size):
    """(R1, R2, R3, mask) sides: R1 = 2 R2 = 4 R3 (paper); the tail's deconv doubles R1."""
    return 4 * roi_size, 2 * roi_size, roi_size, 8 * roi_size
