"""What a COCO annotation json must hold before pycocotools and its C mask code see it.

pycocotools trusts its input: a missing key is a KeyError deep in createIndex, two images with one
id silently become one (the other image's annotations then disagree with it), and its C code
reads a compressed RLE string past a cut-off number and fills an RLE whose runs exceed the image
as far as they go. So the file is checked here first, and every problem is a DatasetError naming
the file and the image or annotation:

  check_coco: the structure, cheap enough for every load of a full COCO json (types, ids unique
      and linked, boxes finite); `for_eval` adds what COCOeval reads (area, bbox, iscrowd).
  check_segmentation: the geometry of one annotation (polygon vertices finite and near the
      image, RLE sizes and runs that add up to the image), which CocoDataset checks for the
      images it loads and the evaluator for every annotation.
"""
import math

from fassst.errors import InputError, read_json

# What OpenCV reads (CV_IO_MAX_IMAGE_WIDTH/HEIGHT, CV_IO_MAX_IMAGE_PIXELS): a larger size in the
# json is a typo, and pycocotools keeps run lengths in 32 bits.
MAX_SIDE, MAX_PIXELS = 1 << 20, 1 << 30
ID_RANGE = (-(1 << 63), 1 << 63)  # ids pass through numpy's int64 in pycocotools


class DatasetError(InputError):
    """The annotation file or an image disagrees with the COCO format; the message says where."""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _list_of_dicts(doc, key, where, required):
    if key not in doc:
        if required:
            raise DatasetError(f"{where}: no {key!r} list (a COCO json has images, categories and "
                               f"annotations)")
        return []
    items = doc[key]
    if not isinstance(items, list):
        raise DatasetError(f"{where}: {key!r} is a {type(items).__name__}, not a list")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: {key}[{n}] is a {type(item).__name__}, not an object")
    return items


def _unique_ids(items, kind, where, describe):
    seen = {}
    for n, item in enumerate(items):
        if "id" not in item or not _is_int(item["id"]) or not ID_RANGE[0] <= item["id"] < ID_RANGE[1]:
            raise DatasetError(f"{where}: {kind} {n} ({describe(item)}) has id "
                               f"{item.get('id')!r}, not a 64-bit integer")
        first = seen.setdefault(item["id"], n)
        if first != n:
            raise DatasetError(f"{where}: two {kind}s have id {item['id']} ({kind}s {first} and {n} "
                               f"of the list: {describe(items[first])}, {describe(item)}); ids "
                               f"must be unique")
    return seen


def check_coco(doc, where, for_eval=False):
    """Raises DatasetError unless `doc` (a parsed json) is a COCO instance annotation file that
    pycocotools indexes without error. `where` names the file in messages."""
    if not isinstance(doc, dict):
        raise DatasetError(f"{where}: not a readable COCO json (a JSON object with images, "
                           f"categories and annotations), but a {type(doc).__name__}")
    images = _list_of_dicts(doc, "images", where, required=True)
    categories = _list_of_dicts(doc, "categories", where, required=True)
    anns = _list_of_dicts(doc, "annotations", where, required=for_eval)
    image_ids = _unique_ids(images, "image", where, lambda im: repr(im.get("file_name")))
    for im in images:
        if not isinstance(im.get("file_name"), str) or not im["file_name"]:
            raise DatasetError(f"{where}: image {im['id']} has file_name {im.get('file_name')!r}, "
                               f"not a file name")
        for key in ("height", "width"):
            if not _is_int(im.get(key)) or not 1 <= im[key] <= MAX_SIDE:
                raise DatasetError(f"{where}: image {im['id']} ({im['file_name']}) has {key} "
                                   f"{im.get(key)!r}, not an integer in [1, {MAX_SIDE}]")
        if im["height"] * im["width"] > MAX_PIXELS:
            raise DatasetError(f"{where}: image {im['id']} ({im['file_name']}) is "
                               f"{im['width']} x {im['height']}, over the {MAX_PIXELS} pixels "
                               f"OpenCV reads")
    category_ids = _unique_ids(categories, "category", where, lambda c: repr(c.get("name")))
    for c in categories:
        if ("name" in c or for_eval) and not isinstance(c.get("name"), str):
            raise DatasetError(f"{where}: category {c['id']} has name {c.get('name')!r}, not a "
                               f"string (the evaluation reports AP by name)")
    _unique_ids(anns, "annotation", where, lambda a: f"image {a.get('image_id')!r}")
    for a in anns:
        _check_annotation(a, image_ids, category_ids, where, for_eval)


def _check_annotation(a, image_ids, category_ids, where, for_eval):
    what = f"{where}: annotation {a['id']}"
    if not _is_int(a.get("image_id")) or a["image_id"] not in image_ids:
        raise DatasetError(f"{what} has image_id {a.get('image_id')!r}, not an image of the file")
    if not _is_int(a.get("category_id")) or a["category_id"] not in category_ids:
        raise DatasetError(f"{what} has category_id {a.get('category_id')!r}, not among the "
                           f"categories")
    if for_eval:
        missing = [k for k in ("bbox", "area", "iscrowd", "segmentation") if k not in a]
        if missing:
            raise DatasetError(f"{what} lacks {missing} (COCO's evaluation reads them all)")
    if "bbox" in a and not (isinstance(a["bbox"], list) and len(a["bbox"]) == 4
                            and all(_is_number(v) for v in a["bbox"])):
        raise DatasetError(f"{what} has bbox {a['bbox']!r}, not [x, y, w, h] of finite numbers")
    if "area" in a and not (_is_number(a["area"]) and a["area"] >= 0):
        raise DatasetError(f"{what} has area {a['area']!r}, not a number >= 0")
    if "iscrowd" in a and a["iscrowd"] not in (0, 1):
        raise DatasetError(f"{what} has iscrowd {a['iscrowd']!r}, not 0 or 1")
    if "segmentation" in a and not isinstance(a["segmentation"], (list, dict)):
        raise DatasetError(f"{what} has a segmentation that is neither polygons nor RLE")


def read_coco(path, for_eval=False):
    """The checked content of a COCO annotation json; MissingFileError or DatasetError."""
    doc = read_json(path, "annotation file")
    check_coco(doc, path, for_eval)
    return doc


def _string_runs(counts):
    """The run lengths of a compressed RLE string, decoded as pycocotools' rleFrString does, or
    None when pycocotools would misread it: a character outside its alphabet (48..111), a number
    cut off at the end (the C code reads on past the string), a number beyond 32 bits."""
    runs, p, n = [], 0, len(counts)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n or k > 6:
                return None
            c = counts[p] - 48
            if not 0 <= c < 64:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = c & 0x20
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def rle_problem(segm, height, width):
    """Why an RLE dict {size, counts} is not a mask of height x width (text), or None."""
    size = segm.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        return f"RLE size {size!r} is not [height, width]"
    if size != [height, width]:
        return f"RLE size {size} differs from the image's {[height, width]}"
    counts = segm.get("counts")
    if isinstance(counts, list):
        runs = counts if all(_is_int(v) for v in counts) else None
    elif isinstance(counts, (str, bytes)):
        try:
            runs = _string_runs(counts.encode("ascii") if isinstance(counts, str) else counts)
        except UnicodeEncodeError:
            runs = None
    else:
        return f"RLE counts is a {type(counts).__name__}, neither a string nor a list"
    if runs is None:
        return "RLE counts is not a run-length string (cut short or corrupt)"
    if any(r < 0 or r >= 2 ** 32 for r in runs) or sum(runs) != height * width:
        return (f"RLE runs cover {sum(runs)} pixels (or a run is negative), not the image's "
                f"{height} x {width} = {height * width}")
    return None


def polygon_problem(polygons, height, width, strict=False):
    """Why COCO polygons cannot be drawn on a height x width image (text), or None. Vertices must
    be finite and within one image size of the image: pycocotools' rasteriser allocates per
    pixel of outline, so a stray 1e9 would ask for gigabytes. Polygons of fewer than 3 points
    are allowed unless `strict` (CocoDataset leaves them out; pycocotools' annToRLE, which the
    evaluation uses, reads 4 values as a box and fails on no polygon at all)."""
    if strict and not polygons:
        return "no polygon"
    for n, poly in enumerate(polygons):
        if not isinstance(poly, list):
            return f"polygon {n} is a {type(poly).__name__}, not a list of coordinates"
        if strict and (len(poly) < 6 or len(poly) % 2):
            return f"polygon {n} has {len(poly)} coordinates, not x, y pairs of 3 points or more"
        for i, v in enumerate(poly):
            if not _is_number(v):
                return f"polygon {n} coordinate {i} is {v!r}, not a finite number"
            side = width if i % 2 == 0 else height
            if not -side <= v <= 2 * side:
                return (f"polygon {n} coordinate {i} is {v}, more than the image's "
                        f"{'width' if i % 2 == 0 else 'height'} ({side}) outside it")
    return None


def check_segmentation(segm, height, width, where, strict=False):
    """Raises DatasetError (message starting with `where`) unless the segmentation (polygons,
    RLE or uncompressed RLE) is one pycocotools can draw on a height x width image; `strict`:
    as its annToRLE reads it (see polygon_problem)."""
    if isinstance(segm, list):
        problem = polygon_problem(segm, height, width, strict)
    elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
        problem = rle_problem(segm, height, width)
    else:
        problem = "segmentation is neither polygons nor RLE"
    if problem:
        raise DatasetError(f"{where}: {problem}")
