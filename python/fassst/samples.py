"""Real sample photos that registry packages ship, pinned (BRIEF section 6).

Nothing here is committed to the repository: each photo is fetched through fassst.registry from
its pinned package and cached. Keys are "<package>-<file stem>".
"""
from fassst.registry import Pin, fetch_member

LABELME = Pin("labelme", "6.3.1", "2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e",
              "sdist")  # the sdist: the wheel has no examples/
IMGAUG = Pin("imgaug", "0.4.0", "ce61e65b4eb7405fc62c1b0a79d2fa92fd47f763aaecb65152d29243592111f9",
             "wheel")

PHOTOS = {
    "labelme-0001": (LABELME, "labelme-6.3.1/examples/classification/data_annotated/0001.jpg"),
    "labelme-0002": (LABELME, "labelme-6.3.1/examples/classification/data_annotated/0002.jpg"),
    "labelme-2011_000025": (
        LABELME, "labelme-6.3.1/examples/instance_segmentation/data_annotated/2011_000025.jpg"),
    "imgaug-quokka": (IMGAUG, "imgaug/quokka.jpg"),
}


def photo_path(key):
    """Cached path of sample photo `key` (one of PHOTOS), downloading its package if needed."""
    if key not in PHOTOS:
        raise KeyError(f"unknown sample photo {key!r}; known: {sorted(PHOTOS)}")
    pin, member = PHOTOS[key]
    return fetch_member(pin, member)
