"""Data: COCO-format reading, Cityscapes conversion, letterboxing, augmentation, target
assignment, the Caffe data layer."""
