"""Every reader of a user's file refuses what is not that file: random bytes, a valid file cut
short, an empty file and, for the json formats, valid JSON of the wrong content. The refusal is
the project's own error (an InputError whose message names the file), which the scripts print as
one `error:` line; never an exception of the library underneath (cv2.error, KeyError, DecodeError,
UnicodeDecodeError, ...) and never a crash of the process (Caffe aborts on weights it cannot
copy, pycocotools' C code reads cut-off RLE strings past their end).

Property-based with hypothesis, derandomized and with fixed example counts, so each run feeds
the same inputs. The readers: photos (images.read.read_rgb, for training and inference alike),
COCO annotation files (CocoDataset, the evaluator's ground truth, split_coco.py), results files
(coco_evaluator.read_results), configs (load_config), caffemodels (weights_fit.check_fits, then
Caffe's own copy in a forked process that must live) and videos (inference.media.Video).
"""
import copy
import json
import os
from functools import reduce
from operator import getitem

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fassst.config import CONFIG_DIR, load_config
from fassst.data import coco_rle
from fassst.data.coco_dataset import CocoDataset, DatasetError, decode_mask, segmentation_to_rle
from fassst.datasets.coco_split import split_coco_file
from fassst.errors import InputError
from fassst.evaluation.coco_evaluator import evaluate_results, load_coco_gt, read_results
from fassst.images.read import ImageReadError, read_rgb
from fassst.inference import media
from fassst.inference.run import predict_media


def fuzz(examples):
    """The same `examples` inputs on every run; function-scoped fixtures (tmp_path) are fine
    here because each example overwrites the one file it reads."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


JUNK = st.binary(min_size=1, max_size=3000)


def refused_or_read(call, *names):
    """call()'s value, or None when it refused with an InputError naming one of `names` (file
    paths or names); any other exception fails the test."""
    try:
        return call()
    except InputError as e:
        assert any(str(n) in str(e) for n in names), f"{type(e).__name__} names none of {names}: {e}"
        assert "\n" not in str(e), f"not one line: {e!r}"
        return None


def refused(call, *names):
    assert refused_or_read(call, *names) is None, "read, not refused"


def overwritten(data):
    """`data` with 1 to 8 bytes set to other values: corruption short of a cut."""
    edits = st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)),
                     min_size=1, max_size=8)

    def apply(pairs):
        out = bytearray(data)
        for i, v in pairs:
            out[i] = v
        return bytes(out)
    return edits.map(apply)


# ---- valid JSON of the wrong content: a node of a valid document replaced, cut or removed ----

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=8)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated(draw, doc):
    """A copy of `doc` with 1 to 3 nodes replaced by any JSON value, removed, cut short (strings
    and lists: the RLE strings and polygons) or repeated (list items: duplicate ids)."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = reduce(getitem, path[:-1], doc), path[-1]
        old = parent[key]
        how = draw(st.sampled_from(["replace", "remove", "cut", "repeat"]))
        if how == "remove":
            del parent[key]
        elif how == "cut" and isinstance(old, (str, list)) and old:
            parent[key] = old[:draw(st.integers(0, len(old) - 1))]
        elif how == "repeat" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(old))
        else:
            parent[key] = draw(JSON_VALUES)
    return doc


def cut_json(text):
    """Cut points of a json text that leave it invalid: before its last non-blank character."""
    return st.integers(1, len(text.rstrip()) - 1)


# ---- photos ----

FORMATS = (".jpg", ".png", ".bmp", ".tif", ".webp")


def _encoded(ext):
    pixels = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (21, 34, 3), np.uint8),
                              (5, 5), 0)
    return cv2.imencode(ext, pixels)[1].tobytes()


@pytest.mark.parametrize("ext", FORMATS)
@fuzz(40)
@given(data=st.data())
def test_photo_cut_short_is_refused(tmp_path, ext, data):
    whole = _encoded(ext)
    path = tmp_path / ("photo" + ext)
    path.write_bytes(whole[:data.draw(st.integers(1, len(whole) - 1), label="cut")])
    with pytest.raises(ImageReadError, match=str(path)):
        read_rgb(str(path))


@pytest.mark.parametrize("ext", FORMATS)
def test_empty_photo_is_refused_and_a_whole_one_read(tmp_path, ext):
    path = tmp_path / ("photo" + ext)
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_rgb(str(path))
    path.write_bytes(_encoded(ext))
    assert read_rgb(str(path)).shape == (21, 34, 3)


@pytest.mark.parametrize("ext", FORMATS)
@fuzz(30)
@given(data=st.data())
def test_photo_of_random_or_overwritten_bytes_is_read_or_refused(tmp_path, ext, data):
    path = tmp_path / ("photo" + ext)
    path.write_bytes(data.draw(JUNK | overwritten(_encoded(ext))))
    image = refused_or_read(lambda: read_rgb(str(path)), path)
    assert image is None or (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3)


def test_a_folder_run_skips_unreadable_photos_and_writes_the_others(tmp_path):
    """The empty .png that stopped infer.py with a cv2.error: skipped, named, counted."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b_good.png", "d_good.jpg"):
        (folder / name).write_bytes(_encoded(os.path.splitext(name)[1]))
    (folder / "a_empty.png").write_bytes(b"")
    (folder / "c_random.jpg").write_bytes(np.random.default_rng(1).bytes(500))
    (folder / "e_cut.png").write_bytes(_encoded(".png")[:100])
    warned = []

    def one_instance(image):
        h, w = image.shape[:2]
        return dict(boxes=np.float32([[0, 0, w, h]]), scores=np.float32([0.9]),
                    labels=np.int64([0]), masks=np.ones((1, h, w), bool))
    run = predict_media(one_instance, str(folder), str(tmp_path / "out"), ["thing"], [1],
                        log=lambda *a: None, warn=warned.append)
    assert (run.processed, run.skipped) == (2, 3)
    assert sorted(os.listdir(tmp_path / "out")) == ["b_good.png", "d_good.png"]
    assert [w.split(":")[0] for w in warned] == [f"skipped {folder / n}" for n in
                                                 ("a_empty.png", "c_random.jpg", "e_cut.png")]
    assert "empty file" in warned[0] and "truncated PNG" in warned[2]


# ---- COCO annotation files ----

def _polygon(x, y, side):
    return [[x, y, x + side, y, x + side, y + side, x, y + side]]


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    """(json document, image folder): two photos; a polygon, a compressed RLE, an uncompressed
    RLE crowd region; every key COCO's evaluation reads."""
    folder = tmp_path_factory.mktemp("coco")
    images = folder / "images"
    images.mkdir()
    sizes = {1: (30, 40), 2: (32, 24)}
    for i, (h, w) in sizes.items():
        cv2.imwrite(str(images / f"{i}.png"), np.full((h, w, 3), 40 * i, np.uint8))
    mask = np.zeros(sizes[2], np.uint8)
    mask[4:20, 3:15] = 1
    crowd = np.zeros(sizes[1], np.uint8)
    crowd[20:28, 25:38] = 1
    flat = crowd.ravel(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    anns = [dict(image_id=1, category_id=1, segmentation=_polygon(5, 5, 12), bbox=[5, 5, 12, 12],
                 area=144, iscrowd=0),
            dict(image_id=2, category_id=2, segmentation=coco_rle.encode_one(mask),
                 bbox=[3, 4, 12, 16], area=192, iscrowd=0),
            dict(image_id=1, category_id=2, segmentation=dict(counts=runs, size=list(sizes[1])),
                 bbox=[25, 20, 13, 8], area=104, iscrowd=1)]
    for i, a in enumerate(anns):
        a["id"] = i + 1
    doc = dict(images=[dict(id=i, file_name=f"{i}.png", height=h, width=w)
                       for i, (h, w) in sizes.items()],
               annotations=anns, categories=[dict(id=1, name="a"), dict(id=2, name="b")])
    return doc, str(images)


def _results(doc):
    """A detection per non-crowd annotation: its own box and mask (test-dev format)."""
    sizes = {im["id"]: (im["height"], im["width"]) for im in doc["images"]}
    out = []
    for a in doc["annotations"]:
        if a["iscrowd"]:
            continue
        h, w = sizes[a["image_id"]]
        rle = a["segmentation"] if isinstance(a["segmentation"], dict) else coco_rle.encode_one(
            decode_mask(segmentation_to_rle(a["segmentation"], h, w, "test")))
        out.append(dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"],
                        score=0.9, segmentation=dict(rle)))
    return out


def _load_all(ann, images):
    """CocoDataset(ann) and every image of it, each mask decoded: what training reads."""
    ds = refused_or_read(lambda: CocoDataset(str(ann), images), ann)
    for i in range(len(ds) if ds else 0):
        s = refused_or_read(lambda: ds.load(i), ann, ds.image_path(i))
        for rle in (s.rles + s.crowd_rles) if s else []:
            decode_mask(rle)
    return ds


def test_the_valid_set_loads_and_scores_100(coco_set, tmp_path):
    doc, images = coco_set
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc))
    ds = _load_all(ann, images)
    assert [len(ds.load(i).rles) for i in range(2)] == [1, 1]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results(doc)))
    gt = load_coco_gt(str(ann))
    metrics = evaluate_results(gt, read_results(str(results), gt))
    assert metrics["segm"]["AP"] == pytest.approx(100) and metrics["bbox"]["AP"] == pytest.approx(100)


def test_two_images_with_one_id_are_named(coco_set, tmp_path):
    doc = copy.deepcopy(coco_set[0])
    doc["images"][1]["id"] = 1
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"ann.json: two images have id 1 \(images 0 and 1 of "
                                           r"the list: '1.png', '2.png'\)"):
        CocoDataset(str(ann), coco_set[1])


@fuzz(60)
@given(data=st.data())
def test_annotation_file_of_random_cut_or_no_bytes_is_refused(coco_set, tmp_path, data):
    text = json.dumps(coco_set[0])
    content = data.draw(st.sampled_from(["junk", "cut", "empty"]), label="kind")
    ann = tmp_path / "ann.json"
    ann.write_bytes({"junk": lambda: data.draw(JUNK),
                     "cut": lambda: text[:data.draw(cut_json(text))].encode(),
                     "empty": lambda: b""}[content]())
    refused(lambda: CocoDataset(str(ann), coco_set[1]), ann)
    refused(lambda: load_coco_gt(str(ann)), ann)
    refused(lambda: split_coco_file(str(ann), str(tmp_path / "split"), n_val=1), ann)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@fuzz(150)
@given(data=st.data())
def test_annotation_file_of_the_wrong_content_is_read_or_refused(coco_set, tmp_path, data):
    doc, images = coco_set
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data.draw(mutated(doc))))
    _load_all(ann, images)
    refused_or_read(lambda: split_coco_file(str(ann), str(tmp_path / "split"), n_val=1), ann)
    gt = refused_or_read(lambda: load_coco_gt(str(ann)), ann)
    if gt is not None:
        refused_or_read(lambda: evaluate_results(gt, _results(doc)), "result")


# ---- results files ----

@pytest.fixture(scope="module")
def ground_truth(coco_set, tmp_path_factory):
    path = tmp_path_factory.mktemp("gt") / "gt.json"
    path.write_text(json.dumps(coco_set[0]))
    return load_coco_gt(str(path))


@fuzz(60)
@given(data=st.data())
def test_results_file_of_random_cut_or_no_bytes_is_refused(coco_set, ground_truth, tmp_path, data):
    text = json.dumps(_results(coco_set[0]))
    content = data.draw(st.sampled_from(["junk", "cut", "empty"]), label="kind")
    path = tmp_path / "results.json"
    path.write_bytes({"junk": lambda: data.draw(JUNK),
                      "cut": lambda: text[:data.draw(cut_json(text))].encode(),
                      "empty": lambda: b""}[content]())
    refused(lambda: read_results(str(path), ground_truth), path)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@fuzz(120)
@given(data=st.data())
def test_results_of_the_wrong_content_are_evaluated_or_refused(coco_set, ground_truth, tmp_path,
                                                               data):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data.draw(mutated(_results(coco_set[0])))))
    results = refused_or_read(lambda: read_results(str(path), ground_truth), path)
    if results is not None:
        evaluate_results(ground_truth, results)  # checked: must not raise at all


# ---- configs ----

CONFIG = os.path.join(CONFIG_DIR, "fassst_cpu_sample.json")


@fuzz(60)
@given(data=st.data())
def test_config_of_random_cut_or_no_bytes_is_refused(tmp_path, data):
    with open(CONFIG) as f:
        text = f.read()
    content = data.draw(st.sampled_from(["junk", "cut", "empty"]), label="kind")
    path = tmp_path / "my.json"
    path.write_bytes({"junk": lambda: data.draw(JUNK),
                      "cut": lambda: text[:data.draw(cut_json(text))].encode(),
                      "empty": lambda: b""}[content]())
    refused(lambda: load_config(str(path)), path, "my")


@fuzz(100)
@given(data=st.data())
def test_config_of_the_wrong_content_is_read_or_refused(tmp_path, data):
    with open(CONFIG) as f:
        doc = data.draw(mutated(json.load(f)))
    path = tmp_path / "my.json"
    path.write_text(json.dumps(doc))
    refused_or_read(lambda: load_config(str(path)), path, "my", "fassst_cpu_sample")


def test_config_without_a_name_is_refused(tmp_path):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"input_size": 256}))
    refused(lambda: load_config(str(path)), path)


# ---- caffemodels: refused in Python, or copied by Caffe without an abort ----

@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    """(caffe.Net, its saved caffemodel bytes): Input, a convolution, an inner product last
    (so that any cut of the file removes or breaks a layer with weights)."""
    import caffe
    from caffe import layers as L
    from fassst.net.load import caffe_net
    caffe.set_mode_cpu()
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[1, 3, 6, 6]))
    ns.conv = L.Convolution(ns.data, num_output=4, kernel_size=3,
                            weight_filler=dict(type="gaussian", std=0.1))
    ns.fc = L.InnerProduct(ns.conv, num_output=3, weight_filler=dict(type="gaussian", std=0.1))
    net = caffe_net(ns.to_proto(), caffe.TEST)
    path = tmp_path_factory.mktemp("weights") / "small.caffemodel"
    net.save(str(path))
    return net, path.read_bytes()


def caffe_copy_status(net, path):
    """The exit status of Caffe's own copy of `path` into `net`, in a forked process: 0 when it
    copied, else the abort (CHECK failures end the process with SIGABRT)."""
    pid = os.fork()
    if pid == 0:  # the child: no Python cleanup, no pytest
        status = 3
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)  # Caffe's fatal log
            net.copy_from(str(path))
            status = 0
        finally:
            os._exit(status)
    return os.waitpid(pid, 0)[1]


def weights_checked(net, path, complete=False):
    """check_fits(net, path): True when it passes, and then Caffe must copy the file."""
    from fassst.export.caffemodel import read_caffemodel
    from fassst.net.weights_fit import check_fits
    refused_or_read(lambda: read_caffemodel(str(path)), path)  # the ONNX export's reader
    if refused_or_read(lambda: check_fits(net, str(path), complete=complete) or True, path):
        assert caffe_copy_status(net, path) == 0, "check_fits passed a file Caffe aborts on"
        return True
    return False


@fuzz(40)
@given(data=st.data())
def test_caffemodel_cut_short_is_refused_whole_or_copied(small_net, tmp_path, data):
    net, whole = small_net
    path = tmp_path / "w.caffemodel"
    path.write_bytes(whole[:data.draw(st.integers(1, len(whole) - 1), label="cut")])
    assert not weights_checked(net, path, complete=True)  # what inference and folding ask
    weights_checked(net, path)  # training accepts a file of fewer layers, never an abort


@fuzz(80)
@given(data=st.data())
def test_caffemodel_of_random_or_overwritten_bytes_is_refused_or_copied(small_net, tmp_path, data):
    net, whole = small_net
    path = tmp_path / "w.caffemodel"
    path.write_bytes(data.draw(JUNK | overwritten(whole)))
    weights_checked(net, path)


def _raw_layer(name, blob_values, shape, extra=b""):
    """A NetParameter holding one layer (field 100) of one blob, written by hand."""
    from caffe.proto import caffe_pb2
    layer = caffe_pb2.LayerParameter(name=name, type="InnerProduct")
    blob = layer.blobs.add()
    blob.shape.dim.extend(shape)
    blob.data.extend([0.5] * blob_values)
    return caffe_pb2.NetParameter(layer=[layer]).SerializeToString() + extra


def _crafted():
    """Files that parse in Python yet end the process inside Caffe (abort or segfault), by name."""
    from caffe.proto import caffe_pb2
    both = caffe_pb2.NetParameter()
    both.layer.add(name="conv")
    both.layers.add(name="fc")
    v0 = caffe_pb2.NetParameter()
    v0.layers.add().layer.name = "conv"
    legacy_input = caffe_pb2.NetParameter(input=["a", "b"])
    legacy_input.input_shape.add().dim.extend([1, 3, 6, 6])  # a shape for one input of two
    # a layer whose PSROIPooling parameters (required fields) are present but empty
    required = caffe_pb2.LayerParameter(name="conv").SerializeToString() + b"\xaa\x09\x00"
    return {"fewer values than its shape": _raw_layer("fc", 10, [3, 16]),
            "both layer and layers": both.SerializeToString(),
            "V0 layers": v0.SerializeToString(),
            "legacy inputs that disagree": legacy_input.SerializeToString(),
            "required fields missing": b"\xa2\x06" + bytes([len(required)]) + required}


@pytest.mark.parametrize("kind", ["fewer values than its shape", "both layer and layers",
                                  "V0 layers", "legacy inputs that disagree",
                                  "required fields missing"])
def test_files_caffe_would_abort_on_are_refused(small_net, tmp_path, kind):
    from fassst.net.weights_fit import WeightsMismatch, check_fits
    net, _ = small_net
    path = tmp_path / "w.caffemodel"
    path.write_bytes(_crafted()[kind])
    assert caffe_copy_status(net, path) != 0  # why the check exists: the process would end
    with pytest.raises(WeightsMismatch, match=str(path)):
        check_fits(net, str(path))


def test_empty_and_hdf5_named_caffemodels_are_refused(small_net, tmp_path):
    from fassst.net.weights_fit import WeightsMismatch, check_fits
    net, whole = small_net
    empty = tmp_path / "w.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(WeightsMismatch, match="empty file"):
        check_fits(net, str(empty))
    h5 = tmp_path / "w.h5"
    h5.write_bytes(whole)  # a good caffemodel, but Caffe picks its HDF5 reader by the name
    assert caffe_copy_status(net, h5) != 0
    with pytest.raises(WeightsMismatch, match="HDF5"):
        check_fits(net, str(h5))


# ---- videos ----

@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 24))
    for i in range(6):
        writer.write(np.full((24, 32, 3), 30 * i, np.uint8))
    writer.release()
    return path.read_bytes()


def _frames(path):
    """Every (index, frame or None) of the video, or None when it is refused."""
    video = refused_or_read(lambda: media.Video(str(path)), path)
    return None if video is None else list(video)


@fuzz(25)
@given(data=st.data())
def test_video_of_random_cut_or_no_bytes_is_refused_or_read_frame_by_frame(clip, tmp_path, data):
    content = data.draw(st.sampled_from(["junk", "cut", "empty"]), label="kind")
    path = tmp_path / "clip.avi"
    path.write_bytes({"junk": lambda: data.draw(JUNK),
                      "cut": lambda: clip[:data.draw(st.integers(1, len(clip) - 1))],
                      "empty": lambda: b""}[content]())
    frames = _frames(path)
    if content == "empty":
        assert frames is None
    for i, frame in frames or []:
        assert frame is None or (frame.dtype == np.uint8 and frame.shape[2] == 3)
