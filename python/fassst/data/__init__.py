"""Data: COCO reading, letterboxing, augmentation, slot assignment, the Caffe data layer."""
