"""Tests run against this checkout's python/ and its built pycaffe, set up exactly as the scripts
set them up (scripts/_init_paths.py), so another clone's build is never picked up."""
import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "scripts", "_init_paths.py"))
