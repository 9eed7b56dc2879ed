"""The FASSST layers as standard ONNX operators (same converter signature as caffe_layers.py).

- PyramidROIAlign: three RoiAlign nodes (opset 16+), mode avg, spatial_scale 1 / (s0 2^k),
  output 4p, 2p, p, the layer's sampling_ratio; coordinate_transformation_mode "half_pixel" is
  the aligned ROIAlign (box shifted by -0.5 px, sub-pixel sizes kept), "output_half_pixel" the
  legacy one (no shift, sizes >= 1). Sampling, the [-1, H] x [-1, W] cut-off and the clamping
  are the same as layers/src/caffe/util/roi_align_util.cpp's (detectron2's).
- ROIFeatureFusion: ReLU(R1 + Resize(R2 + Resize(R3))) with Resize linear, half_pixel, x2: the
  layer's bilinear_up2 (half-pixel centres, borders clamped).
- IAMDecode: iam_box_util.hpp's per-slot arithmetic, in the same order and float32, then the
  layer's selection: score > threshold (strict), sorted by score descending with ties by slot
  index (ONNX TopK: "the element with the lower index appears first"), at most top_k. With
  box_coding CELL the cell centres come from the input's shape at run time (Range), so one
  graph serves any grid, as the layer does.

Batch 1 only: IAMDecode squeezes the batch axis (a Squeeze that fails at run time on N > 1)
and writes batch index 0 into its ROIs.
"""
import numpy as np
from onnx import TensorProto, helper

from fassst.export.graph import ExportError


def _slice(g, x, start, end, axis, base):
    return g.node("Slice", [x, g.i64(base + "/starts", [start]), g.i64(base + "/ends", [end]),
                            g.i64(base + "/axes", [axis])], base)


def pyramid_roi_align(g, layer, weights):
    p = layer.pyramid_roi_align_param
    name = layer.name
    rois = g.value(layer.bottom[3], name)
    boxes = _slice(g, rois, 1, 5, 1, name + "/boxes")
    batch = g.node("Cast", [g.node("Squeeze", [_slice(g, rois, 0, 1, 1, name + "/batch_col"),
                                               g.i64(name + "/sq_axes", [1])], name + "/batch_f")],
                   name + "/batch", to=TensorProto.INT64)
    mode = "half_pixel" if p.aligned else "output_half_pixel"
    channels = g.hints.get(layer.bottom[0], (4, None))[1]
    for k in range(3):
        side = int(p.pooled_size) << (2 - k)
        # the layer's float32 scale: 1 / (first_stride * 2^k)
        spatial_scale = float(np.float32(1) / (np.float32(p.first_stride) * np.float32(1 << k)))
        out = g.node("RoiAlign", [g.value(layer.bottom[k], name), boxes, batch], f"{name}/level{k + 1}",
                     mode="avg", output_height=side, output_width=side,
                     sampling_ratio=int(p.sampling_ratio), spatial_scale=spatial_scale,
                     coordinate_transformation_mode=mode)
        g.set_value(layer.top[k], out, (4, channels))


def roi_feature_fusion(g, layer, weights):
    name = layer.name
    r1, r2, r3 = (g.value(b, name) for b in layer.bottom)
    scales = g.f32(name + "/scales", [1, 1, 2, 2])

    def up2(x, base):
        return g.node("Resize", [x, "", scales], base, mode="linear",
                      coordinate_transformation_mode="half_pixel")

    out = g.node("Add", [r1, up2(g.node("Add", [r2, up2(r3, name + "/up3")], name + "/sum23"),
                                 name + "/up23")], name + "/sum")
    if layer.roi_feature_fusion_param.relu:
        out = g.node("Relu", [out], name)
    g.set_value(layer.top[0], out, g.hints.get(layer.bottom[0]))


def _box_sides(g, edges, p, name):
    """(n, 4) sigmoid t, l, b, r -> (n, 4) boxes (x1, y1, x2, y2): iam_box_side per axis."""
    extent = np.array([p.image_width, p.image_height], np.float32)  # (x, y)
    m = np.float32(p.min_box_size)
    # (l, t, r, b) scaled: columns 0:2 are the first edges (x, y), 2:4 the second ones
    scaled = g.node("Mul", [g.node("Gather", [edges, g.i64(name + "/ltrb", [1, 0, 3, 2])],
                                   name + "/ltrb_frac", axis=1),
                            g.f32(name + "/extent4", np.tile(extent, 2))], name + "/ltrb_px")
    first = _slice(g, scaled, 0, 2, 1, name + "/first")
    second = _slice(g, scaled, 2, 4, 1, name + "/second")
    zero, ext = g.f32(name + "/zero", 0.0), g.f32(name + "/extent", extent)

    def clip(x, base):  # p < 0 ? 0 : (p > extent ? extent : p)
        return g.node("Min", [g.node("Max", [x, zero], base + "/lo"), ext], base)

    lo = clip(g.node("Min", [first, second], name + "/lo_raw"), name + "/lo_clip")  # crossed
    hi = clip(g.node("Max", [first, second], name + "/hi_raw"), name + "/hi_clip")  # edges swap
    if m > 0:  # iam_min_side; with min_box_size 0 the "hi - lo >= min" test always holds
        short = g.node("Not", [g.node("GreaterOrEqual", [g.node("Sub", [hi, lo], name + "/side"),
                                                         g.f32(name + "/min", m)], name + "/long")],
                       name + "/short")
        c = g.node("Mul", [g.node("Add", [lo, hi], name + "/lo_hi"), g.f32(name + "/half", 0.5)],
                   name + "/centre")
        half_m = g.f32(name + "/half_min", np.float32(0.5) * m)
        lo2 = g.node("Sub", [c, half_m], name + "/lo_grown")
        hi2 = g.node("Add", [c, half_m], name + "/hi_grown")
        under = g.node("Less", [lo2, zero], name + "/under")
        over = g.node("Greater", [hi2, ext], name + "/over")
        lo3 = g.node("Where", [under, zero, g.node("Where", [over, g.f32(name + "/ext_m", extent - m),
                                                             lo2], name + "/lo_over")], name + "/lo_in")
        hi3 = g.node("Where", [under, g.f32(name + "/min_val", m),
                               g.node("Where", [over, ext, hi2], name + "/hi_over")], name + "/hi_in")
        small = extent <= m  # the image side itself is shorter: the whole side
        if small.any():
            small_c = g.const(name + "/small_axis", small)
            lo3 = g.node("Where", [small_c, zero, lo3], name + "/lo_small")
            hi3 = g.node("Where", [small_c, ext, hi3], name + "/hi_small")
        lo = g.node("Where", [short, lo3, lo], name + "/lo_min")
        hi = g.node("Where", [short, hi3, hi], name + "/hi_min")
    return g.node("Concat", [lo, hi], name + "/boxes", axis=1)


def _cell_centres(g, squeezed, rank, name):
    """(n, 4) cell centres as image fractions in t, l, b, r order, slot = y * W + x: the
    layer's (x + 0.5) / W and (y + 0.5) / H in float32. The grid is the map's H x W (rank 4)
    or sqrt(n) a side (rank 3)."""
    shape = g.node("Shape", [squeezed], name + "/in_shape")
    if rank == 4:  # (4 + C, H, W)
        h = _slice(g, shape, 1, 2, 0, name + "/grid_h")
        w = _slice(g, shape, 2, 3, 0, name + "/grid_w")
    else:  # (n, 4 + C)
        n = g.node("Cast", [_slice(g, shape, 0, 1, 0, name + "/n_slots")], name + "/n_f",
                   to=TensorProto.FLOAT)
        h = w = g.node("Cast", [g.node("Round", [g.node("Sqrt", [n], name + "/side_f")],
                                       name + "/side_r")], name + "/side", to=TensorProto.INT64)
    half = g.f32(name + "/half_cell", np.float32(0.5))

    def centres(count, base):  # (count,): (i + 0.5) / count
        scalar = g.node("Squeeze", [count, g.i64(base + "/axis0", [0])], base + "/count")
        steps = g.node("Range", [g.i64(base + "/start", 0), scalar, g.i64(base + "/step", 1)],
                       base + "/index")
        return g.node("Div", [g.node("Add", [g.node("Cast", [steps], base + "/index_f",
                                                    to=TensorProto.FLOAT), half], base + "/mid"),
                              g.node("Cast", [count], base + "/count_f", to=TensorProto.FLOAT)],
                      base)

    cx = centres(w, name + "/cx")
    cy = centres(h, name + "/cy")
    column = g.i64(name + "/column", [-1, 1])
    cx_slots = g.node("Reshape", [g.node("Tile", [cx, h], name + "/cx_tiled"), column],
                      name + "/cx_slots")  # x runs fastest
    cy_grid = g.node("Expand", [g.node("Reshape", [cy, column], name + "/cy_col"),
                                g.node("Concat", [h, w], name + "/hw", axis=0)], name + "/cy_grid")
    cy_slots = g.node("Reshape", [cy_grid, column], name + "/cy_slots")
    return g.node("Concat", [cy_slots, cx_slots, cy_slots, cx_slots], name + "/centres", axis=1)


def iam_decode(g, layer, weights):
    """I (1, 4 + C, H, W) or (1, n, 4 + C) -> rois (R, 5), scores (R), labels (R) [, slots (R)]."""
    p = layer.iam_decode_param
    name, values = layer.name, 4 + int(p.num_classes)
    x = g.value(layer.bottom[0], name)
    rank, channels = g.hints.get(layer.bottom[0], (None, None))
    squeezed = g.node("Squeeze", [x, g.i64(name + "/batch_axis", [0])], name + "/image")
    if rank == 4:
        if channels is not None and channels != values:
            raise ExportError(f"layer {name}: input has {channels} channels, expected 4 + "
                              f"num_classes = {values}")
        slots_v = g.node("Transpose", [g.node("Reshape", [squeezed, g.i64(name + "/flat", [values, -1])],
                                               name + "/flat")], name + "/slots_v", perm=[1, 0])
    elif rank == 3:
        slots_v = squeezed
    else:
        raise ExportError(f"layer {name}: input rank {rank}; IAMDecode takes (N, 4 + C, H, W) "
                          f"or (N, n, 4 + C)")
    edges = g.node("Sigmoid", [_slice(g, slots_v, 0, 4, 1, name + "/edge_logits")], name + "/edges")
    if p.box_coding == p.CELL:  # iam_cell_edge: c + 2 s - 1, in the layer's order
        twice = g.node("Mul", [g.f32(name + "/two", np.float32(2)), edges], name + "/edges_x2")
        edges = g.node("Sub", [g.node("Add", [_cell_centres(g, squeezed, rank, name), twice],
                                      name + "/edges_c2"), g.f32(name + "/one_f", np.float32(1))],
                       name + "/edges_cell")
    boxes = _box_sides(g, edges, p, name)
    logits = _slice(g, slots_v, 4, values, 1, name + "/logits")
    scores = g.node("Sigmoid", [g.reduce("ReduceMax", logits, [1], name + "/best_logit", keepdims=0)],
                    name + "/scores_all")
    labels = g.node("ArgMax", [logits], name + "/labels_all", axis=1, keepdims=0, select_last_index=0)

    keep = g.node("Greater", [scores, g.f32(name + "/threshold", np.float32(p.score_threshold))],
                  name + "/keep")
    count = g.reduce("ReduceSum", g.node("Cast", [keep], name + "/keep_i", to=TensorProto.INT64), [0],
                     name + "/count", keepdims=1)
    if p.top_k > 0:
        count = g.node("Min", [count, g.i64(name + "/top_k", [p.top_k])], name + "/count_k")
    order = g.node("TopK", [scores, g.node("Shape", [scores], name + "/n")], name + "/sort",
                   outputs=2, axis=0, largest=1, sorted=1)[1]
    sel = g.node("Slice", [order, g.i64(name + "/zero_i", [0]), count], name + "/selected")

    picked = g.node("Gather", [boxes, sel], name + "/picked_boxes", axis=0)
    batch_col = g.node("ConstantOfShape", [g.node("Concat", [g.node("Shape", [sel], name + "/R"),
                                                            g.i64(name + "/one", [1])],
                                                  name + "/R1", axis=0)],
                       name + "/batch_index", value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0]))
    g.set_value(layer.top[0], g.node("Concat", [batch_col, picked], name + "/rois", axis=1), (2, 5))
    g.set_value(layer.top[1], g.node("Gather", [scores, sel], name + "/scores", axis=0), (1, None))
    labels_sel = g.node("Gather", [labels, sel], name + "/labels_i", axis=0)
    g.set_value(layer.top[2], g.node("Cast", [labels_sel], name + "/labels", to=TensorProto.FLOAT),
                (1, None))
    if len(layer.top) > 3:
        g.set_value(layer.top[3], g.node("Cast", [sel], name + "/slots", to=TensorProto.FLOAT), (1, None))


CONVERTERS = {
    "PyramidROIAlign": pyramid_roi_align,
    "ROIFeatureFusion": roi_feature_fusion,
    "IAMDecode": iam_decode,
}
