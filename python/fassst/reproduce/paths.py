"""Paths as the tables and commands show them."""
import os

from fassst.build_paths import REPO_ROOT


def rel(path):
    """Relative to the repository when inside it, else absolute."""
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT + os.sep) else path
