"""The paper's 8 Cityscapes instance classes (section 4.2), in the order of its Table 3.

Contiguous class index i (what the network predicts) <-> COCO category id i + 1 (what
cityscapes_to_coco writes) <-> Cityscapes label id LABEL_IDS[i] (what the official evaluation
reads). The label ids come from cityscapesscripts' own label table, not typed in again.
"""
from cityscapesscripts.helpers.labels import name2label

CLASSES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
LABEL_IDS = tuple(name2label[name].id for name in CLASSES)  # 24, 25, 26, 27, 28, 31, 32, 33
CATEGORIES = [{"id": i + 1, "name": name, "supercategory": name2label[name].category}
              for i, name in enumerate(CLASSES)]  # supercategory: "human" or "vehicle"
