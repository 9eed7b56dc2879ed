"""Data-set makers: each writes a COCO-format json (and images where it makes them) once, for the
data path (fassst.data) to read like any other. The sample set from pinned registry packages
(sample_data.py), 2 x 2 mosaics of a set (mosaic.py), Cityscapes gtFine polygons with the paper's
8 classes (cityscapes_to_coco.py), and a split by image into train and validation (coco_split.py).
"""
