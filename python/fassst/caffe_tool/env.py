"""The environment under which Caffe's own `caffe` tool runs the project's Python layers
(scripts/caffe; README, "Training with Caffe's own tool").

The tool embeds Python through the libpython it was linked with (Debian's, found by Caffe's CMake),
and that interpreter has its own sys.path: without help it sees neither the project nor the
packages of the Python that scripts/setup.sh installed them into, and with that Python's
site-packages on PYTHONPATH (ahead of the standard library) the obsolete `typing` backport that
cityscapesscripts pulls in shadows the standard library's and crashes. So the tool runs as the
project's interpreter itself:
  - its libpython first on the library path when it has one with the soname the tool links
    (same name, so the dynamic linker takes it instead of the system's),
  - PYTHONHOME = its installation, so the standard library, lib-dynload and site-packages come
    from there in the interpreter's own order (site-packages after the standard library),
  - PYTHONPATH = this checkout's python/ and its pycaffe, ahead of any PYTHONPATH already set.
Without a shared libpython of its own (a static build), or in a virtual environment (PYTHONHOME is
its base installation), the embedded interpreter would not find this one's site-packages itself
(measured: Debian's libpython with PYTHONHOME=pyenv's 3.11 runs its own frozen, Debian-patched
`site`, which looks in dist-packages folders only), so they go on PYTHONPATH too, behind this
interpreter's standard library, which then comes first.
"""
import os
import re
import site
import sys
import sysconfig

from fassst.build_paths import REPO_ROOT, pycaffe_dir


def _prepend(entries, existing):
    return os.pathsep.join(list(entries) + ([existing] if existing else []))


def own_libpython_dir():
    """The folder of this interpreter's shared libpython, or None for a static build."""
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if not (sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname):
        return None
    return libdir if os.path.isfile(os.path.join(libdir, soname)) else None


def tool_env(environ):
    """A copy of `environ` for running the `caffe` tool with this interpreter embedded."""
    env = dict(environ)
    paths = [os.path.join(REPO_ROOT, "python"), pycaffe_dir()]
    libdir = own_libpython_dir()
    if libdir:
        env["LD_LIBRARY_PATH"] = _prepend([libdir], environ.get("LD_LIBRARY_PATH"))
    if not libdir or sys.prefix != sys.base_prefix:
        paths = [sysconfig.get_paths()["stdlib"]] + paths + site.getsitepackages()
    env["PYTHONHOME"] = sys.base_prefix
    env["PYTHONPATH"] = _prepend(paths, environ.get("PYTHONPATH"))
    return env


def make_snapshot_folder(argv):
    """Creates the folder of the solver's snapshot_prefix for `caffe train -solver S`: the tool
    would train to the first snapshot and then abort on the missing folder."""
    if not argv or argv[0] != "train":
        return None
    solver = next((a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else None)
                   for i, a in enumerate(argv) if a.lstrip("-").split("=")[0] == "solver"), None)
    if not solver or not os.path.isfile(solver):
        return None  # the tool names the problem itself
    with open(solver) as f:
        m = re.search(r'^\s*snapshot_prefix\s*:\s*"([^"]*)"', f.read(), re.M)
    folder = os.path.dirname(m.group(1)) if m else ""
    if folder:
        os.makedirs(folder, exist_ok=True)
    return folder or None
