"""The benchmark's cases: (name, NetParameter builder, input filler), one per layer at paper size."""
from fassst.bench import layer_cases, rff_cases

CASES = [
    ("ROIFeatureFusion (fused, 36x256x28/14/7)", rff_cases.fused, rff_cases.fill),
    ("RFF from stock layers (Deconv+Eltwise+ReLU)", rff_cases.stock, rff_cases.fill),
    ("PyramidROIAlign (36 ROIs, 256ch, 52/26/13 -> 28/14/7)", layer_cases.pyramid_roi_align, layer_cases.fill),
    ("IAMDecode (n=36, C=80)", layer_cases.iam_decode, layer_cases.fill),
    ("DiceLoss (36x1x56x56)", layer_cases.dice_loss, layer_cases.fill),
    ("SigmoidFocalLoss (8x36x80)", layer_cases.focal_loss, layer_cases.fill),
]
