"""The GPU check in one run on a machine with a GPU: bundle.py stages a GPU build's binaries, their
libraries and the benchmark nets (scripts/gpu_bundle.py); scripts/gpu_check.sh runs them there
under a time budget, with cudnn_probe.py timing the same shapes in torch and device.py answering
what the script asks of that machine's Python; report.py turns what came back into markdown
(scripts/gpu_report.py). gpu_check.json holds the plan and the targets; tail_cases.py the mask
tail's convolutions, the shapes the cuDNN question is decided on.

cudnn_probe.py and device.py import no caffe: they run on the GPU machine, whose Python need not
load this build's pycaffe.
"""
