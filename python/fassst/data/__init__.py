"""Data: the path from a COCO-format data set to the train net's tops. Reading and checking COCO
json (coco_json.py, coco_dataset.py, coco_rle.py), letterboxing, augmentation, target assignment,
prefetching, and the Caffe data layer (layer.py). The makers of data sets: fassst.datasets."""
