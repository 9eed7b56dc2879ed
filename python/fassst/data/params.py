"""The data layer's settings: its param_str (JSON) parsed into a validated dict.

Every key has a default except ann and images; unknown keys are rejected by name, and each value
is type-checked, so a typo in a prototxt fails at net construction, not silently.

ann and images may name environment variables, `$NAME` or `${NAME}`, read when the layer is set
up (resolve_env): the checked-in train nets say `${FASSST_TRAIN_ANN}` and `${FASSST_TRAIN_IMAGES}`,
so one prototxt serves any copy of a data set, and `caffe train` on it without them set stops
naming them instead of training on nothing.
"""
import json
import os
import re

from fassst.errors import InputError
from fassst.net.geometry import BOX_CODINGS, grid_side

# key -> (type, default); None default = required
SPEC = {
    "ann": (str, None),             # COCO json
    "images": (str, None),          # folder that the json's file_name are relative to
    "input_size": (int, 416),       # S of the square letterboxed input
    "num_slots": (int, 36),         # n = grid * grid
    "num_classes": (int, 80),       # C; must equal the json's category count
    "roi_size": (int, 7),           # R3 side; mask targets are 8 * roi_size square
    "batch_size": (int, 8),
    "seed": (int, 0),               # batch k depends only on (seed, k)
    "augment": (bool, True),        # horizontal flip + colour jitter
    "scale_min": (float, 1.0),      # with augment: photo shrunk to [scale_min, 1], placed anywhere
    "workers": (int, 2),            # prefetch processes; 0 = in-process
    "skip_bad_images": (bool, False),  # unreadable image: skip and count instead of failing
    "shuffle": (bool, True),        # a new permutation of the images every epoch
    "start_batch": (int, 0),        # first batch index k (a resumed run starts where it stopped)
    "box_coding": (str, "image"),   # loc targets: "image" fractions or "cell" offsets (assign.py)
}
ENV_ANN, ENV_IMAGES = "FASSST_TRAIN_ANN", "FASSST_TRAIN_IMAGES"  # the generated train nets' data
_ENV_KEYS = {"ann": "the COCO-format training json", "images": "the folder of its images"}
_ENV_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_MIN = {"input_size": 1, "num_slots": 1, "num_classes": 1, "roi_size": 1, "batch_size": 1,
        "seed": 0, "workers": 0, "start_batch": 0}


def parse_params(param_str):
    """Validated settings with defaults filled, from a JSON object string (or a dict)."""
    if isinstance(param_str, dict):
        raw = dict(param_str)
    else:
        try:
            raw = json.loads(param_str or "{}")
        except json.JSONDecodeError as e:
            raise InputError(f"data layer param_str is not JSON ({e}): {param_str!r}") from None
    if not isinstance(raw, dict):
        raise InputError(f"data layer param_str must be a JSON object, got {param_str!r}")
    unknown = sorted(set(raw) - set(SPEC))
    if unknown:
        raise InputError(f"data layer param_str: unknown key(s) {unknown}; known: {sorted(SPEC)}")
    out = {}
    for key, (kind, default) in SPEC.items():
        if key not in raw:
            if default is None:
                raise InputError(f"data layer param_str: {key!r} is required")
            out[key] = default
            continue
        value = raw[key]
        # bool is an int subclass in Python, and JSON "1" for a bool is a likely typo: be strict
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise InputError(f"data layer param_str: {key!r} must be {kind.__name__}, "
                             f"got {value!r}")
        if key == "box_coding" and value not in BOX_CODINGS:
            raise InputError(f"data layer param_str: 'box_coding' must be \"image\" or \"cell\", "
                             f"got {value!r}")
        if key == "scale_min" and not 0 < value <= 1:
            raise InputError(f"data layer param_str: 'scale_min' must be in (0, 1], got {value}")
        if key in _MIN and value < _MIN[key]:
            raise InputError(f"data layer param_str: {key!r} must be >= {_MIN[key]}, got {value}")
        if kind is str and not value:
            raise InputError(f"data layer param_str: {key!r} must not be empty")
        out[key] = float(value) if kind is float else value
    grid_side(out["num_slots"])
    return out


def resolve_env(settings):
    """settings with every `$NAME` / `${NAME}` in ann and images replaced by the environment's
    value; InputError naming each variable that is unset or empty."""
    out, missing = dict(settings), []
    for key in _ENV_KEYS:
        for m in _ENV_REF.finditer(out[key]):
            name = m.group(1) or m.group(2)
            if not os.environ.get(name) and (name, key) not in missing:
                missing.append((name, key))
        out[key] = _ENV_REF.sub(lambda m: os.environ.get(m.group(1) or m.group(2), ""), out[key])
    if missing:
        names = [n for n, _ in missing]
        given = " and ".join(f"{key} {settings[key]}" for key in _ENV_KEYS)
        what = " and ".join(f"{name} to {_ENV_KEYS[key]}" for name, key in missing)
        raise InputError(f"data layer: {given}, but {' and '.join(names)} "
                         f"{'is' if len(names) == 1 else 'are'} not set: set {what} "
                         f"(README, \"Training with Caffe's own tool\")")
    return out
