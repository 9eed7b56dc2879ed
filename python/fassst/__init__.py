"""FASSST-Caffe: the FASSST instance segmenter (WACV 2022) on Caffe.

Modules import downward only: scripts -> fassst -> caffe.
"""
