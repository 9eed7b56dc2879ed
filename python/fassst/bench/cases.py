"""The benchmark's cases: (name, NetParameter builder, input filler), one per layer at paper size."""
from fassst.bench import rff_cases

CASES = [
    ("ROIFeatureFusion (fused, 36x256x28/14/7)", rff_cases.fused, rff_cases.fill),
    ("RFF from stock layers (Deconv+Eltwise+ReLU)", rff_cases.stock, rff_cases.fill),
]
