"""The data layer's settings: its param_str (JSON) parsed into a validated dict.

Every key has a default except ann and images; unknown keys are rejected by name, and each value
is type-checked, so a typo in a prototxt fails at net construction, not silently.
"""
import json

from fassst.errors import InputError
from fassst.net.geometry import grid_side

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
    "workers": (int, 2),            # prefetch processes; 0 = in-process
    "skip_bad_images": (bool, False),  # unreadable image: skip and count instead of failing
    "shuffle": (bool, True),        # a new permutation of the images every epoch
    "start_batch": (int, 0),        # first batch index k (a resumed run starts where it stopped)
}
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
        if type(value) is not kind:
            raise InputError(f"data layer param_str: {key!r} must be {kind.__name__}, "
                             f"got {value!r}")
        if key in _MIN and value < _MIN[key]:
            raise InputError(f"data layer param_str: {key!r} must be >= {_MIN[key]}, got {value}")
        if kind is str and not value:
            raise InputError(f"data layer param_str: {key!r} must not be empty")
        out[key] = value
    grid_side(out["num_slots"])
    return out
