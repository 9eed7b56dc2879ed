"""What Caffe's own `caffe` tool needs to train as scripts/train.py does (README, "Training with
Caffe's own tool"): the generated prototxts and solvers (generate.py, scripts/gen_prototxt.py),
the train net's starting weights (init_weights.py, scripts/init_weights.py) and the environment
under which the tool runs the project's Python layers (env.py, scripts/caffe).
"""
