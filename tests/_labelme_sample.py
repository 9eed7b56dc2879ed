"""Real COCO instance annotations for the evaluator tests: labelme's example dataset.

The labelme 6.3.1 sdist ships examples/instance_segmentation/data_dataset_coco/annotations.json:
3 PASCAL VOC 2011 photos, 12 hand-drawn instances (person, bottle, bus, car, chair, sofa),
polygons, category 0 "_background_", ids from 0. The sdist is fetched with pip, its sha256
checked against the pin, and kept in the cache ($FASSST_CACHE or ~/.cache/fassst, laid out as
fassst.registry will lay it out: registry/<package>-<version>/).

Private stand-in: this worktree has no python/fassst/registry.py yet; once it does, this should
become registry.fetch_member(Pin("labelme", "6.3.1", SHA256, "sdist"), MEMBER).
"""
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile

PACKAGE, VERSION = "labelme", "6.3.1"
SHA256 = "2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e"  # labelme-6.3.1.tar.gz
MEMBER = "labelme-6.3.1/examples/instance_segmentation/data_dataset_coco/annotations.json"


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _cache_dir():
    root = os.path.expanduser(os.environ.get("FASSST_CACHE") or "~/.cache/fassst")
    return os.path.join(os.path.abspath(root), "registry", f"{PACKAGE}-{VERSION}")


def sdist_path():
    """The checked sdist, downloaded with pip on first use."""
    folder = _cache_dir()
    path = os.path.join(folder, f"{PACKAGE}-{VERSION}.tar.gz")
    if os.path.isfile(path) and _sha256(path) == SHA256:
        return path
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "--disable-pip-version-check", "-q", "-d", tmp,
                        f"{PACKAGE}=={VERSION}"], check=True)
        got = os.path.join(tmp, os.path.basename(path))
        actual = _sha256(got)
        if actual != SHA256:
            raise RuntimeError(f"{PACKAGE}=={VERSION}: downloaded sdist has sha256 {actual}, "
                               f"pinned {SHA256}; not used")
        os.replace(got, path)  # atomic: no half-written file under the final name
    return path


def annotations_json():
    """Path of the extracted annotations.json (extracted once, next to the sdist)."""
    sdist = sdist_path()
    out = os.path.join(os.path.dirname(sdist), "extracted", MEMBER)
    if not os.path.isfile(out):
        with tarfile.open(sdist) as t:
            data = t.extractfile(MEMBER).read()
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(out), delete=False) as f:
            f.write(data)
        os.replace(f.name, out)
    return out
