"""The torch checkpoint reader on both container formats and on bad files.

The real legacy-format file is read in test_backbone.py. No zip-format checkpoint ships in a
pinned package here, so the zip case is written below the way torch >= 1.6 writes one (same
entry names, persistent ids and rebuild calls, pickled under stand-in `torch` modules).
"""
import collections
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from fassst.weights.convert_mobilenet_v2 import source_pth
from fassst.weights.torch_zip import TorchFileError, load_state_dict


class _Storage:
    def __init__(self, array, key):
        self.array, self.key = array, key


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-in torch modules so pickle writes the globals torch writes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    storage_types = {}
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        storage_types[name] = cls

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return storage_types, _rebuild_tensor_v2


def write_zip_checkpoint(path, obj, fake_torch):
    storage_types, rebuild = fake_torch
    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, _Storage):
                storages[o.key] = o.array
                name = {np.float32: "FloatStorage", np.int64: "LongStorage"}[o.array.dtype.type]
                return ("storage", storage_types[name], o.key, "cpu", o.array.size)
            return None

        def reducer_override(self, o):
            if isinstance(o, _Tensor):
                return rebuild, (o.storage, o.offset, o.size, o.stride, False,
                                 collections.OrderedDict())
            return NotImplemented

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for key, array in storages.items():
            z.writestr(f"archive/data/{key}", array.astype(array.dtype.newbyteorder("<")).tobytes())
        z.writestr("archive/version", "3\n")


def test_zip_format_with_views_offsets_and_shared_storage(tmp_path, fake_torch):
    base = np.arange(12, dtype=np.float32)
    shared = _Storage(base, "0")
    counter = _Storage(np.array([7], np.int64), "1")
    obj = collections.OrderedDict([
        ("w", _Tensor(shared, 0, (3, 4), (4, 1))),
        ("w_t", _Tensor(shared, 0, (4, 3), (1, 4))),   # a transposed view of the same storage
        ("tail", _Tensor(shared, 8, (2, 2), (2, 1))),  # an offset into it
        ("n", _Tensor(counter, 0, (), ())),
    ])
    path = tmp_path / "ckpt.pth"
    write_zip_checkpoint(path, obj, fake_torch)
    sd = load_state_dict(str(path))
    assert list(sd) == ["w", "w_t", "tail", "n"]
    np.testing.assert_array_equal(sd["w"], base.reshape(3, 4))
    np.testing.assert_array_equal(sd["w_t"], base.reshape(3, 4).T)
    np.testing.assert_array_equal(sd["tail"], [[8, 9], [10, 11]])
    assert sd["n"].dtype == np.int64 and sd["n"] == 7


def test_zip_format_refuses_other_globals(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(os.getcwd, protocol=2))
    with pytest.raises(TorchFileError, match="refusing to unpickle global"):
        load_state_dict(str(path))


@pytest.mark.parametrize("keep,message", [(4000, "corrupt"), (-1000, "ends inside storage")],
                         ids=["inside-pickle", "inside-data"])
def test_truncated_legacy_file_is_named(tmp_path, keep, message):
    data = open(source_pth(), "rb").read()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[:keep])
    with pytest.raises(TorchFileError) as err:
        load_state_dict(str(path))
    assert str(path) in str(err.value) and message in str(err.value)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    with pytest.raises(TorchFileError, match="neither a zip nor a legacy torch file"):
        load_state_dict(str(path))
    with pytest.raises(TorchFileError, match="no such file"):
        load_state_dict(str(tmp_path / "missing.pth"))
