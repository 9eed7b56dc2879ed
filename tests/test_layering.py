"""The package's rooms stand on one another in one direction: a module imports from its own room
and from the rooms below it, never from a room above. A room is a top-level package of fassst
(data/, net/, ...) or a module at its root (config.py, ...). The order is written once, here, as
what each room stands on; everything those stand on is below it too. Every import of every
module is read with `ast` (those inside functions as well), so a new upward import fails here,
naming the file, the line and the rooms."""
import ast
import os

from fassst.build_paths import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "python", "fassst")

# room: the rooms it stands on (each with all that it stands on in turn)
STANDS_ON = {
    # package-wide infrastructure
    "fassst": (),                                    # __init__.py
    "errors": (),
    "cli": ("errors",),                              # how the entry scripts read numbers and end
    "build_paths": ("errors",),
    "openblas_core": (),                             # which OpenBLAS kernels Caffe runs on
    "registry": ("errors",),
    "native": ("build_paths",),                      # the compiled mask paste and RLE
    "images": ("errors",),                           # reading photos, drawing on them
    "net": ("errors",),                              # the network: NetSpec builders, net rewrites
    "config": ("net",),                              # configs check their sizes with net.geometry
    # what the network is made from and shipped as
    "imagenet": ("images", "registry"),
    "weights": ("net", "registry"),
    "export": ("net",),
    # data in, results out
    "data": ("imagenet", "native", "net"),           # the runtime data path
    "datasets": ("data", "registry"),                # the data-set makers
    "evaluation": ("data",),
    "diagnostics": ("data",),
    "inference": ("evaluation",),
    # the jobs
    "engine": ("config", "diagnostics", "inference"),
    "bench": ("datasets", "export", "inference"),
    "gpu_check": ("bench", "engine"),
    "caffe_tool": ("engine", "weights"),
    "demo": ("datasets", "engine", "weights"),
    "reproduce": ("bench", "datasets", "engine", "weights"),
}


def below(room):
    """Every room that `room` stands on, directly or through others."""
    seen, todo = set(), list(STANDS_ON[room])
    while todo:
        r = todo.pop()
        if r not in seen:
            seen.add(r)
            todo.extend(STANDS_ON[r])
    return seen


def modules():
    """(path, room, package parts) of every module of the package."""
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, PACKAGE)[:-3].split(os.sep)
            room = "fassst" if parts == ["__init__"] else parts[0]
            yield path, room, ["fassst"] + parts[:-1]


def imported_rooms(path, package):
    """(line, dotted name, room) for every import of a fassst module in the file at `path`."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            base = base + (node.module.split(".") if node.module else [])
            # `from fassst import native` names a room; `from fassst.data import x` is in data
            names = [base + [a.name] for a in node.names] if base == ["fassst"] else [base]
        else:
            continue
        for name in names:
            if name[0] == "fassst" and len(name) > 1:
                yield node.lineno, ".".join(name), name[1]


def test_the_order_is_a_dag_of_known_rooms():
    for room, under in STANDS_ON.items():
        assert set(under) <= set(STANDS_ON), f"{room} stands on unknown rooms {set(under) - set(STANDS_ON)}"
        assert room not in below(room), f"{room} stands on itself through {sorted(below(room))}"


def test_every_room_has_its_place():
    rooms = {room for _, room, _ in modules()}
    assert rooms - set(STANDS_ON) == set(), "new rooms: give each its place in STANDS_ON"
    assert set(STANDS_ON) - rooms == set(), "rooms that no longer exist: remove them from STANDS_ON"


def test_no_module_imports_from_a_room_above_it():
    upward = []
    for path, room, package in modules():
        allowed = below(room) | {room}
        for line, name, target in imported_rooms(path, package):
            if target not in allowed:
                upward.append(f"{os.path.relpath(path, REPO_ROOT)}:{line} imports {name}: {room} "
                              f"does not stand on {target} ({room} stands on "
                              f"{', '.join(sorted(below(room))) or 'nothing'})")
    assert not upward, "imports from a room above:\n" + "\n".join(upward)
