"""COCO instances JSON: export, strict reading, and import onto a project's images.

Export writes ``images`` (id, file_name, width, height), ``categories`` (id, name, supercategory)
and ``annotations`` (id, image_id, category_id, segmentation, area, bbox, iscrowd). Segmentation:

- ``"rle"`` (default): compressed RLE, ``counts`` as a str. Lossless.
- ``"polygons"``: polygons traced along pixel edges (engine.polygons). COCO polygons cannot hold
  holes (an annotation's polygons are unioned), so a mask *with holes* is written as RLE instead
  (counted in ``ExportStats.rle_for_holes``): lossless beats the requested format. Instances the
  user drew as polygons keep their own polygons.
- ``"auto"`` (the project file): user-drawn polygons as polygons, everything else RLE, plus
  ``score``/``source`` fields so a project reopens as it was saved.

``area`` is the mask's pixel count (what ``pycocotools.mask.area`` gives) and ``bbox`` the tight box
of its pixels. Empty masks are not written.

Reading validates everything (structure, types, ids, references, RLE sizes and run lengths,
polygon point counts) before anything is used, and reports every problem with its JSON path;
``plan_coco_import`` returns an ``ImportPlan`` that a project applies in one step.

The RLE codec here works on cropped masks: encoding and decoding never build a full-image array,
so export cost follows object area, not image area times instance count. Run lengths come from
the patch (numpy); pycocotools' C code turns them into its compressed string.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from engine.annotations import AnnotatedInstance, Category, ClassList, ImageAnnotations, ImportPlan
from engine.errors import AnnotationError, MaskScopeError
from engine.fileio import atomic_write_text
from engine.jsonio import read_json_file
from engine.masks import cropped_from_counts, encode_cropped, string_to_counts
from engine.polygons import polygon_problem, polygons_to_mask, trace_polygons

SEGMENTATION_MODES = ("rle", "polygons", "auto")
MAX_LISTED_PROBLEMS = 20
NOTHING_IMPORTED = "; nothing was imported"


class ExportCancelled(MaskScopeError):
    """The caller's ``cancel`` callback asked to stop; nothing was written."""


# ================================================================================================
# RLE codec (COCO's column-major run lengths and its 6-bit ASCII string form)
# ================================================================================================
def rle_problem(rle: object, image_size: tuple[int, int]) -> tuple[str | None, np.ndarray | None]:
    """Validate a COCO RLE dict for an image of ``image_size``: (problem, counts)."""
    height, width = image_size
    if not isinstance(rle, dict):
        return f"RLE must be an object, got {type(rle).__name__}", None
    if "size" not in rle or "counts" not in rle:
        return "RLE needs 'size' and 'counts'", None
    size = rle["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        return f"RLE 'size' must be [height, width], got {size!r}", None
    if [int(size[0]), int(size[1])] != [height, width]:
        return (f"RLE size {size[0]}x{size[1]} (height x width) does not match the image ({height}x{width})"), None
    counts = rle["counts"]
    if isinstance(counts, str):
        try:
            arr = string_to_counts(counts)
        except ValueError as exc:
            return f"RLE counts: {exc}", None
    elif isinstance(counts, list):
        arr = np.asarray(counts) if counts else np.zeros(0, np.int64)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            return "uncompressed RLE counts must be a list of integers", None
        arr = arr.astype(np.int64)
    else:
        return f"RLE counts must be a string or a list of integers, got {type(counts).__name__}", None
    if arr.size == 0:
        return "RLE counts are empty", None
    if (arr < 0).any():
        return "RLE counts contain a negative run length", None
    total = int(arr.sum())
    if total != height * width:
        return f"RLE run lengths add up to {total} pixels, the image has {height * width}", None
    return None, arr


# ================================================================================================
# Export
# ================================================================================================
@dataclass
class ExportStats:
    images: int = 0
    annotations: int = 0
    rle: int = 0
    polygons: int = 0
    rle_for_holes: int = 0  # polygon mode: masks with holes kept as RLE
    empty_skipped: int = 0
    seconds: float = 0.0
    path: Path | None = None

    def summary(self) -> str:
        text = f"{self.images} images, {self.annotations} annotations ({self.rle} RLE, {self.polygons} polygons)"
        if self.rle_for_holes:
            text += f"; {self.rle_for_holes} masks with holes kept as RLE (COCO polygons cannot hold holes)"
        if self.empty_skipped:
            text += f"; {self.empty_skipped} empty masks skipped"
        return text


def build_coco(
    images: Iterable[ImageAnnotations],
    classes: ClassList,
    segmentation: str = "rle",
    *,
    info: dict | None = None,
    licenses: list | None = None,
    polygon_tolerance: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[dict, ExportStats]:
    """The COCO instances dict for ``images`` and the export statistics."""
    if segmentation not in SEGMENTATION_MODES:
        raise ValueError(f"segmentation must be one of {SEGMENTATION_MODES}, got {segmentation!r}")
    images = list(images)
    start = time.perf_counter()
    stats = ExportStats(images=len(images))
    category_ids = {c.name: c.id for c in classes}
    image_ids = _image_ids(images)
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    for n, (img, image_id) in enumerate(zip(images, image_ids, strict=True)):
        if cancel is not None and cancel():
            raise ExportCancelled("Export cancelled; nothing was written.")
        entry = {k: v for k, v in img.extra.items() if k not in ("id", "file_name", "width", "height")}
        entry.update(id=image_id, file_name=img.file_name, width=img.width, height=img.height)
        out_images.append(entry)
        for inst in img:
            if inst.is_empty:
                stats.empty_skipped += 1
                continue
            if inst.category not in category_ids:
                raise AnnotationError(
                    f"{img.file_name}: instance {inst.id} has class {inst.category!r}, "
                    "which is not in the project's class list"
                )
            seg = _segmentation(inst, segmentation, polygon_tolerance, stats)
            ann = {
                "id": len(out_anns) + 1,
                "image_id": image_id,
                "category_id": category_ids[inst.category],
                "segmentation": seg,
                "area": inst.area,
                "bbox": inst.bbox_xywh(),
                "iscrowd": int(inst.iscrowd),
            }
            if segmentation == "auto":
                if inst.score is not None:
                    ann["score"] = round(inst.score, 6)
                ann["source"] = inst.source
            out_anns.append(ann)
        if progress is not None:
            progress(n + 1, len(images))
    coco = coco_document(out_images, out_anns, classes, info, licenses)
    stats.annotations = len(out_anns)
    stats.seconds = time.perf_counter() - start
    return coco, stats


def coco_document(
    images: list[dict], annotations: list[dict], classes: Iterable[Category], info: Any = None, licenses: Any = None
) -> dict[str, Any]:
    """A COCO instances dict in COCO's key order (info and licenses only when there are some)."""
    coco: dict[str, Any] = {}
    if info is not None:
        coco["info"] = info
    if licenses is not None:
        coco["licenses"] = licenses
    coco["images"] = images
    coco["annotations"] = annotations
    coco["categories"] = [{"id": c.id, "name": c.name, "supercategory": c.supercategory or c.name} for c in classes]
    return coco


def _segmentation(inst: AnnotatedInstance, mode: str, tolerance: float, stats: ExportStats) -> Any:
    if mode != "rle" and inst.polygons:
        stats.polygons += 1
        return [list(p) for p in inst.polygons]
    if mode == "polygons":
        polys, holes = trace_polygons(inst.mask, tolerance)
        if polys and not holes:
            stats.polygons += 1
            return polys
        stats.rle_for_holes += 1
    stats.rle += 1
    return encode_cropped(inst.mask)


def _image_ids(images: list[ImageAnnotations]) -> list[int]:
    """Keep each image's COCO id when it has a unique one; number the others after the largest."""
    used: set[int] = set()
    ids: list[int | None] = []
    for img in images:
        if img.image_id is not None and img.image_id not in used:
            used.add(img.image_id)
            ids.append(img.image_id)
        else:
            ids.append(None)
    nxt = max(used, default=0) + 1
    out = []
    for i in ids:
        if i is None:
            i, nxt = nxt, nxt + 1
        out.append(i)
    return out


def dumps(coco: dict) -> str:
    """Compact JSON (big projects stay small and fast to write)."""
    return json.dumps(coco, separators=(",", ":"), ensure_ascii=False)


def export_coco(
    path: str | Path,
    images: Iterable[ImageAnnotations],
    classes: ClassList,
    segmentation: str = "rle",
    **kwargs: Any,
) -> ExportStats:
    """Build and atomically write a COCO instances file (see ``build_coco`` for the options)."""
    coco, stats = build_coco(images, classes, segmentation, **kwargs)
    start = time.perf_counter()
    atomic_write_text(path, dumps(coco))
    stats.seconds += time.perf_counter() - start
    stats.path = Path(path)
    return stats


# ================================================================================================
# Reading and validation
# ================================================================================================
def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class ProblemList:
    """Collects problems so that one error lists all of them (up to a limit)."""

    def __init__(self, source: Path, consequence: str = "") -> None:
        self.source = source
        self.consequence = consequence  # e.g. "; nothing was imported"
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")

    def raise_if_any(self, error: type[MaskScopeError] = AnnotationError) -> None:
        if not self.items:
            return
        listed = "\n".join(f"  - {p}" for p in self.items[:MAX_LISTED_PROBLEMS])
        more = len(self.items) - MAX_LISTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        n = len(self.items)
        raise error(f"{self.source}: {n} problem{'s' if n > 1 else ''}{self.consequence}:\n{listed}{tail}")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; AnnotationError naming the file and the cause for anything wrong.

    The shared reader (engine.jsonio): regular files only, size and nesting-depth limits.
    """
    return read_json_file(path, AnnotationError)


@dataclass
class CocoDataset:
    """A validated COCO instances file: categories, images with their decoded instances."""

    source: Path
    categories: list[Category]
    images: list[ImageAnnotations]  # file_name as written in the file; image_id set
    info: dict | None = None
    licenses: list | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def instance_count(self) -> int:
        return sum(len(a) for a in self.images)


def looks_like_coco(data: object) -> bool:
    return isinstance(data, dict) and "images" in data and ("annotations" in data or "categories" in data)


def parse_coco(data: object, source: str | Path = "<memory>", consequence: str = "") -> CocoDataset:
    """Validate a parsed COCO instances JSON completely and decode every mask.

    Raises AnnotationError listing every problem (with JSON paths such as
    ``annotations[12] (id 345)``); returns only when the whole file is usable.
    """
    source = Path(source)
    problems = ProblemList(source, consequence)
    warnings: list[str] = []
    if isinstance(data, list):
        raise AnnotationError(
            f"{source}: a JSON list, which looks like a COCO *results* file (detections); "
            "an instances file is an object with 'images', 'annotations' and 'categories'."
        )
    if not isinstance(data, dict):
        raise AnnotationError(f"{source}: expected a JSON object with 'images', 'annotations', 'categories'.")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            problems.add("top level", f"missing key '{key}'")
        elif not isinstance(data[key], list):
            problems.add(key, f"must be a list, got {type(data[key]).__name__}")
    problems.raise_if_any()

    categories = _parse_categories(data["categories"], problems)
    images = _parse_images(data["images"], problems)
    problems.raise_if_any()

    by_image: dict[int, list[AnnotatedInstance]] = {i: [] for i in images}
    cat_names = {c.id: c.name for c in categories}
    seen_ids: set[int] = set()
    for k, ann in enumerate(data["annotations"]):
        parsed = _parse_annotation(k, ann, images, cat_names, seen_ids, problems, warnings)
        if parsed is not None:
            image_id, inst = parsed
            by_image[image_id].append(inst.with_id(len(by_image[image_id]) + 1))
    problems.raise_if_any()

    out = []
    for image_id, (file_name, width, height, extra) in images.items():
        out.append(ImageAnnotations(file_name, width, height, by_image[image_id], image_id=image_id, extra=extra))
    info = data.get("info") if isinstance(data.get("info"), dict) else None
    licenses = data.get("licenses") if isinstance(data.get("licenses"), list) else None
    return CocoDataset(source, categories, out, info, licenses, warnings)


def load_coco(path: str | Path, consequence: str = "") -> CocoDataset:
    path = Path(path)
    return parse_coco(read_json(path), path, consequence)


def _parse_categories(items: list, problems: ProblemList) -> list[Category]:
    out: list[Category] = []
    ids: set[int] = set()
    names: set[str] = set()
    for k, cat in enumerate(items):
        where = f"categories[{k}]"
        if not isinstance(cat, dict):
            problems.add(where, f"must be an object, got {type(cat).__name__}")
            continue
        cid, name, sup = cat.get("id"), cat.get("name"), cat.get("supercategory", "")
        if not _is_int(cid):
            problems.add(where, f"'id' must be an integer, got {cid!r}")
            continue
        where = f"categories[{k}] (id {cid})"
        if not isinstance(name, str) or not name.strip():
            problems.add(where, f"'name' must be a non-empty string, got {name!r}")
            continue
        if sup is None:
            sup = ""
        if not isinstance(sup, str):
            problems.add(where, f"'supercategory' must be a string, got {sup!r}")
            continue
        if cid in ids:
            problems.add(where, f"duplicate category id {cid}")
            continue
        if name in names:
            problems.add(where, f"duplicate category name {name!r}")
            continue
        ids.add(cid)
        names.add(name)
        out.append(Category(name, cid, sup))
    return out


def _parse_images(items: list, problems: ProblemList) -> dict[int, tuple[str, int, int, dict]]:
    out: dict[int, tuple[str, int, int, dict]] = {}
    names: set[str] = set()
    for k, img in enumerate(items):
        where = f"images[{k}]"
        if not isinstance(img, dict):
            problems.add(where, f"must be an object, got {type(img).__name__}")
            continue
        iid = img.get("id")
        if not _is_int(iid):
            problems.add(where, f"'id' must be an integer, got {iid!r}")
            continue
        where = f"images[{k}] (id {iid})"
        file_name, width, height = img.get("file_name"), img.get("width"), img.get("height")
        bad = False
        if not isinstance(file_name, str) or not file_name.strip():
            problems.add(where, f"'file_name' must be a non-empty string, got {file_name!r}")
            bad = True
        for key, v in (("width", width), ("height", height)):
            if not _is_int(v) or v < 1:
                problems.add(where, f"'{key}' must be a positive integer, got {v!r}")
                bad = True
        if bad:
            continue
        assert isinstance(file_name, str) and _is_int(width) and _is_int(height)  # checked just above
        if iid in out:
            problems.add(where, f"duplicate image id {iid}")
            continue
        if file_name in names:
            problems.add(where, f"file_name {file_name!r} is listed twice")
            continue
        names.add(file_name)
        extra = {key: v for key, v in img.items() if key not in ("id", "file_name", "width", "height")}
        out[iid] = (file_name, width, height, extra)
    return out


def _parse_annotation(
    k: int,
    ann: object,
    images: dict[int, tuple[str, int, int, dict]],
    cat_names: dict[int, str],
    seen_ids: set[int],
    problems: ProblemList,
    warnings: list[str],
) -> tuple[int, AnnotatedInstance] | None:
    where = f"annotations[{k}]"
    if not isinstance(ann, dict):
        problems.add(where, f"must be an object, got {type(ann).__name__}")
        return None
    aid = ann.get("id")
    if not _is_int(aid):
        problems.add(where, f"'id' must be an integer, got {aid!r}")
        return None
    where = f"annotations[{k}] (id {aid})"
    if aid in seen_ids:
        problems.add(where, f"duplicate annotation id {aid}")
        return None
    seen_ids.add(aid)
    image_id, category_id = ann.get("image_id"), ann.get("category_id")
    if not _is_int(image_id) or image_id not in images:
        problems.add(where, f"'image_id' {image_id!r} is not the id of any entry in 'images'")
        return None
    if not _is_int(category_id) or category_id not in cat_names:
        problems.add(where, f"'category_id' {category_id!r} is not the id of any entry in 'categories'")
        return None
    iscrowd = ann.get("iscrowd", 0)
    if iscrowd not in (0, 1) or isinstance(iscrowd, float):
        problems.add(where, f"'iscrowd' must be 0 or 1, got {iscrowd!r}")
        return None
    score = ann.get("score")
    if score is not None and not _is_number(score):
        problems.add(where, f"'score' must be a number, got {score!r}")
        return None
    source = ann.get("source", "import")
    if source not in ("manual", "prediction", "import"):
        source = "import"
    if "segmentation" not in ann:
        problems.add(where, "no 'segmentation' (box-only annotations are not supported)")
        return None
    _, width, height, _ = images[image_id]
    seg = ann["segmentation"]
    polygons = None
    if isinstance(seg, dict):
        problem, counts = rle_problem(seg, (height, width))
        if problem:
            problems.add(f"{where}.segmentation", problem)
            return None
        assert counts is not None  # rle_problem gives the counts whenever it finds no problem
        mask = cropped_from_counts(counts, (height, width))
    elif isinstance(seg, list):
        if not seg:
            warnings.append(f"{where}: empty segmentation, skipped")
            return None
        for j, poly in enumerate(seg):
            problem = polygon_problem(poly)
            if problem:
                problems.add(f"{where}.segmentation[{j}]", problem)
                return None
        mask = polygons_to_mask(seg, (height, width))
        polygons = tuple(map(tuple, seg))
    else:
        problems.add(f"{where}.segmentation", f"must be an RLE object or a list of polygons, got {type(seg).__name__}")
        return None
    if mask.bits.size == 0:
        warnings.append(f"{where}: the mask is empty (no pixel inside the image), skipped")
        return None
    inst = AnnotatedInstance(1, cat_names[category_id], mask, polygons, score, source, bool(iscrowd))
    return image_id, inst


# ================================================================================================
# Import onto a project
# ================================================================================================
# resolve(file_name) -> (project file name, (height, width) of the actual image) or None if not found.
# It may raise AnnotationError/ImageLoadError for an image that exists but cannot be read.
Resolver = Callable[[str], "tuple[str, tuple[int, int]] | None"]


def plan_coco_import(path: str | Path, resolve: Resolver) -> ImportPlan:
    """Read and validate a COCO file and map its images onto a project's (see ``Resolver``).

    Images the project does not have are listed in ``missing_images`` (their annotations are not
    imported); an image whose size differs from the file's entry is an error.
    """
    path = Path(path)
    dataset = load_coco(path, NOTHING_IMPORTED)
    return plan_from_dataset(dataset, resolve)


def plan_from_dataset(dataset: CocoDataset, resolve: Resolver) -> ImportPlan:
    problems = ProblemList(dataset.source, NOTHING_IMPORTED)
    plan = ImportPlan(dataset.source, "coco", list(dataset.categories), warnings=list(dataset.warnings))
    targets: dict[str, str] = {}
    for img in dataset.images:
        where = f"images (id {img.image_id}, file_name {img.file_name!r})"
        try:
            found = resolve(img.file_name)
        except MaskScopeError as exc:
            problems.add(where, str(exc))
            continue
        if found is None:
            plan.missing_images.append(img.file_name)
            continue
        name, (height, width) = found
        if (height, width) != img.image_size:
            problems.add(
                where,
                f"the file says {img.width}x{img.height} but the image {name} is {width}x{height} "
                "(annotations for a resized image?)",
            )
            continue
        if name in targets:
            problems.add(where, f"maps to the same project image {name!r} as {targets[name]!r}")
            continue
        targets[name] = img.file_name
        extra = dict(img.extra)
        plan.images.append(ImageAnnotations(name, width, height, img.instances, extra=extra))
    problems.raise_if_any()
    return plan
