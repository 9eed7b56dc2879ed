"""A small ONNX graph builder: unique value names, constants, nodes, and the finished model.

Caffe blobs are rewritten in place (a Convolution's top is overwritten by its BatchNorm, Scale
and ReLU), ONNX values are written once; `Graph.values` maps each Caffe blob name to the ONNX
value that holds its current contents, so converters read `g.value(blob)` and write
`g.set_value(blob, name)`. `hints` keeps (rank, channels) per blob for the few converters that
need them (a depthwise convolution's group, IAMDecode's input layout).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fassst.errors import InputError

MIN_OPSET = 16  # RoiAlign's coordinate_transformation_mode (half_pixel) came with opset 16


class ExportError(InputError):
    """The net cannot be exported as asked; the message names the layer."""


class Graph:
    def __init__(self, opset, reserved=()):
        if opset < MIN_OPSET:
            raise ExportError(f"opset {opset} is too old: RoiAlign's half_pixel mode (the aligned "
                              f"ROIAlign) needs opset >= {MIN_OPSET}")
        self.opset = opset
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self.values = {}   # Caffe blob -> ONNX value name holding it now
        self.hints = {}    # Caffe blob -> (rank, channels or None)
        self._used = set()
        self._reserved = set(reserved)  # public output names, kept free for add_output

    def fresh(self, base):
        """A value/node name not used yet: `base`, else `base_1`, `base_2`, ..."""
        name, k = base, 0
        while name in self._used or name in self._reserved:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def value(self, blob, layer_name):
        if blob not in self.values:
            raise ExportError(f"layer {layer_name}: bottom blob {blob!r} is produced by no "
                              f"earlier layer")
        return self.values[blob]

    def set_value(self, blob, name, hint=None):
        self.values[blob] = name
        if hint is not None:
            self.hints[blob] = hint

    def const(self, base, array):
        """An initializer holding `array` (its dtype kept); returns its name."""
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def i64(self, base, values):
        return self.const(base, np.asarray(values, np.int64))

    def f32(self, base, values):
        return self.const(base, np.asarray(values, np.float32))

    def node(self, op, inputs, base, outputs=1, **attrs):
        """Adds one node named after `base`; returns its output name (or the list of names)."""
        names = [self.fresh(base if outputs == 1 else f"{base}:{k}") for k in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=self.fresh("node:" + base),
                                           **attrs))
        return names[0] if outputs == 1 else names

    def reduce(self, op, x, axes, base, keepdims):
        """ReduceMax/ReduceSum/...: `axes` became an input in opset 18 (ReduceSum: 13)."""
        axes_as_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if axes_as_input:
            return self.node(op, [x, self.i64(base + "/axes", axes)], base, keepdims=keepdims)
        return self.node(op, [x], base, axes=list(axes), keepdims=keepdims)

    def add_input(self, name, shape, dtype=TensorProto.FLOAT):
        if name in self._used or name in self._reserved:
            raise ExportError(f"input name {name!r} is already taken")
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, dtype, list(shape)))
        return name

    def add_output(self, name, source, shape=None, dtype=TensorProto.FLOAT):
        """Graph output `name` (an Identity of `source`, so outputs keep their public names);
        shape None leaves it to shape inference."""
        if name in self._used:
            raise ExportError(f"output name {name!r} is already a value of the graph")
        self._used.add(name)
        self._reserved.discard(name)
        self.nodes.append(helper.make_node("Identity", [source], [name], name=self.fresh("node:" + name)))
        dims = None if shape is None else list(shape)
        self.outputs.append(helper.make_tensor_value_info(name, dtype, dims))

    def model(self, name, doc=""):
        """The checked ModelProto, shapes inferred (strict), IR version as low as the opset allows.

        IR version: onnx 1.23 writes IR 14 by default, which ONNX Runtime 1.31 refuses (it reads
        up to 13) and older TensorRT parsers too; the IR version that introduced the opset is
        the most widely readable choice (opset 17 -> IR 8).
        """
        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="fassst-caffe",
                                  doc_string=doc)
        model.ir_version = helper.find_min_ir_version_for(opsets)
        # inference first: it also fills the shapes of outputs declared without one
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                  data_prop=True)
        onnx.checker.check_model(model, full_check=True)
        return model
