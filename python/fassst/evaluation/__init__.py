"""Evaluation on pycocotools (COCO AP) and cityscapesscripts (official Cityscapes AP).

Nothing here needs Caffe: predictions arrive as numpy arrays or COCO results files.
"""
