"""Reads a PyTorch checkpoint (`torch.save` of a state dict) into numpy arrays, without torch.

Two container formats exist and both are read:
- zip (torch >= 1.6): a zip whose `<root>/data.pkl` is the pickled object and `<root>/data/<key>`
  the raw little-endian bytes of each storage.
- legacy (torch < 1.6, what torchvision's 2018 `mobilenet_v2-b0353104.pth` is): one stream of
  pickles: magic number, protocol version 1001, system info, the object, the list of storage
  keys, then per storage an int64 element count followed by its raw bytes.
In both, tensors are pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
...)` with the storage given by a persistent id `('storage', torch.FloatStorage, key, location,
numel[, view])`. The unpickler below resolves only those globals (plus OrderedDict); anything
else is refused, so a checkpoint cannot run code here.
"""
import collections
import os
import pickle
import struct
import zipfile

import numpy as np

from fassst.errors import InputError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class TorchFileError(InputError):
    """The file is not a readable PyTorch checkpoint; the message names the file."""


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage:
    """A storage known by key; `array` is filled once its bytes are read."""

    def __init__(self, stype, key, numel):
        self.stype, self.key, self.numel = stype, key, numel
        self.array = None


class _LazyTensor:
    """A tensor whose storage bytes come later in the stream (legacy format)."""

    def __init__(self, storage, offset, size, stride, view=None):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)
        self.view = view  # (view offset, view numel) into the root storage, legacy views only

    def materialize(self):
        base = self.storage.array
        if self.view is not None:
            base = base[self.view[0]:self.view[0] + self.view[1]]
        if self.size and self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) >= len(base):
            raise IndexError(f"tensor of size {self.size} stride {self.stride} offset {self.offset} "
                             f"overruns its storage of {len(base)} elements")
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(base[self.offset:], shape=self.size,
                                               strides=[s * item for s in self.stride])
        return np.array(view, dtype=base.dtype.newbyteorder("="))


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    if isinstance(storage, tuple):  # legacy view: (root storage, view offset, view numel)
        return _LazyTensor(storage[0], offset, size, stride, view=storage[1:])
    return _LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *_ignored):
    return data


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, path, storages):
        super().__init__(f, encoding="utf-8")
        self.path, self.storages = path, storages

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFileError(f"{self.path}: refusing to unpickle global {module}.{name} "
                             f"(only tensors, storages and OrderedDict are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise TorchFileError(f"{self.path}: unsupported persistent id {pid!r}")
        stype, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(stype, _StorageType):
            raise TorchFileError(f"{self.path}: storage {key} has unsupported type {stype!r}")
        storage = self.storages.setdefault(key, _Storage(stype, key, numel))
        if view is not None:  # legacy: (view_key, offset, view_size) into root storage `key`
            return (storage, view[1], view[2])
        return storage


def _materialize(obj):
    if isinstance(obj, _LazyTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialize(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _load_zip(path):
    storages = {}
    with zipfile.ZipFile(path) as z:
        pkls = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkls) != 1:
            raise TorchFileError(f"{path}: zip has {len(pkls)} data.pkl entries, expected one")
        root = pkls[0][:-len("data.pkl")]
        if root + "byteorder" in z.namelist() and z.read(root + "byteorder") != b"little":
            raise TorchFileError(f"{path}: big-endian checkpoints are not supported")
        with z.open(pkls[0]) as f:
            obj = _Unpickler(f, path, storages).load()
        for key, st in storages.items():
            raw = z.read(f"{root}data/{key}")
            if len(raw) != st.numel * st.stype.dtype.itemsize:
                raise TorchFileError(f"{path}: storage {key} has {len(raw)} bytes, expected "
                                     f"{st.numel} x {st.stype.dtype.itemsize}")
            st.array = np.frombuffer(raw, dtype=st.stype.dtype)
    return obj


def _load_legacy(path):
    storages = {}
    with open(path, "rb") as f:
        try:
            magic = pickle.load(f)
        except Exception as e:
            raise TorchFileError(f"{path}: neither a zip nor a legacy torch file ({e})") from None
        if magic != LEGACY_MAGIC:
            raise TorchFileError(f"{path}: neither a zip nor a legacy torch file (bad magic number)")
        if pickle.load(f) != LEGACY_PROTOCOL:
            raise TorchFileError(f"{path}: unsupported legacy protocol version")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", False):
            raise TorchFileError(f"{path}: big-endian checkpoints are not supported")
        obj = _Unpickler(f, path, storages).load()
        keys = pickle.load(f)
        for key in keys:
            st = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != st.numel:
                raise TorchFileError(f"{path}: storage {key} holds {numel} elements, "
                                     f"its tensors expect {st.numel}")
            nbytes = numel * st.stype.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise TorchFileError(f"{path}: file ends inside storage {key} (truncated download?)")
            st.array = np.frombuffer(raw, dtype=st.stype.dtype)
        if f.read(1):
            raise TorchFileError(f"{path}: trailing bytes after the last storage")
        missing = set(storages) - set(keys)
        if missing:
            raise TorchFileError(f"{path}: storages {sorted(missing)} are referenced but not stored")
    return obj


def load_state_dict(path):
    """OrderedDict name -> numpy array (native byte order, a copy) from a torch checkpoint.

    Raises TorchFileError naming `path` when the file is missing, truncated or not a checkpoint.
    """
    if not os.path.isfile(path):
        raise TorchFileError(f"{path}: no such file")
    try:
        obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
        return _materialize(obj)
    except TorchFileError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, struct.error, ValueError) as e:
        raise TorchFileError(f"{path}: corrupt torch checkpoint ({type(e).__name__}: {e})") from None
