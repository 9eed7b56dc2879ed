"""Data: COCO-format reading, letterboxing, augmentation, target assignment, the Caffe data layer."""
