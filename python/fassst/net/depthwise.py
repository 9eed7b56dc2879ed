"""The project's DepthwiseConvolution layer and Caffe's stock grouped Convolution are
interchangeable in a prototxt: the same convolution_param (group = channels) and the same blobs
(C, 1, kh, kw) [+ (C)]. `as_stock` turns one net into the other, for the speed baseline and for
checking that a net computes the same either way."""
from caffe.proto import caffe_pb2


def as_stock(net_param):
    """Copy of `net_param` whose DepthwiseConvolution layers are grouped Convolutions."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    for layer in out.layer:
        if layer.type == "DepthwiseConvolution":
            layer.type = "Convolution"
            if not layer.convolution_param.HasField("group"):
                raise ValueError(f"layer {layer.name}: a DepthwiseConvolution without `group` "
                                 f"cannot become a grouped Convolution")
    return out


def is_depthwise(layer):
    """True for a DepthwiseConvolution layer, or a Convolution with group = num_output > 1."""
    p = layer.convolution_param
    return layer.type == "DepthwiseConvolution" or (
        layer.type == "Convolution" and p.group > 1 and p.group == p.num_output)
