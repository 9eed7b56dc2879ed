"""FASSST-Caffe: the FASSST instance segmenter (WACV 2022) on Caffe.

Modules import downward only: scripts -> fassst -> caffe. Inside fassst each room (a subpackage,
or a module at this root) imports only the rooms below it; the order is tests/test_layering.py's.
"""
