"""ImageNet classification with the converted backbone: the check that conversion is exact."""
