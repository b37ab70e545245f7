"""Import labelme JSON files (one file, or a folder of them) onto a project's images.

Shapes:
- ``polygon`` (>= 3 points), ``rectangle`` (2 corners), ``circle`` (centre + a point on the
  circle, turned into a polygon with about one vertex per pixel of circumference): rasterised as
  COCO polygons with pycocotools and kept as polygons. Coordinates are used as labelme's canvas
  and its own labelme2coco converter use them (pixel-edge coordinates, like COCO's).
- ``mask`` (labelme >= 5.5): a base64 PNG of the region between its two corner points, placed the
  way labelme places it (corners truncated to int, region inclusive of the second corner).
- ``point``, ``points``, ``line``, ``linestrip``: no area; ignored with a warning.
- Shapes with the same label and the same non-null ``group_id`` form one instance (their union).

``imagePath`` is resolved relative to the JSON file, then by name inside the project, then by a
JSON file stem matching an image. ``imageHeight``/``imageWidth`` must match the actual image.
Every file is validated completely before anything is applied (``ImportPlan``); problems name
the file and the shape index.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.annotations import IGNORE, AnnotatedInstance, ImageAnnotations, ImportPlan
from engine.coco_io import NOTHING_IMPORTED, ProblemList, read_json
from engine.errors import AnnotationError, MaskScopeError
from engine.masks import CroppedMask
from engine.polygons import polygons_to_mask


class ImageResolver(Protocol):
    """What an import needs from a project (``engine.project.Project`` or any other store of images)."""

    def resolve_image(self, ref: str, base: Path | None = None) -> tuple[str, tuple[int, int]] | None:
        """(project image name, (height, width)) of the image ``ref`` names, or None; refs that
        leave the project folder never resolve to a file outside it."""
        ...


AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
IGNORED_SHAPES = ("point", "points", "line", "linestrip")


def looks_like_labelme(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def union_masks(masks: Iterable[CroppedMask], image_size: tuple[int, int]) -> CroppedMask:
    """Union of cropped masks of one image, as a tight cropped mask."""
    masks = [m for m in masks if m.bits.size]
    if not masks:
        return CroppedMask(0, 0, np.zeros((0, 0), bool), image_size)
    x0 = min(m.x0 for m in masks)
    y0 = min(m.y0 for m in masks)
    x1 = max(m.x0 + m.bits.shape[1] for m in masks)
    y1 = max(m.y0 + m.bits.shape[0] for m in masks)
    bits = np.zeros((y1 - y0, x1 - x0), bool)
    for m in masks:
        h, w = m.bits.shape
        bits[m.y0 - y0 : m.y0 - y0 + h, m.x0 - x0 : m.x0 - x0 + w] |= m.bits
    return CroppedMask(x0, y0, bits, image_size).tight()


def _circle_polygon(cx: float, cy: float, r: float) -> list[float]:
    n = int(min(max(16, math.ceil(2 * math.pi * r)), 720))
    t = np.arange(n) * (2 * math.pi / n)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1).reshape(-1).round(3).tolist()


def _decode_mask_png(text: object) -> np.ndarray:
    from PIL import Image

    if not isinstance(text, str) or not text:
        raise ValueError("a 'mask' shape needs its 'mask' field (base64 PNG)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("'mask' is not valid base64") from None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            arr = np.asarray(img.convert("L"))
    except Exception as exc:  # PIL raises several types for corrupt data
        raise ValueError(f"'mask' is not a readable PNG image ({type(exc).__name__})") from None
    return arr > 0


def _points(shape: dict) -> list[tuple[float, float]]:
    pts = shape.get("points")
    if not isinstance(pts, list):
        raise ValueError(f"'points' must be a list of [x, y], got {type(pts).__name__}")
    out = []
    for j, p in enumerate(pts):
        if not (isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_number(v) for v in p)):
            raise ValueError(f"points[{j}] must be [x, y] with finite numbers, got {p!r}")
        out.append((float(p[0]), float(p[1])))
    return out


def _shape_geometry(shape: dict, image_size: tuple[int, int]) -> tuple[list[list[float]] | None, CroppedMask | None]:
    """(polygons, None) or (None, mask) for an area shape; ValueError naming what is wrong."""
    kind = shape.get("shape_type") or "polygon"
    pts = _points(shape)
    height, width = image_size
    if kind == "polygon":
        if len(pts) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(pts)}")
        return [[v for p in pts for v in p]], None
    if kind == "rectangle":
        if len(pts) != 2:
            raise ValueError(f"a rectangle needs 2 corner points, got {len(pts)}")
        (xa, ya), (xb, yb) = pts
        x1, x2 = sorted((xa, xb))
        y1, y2 = sorted((ya, yb))
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            raise ValueError("the rectangle has no area (both corners on one line)")
        return [[x1, y1, x2, y1, x2, y2, x1, y2]], None
    if kind == "circle":
        if len(pts) != 2:
            raise ValueError(f"a circle needs 2 points (centre, point on the circle), got {len(pts)}")
        (cx, cy), (px, py) = pts
        r = math.hypot(px - cx, py - cy)
        if r <= 0:
            raise ValueError("the circle has radius 0")
        return [_circle_polygon(cx, cy, r)], None
    if kind == "mask":
        if len(pts) != 2:
            raise ValueError(f"a mask shape needs 2 corner points, got {len(pts)}")
        bits = _decode_mask_png(shape.get("mask"))
        (x1, y1), (x2, y2) = (tuple(int(v) for v in p) for p in pts)  # labelme truncates, like astype(int)
        if x1 < 0 or y1 < 0 or x2 >= width or y2 >= height or x2 < x1 or y2 < y1:
            raise ValueError(f"mask corners ({x1}, {y1}), ({x2}, {y2}) are outside the {width}x{height} image")
        if bits.shape != (y2 - y1 + 1, x2 - x1 + 1):
            raise ValueError(
                f"the mask PNG is {bits.shape[1]}x{bits.shape[0]} but its corners span "
                f"{x2 - x1 + 1}x{y2 - y1 + 1} pixels"
            )
        return None, CroppedMask(x1, y1, bits, image_size).tight()
    raise ValueError(f"unknown shape_type {kind!r}")


def _find_image(project: ImageResolver, json_path: Path, data: dict) -> tuple[str, tuple[int, int]] | None:
    ref = data.get("imagePath")
    if isinstance(ref, str) and ref.strip():
        found = project.resolve_image(ref, base=json_path.parent)
        if found is not None:
            return found
    from engine.imageio import IMAGE_EXTENSIONS

    for ext in sorted(IMAGE_EXTENSIONS):  # labelme keeps X.json next to X.jpg
        for candidate in (json_path.with_suffix(ext), json_path.with_suffix(ext.upper())):
            if candidate.is_file():
                found = project.resolve_image(str(candidate.absolute()))
                if found is not None:
                    return found
    return None


def _plan_file(
    json_path: Path,
    data: dict,
    project: ImageResolver,
    plan: ImportPlan,
    problems: ProblemList,
    by_name: dict[str, ImageAnnotations],
) -> None:
    fname = json_path.name
    shapes = data["shapes"]
    try:
        found = _find_image(project, json_path, data)
    except MaskScopeError as exc:
        problems.add(fname, str(exc))
        return
    if found is None:
        plan.missing_images.append(f"{data.get('imagePath') or json_path.stem} (from {fname})")
        return
    name, (height, width) = found
    declared = (data.get("imageHeight"), data.get("imageWidth"))
    if declared != (None, None):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in declared):
            problems.add(fname, f"imageHeight/imageWidth must be integers, got {declared[0]!r}/{declared[1]!r}")
            return
        if declared != (height, width):
            problems.add(
                fname,
                f"imageWidth x imageHeight is {declared[1]}x{declared[0]} but the image {name} is {width}x{height}",
            )
            return
    groups: dict[object, dict] = {}
    for k, shape in enumerate(shapes):
        where = f"{fname}: shapes[{k}]"
        if not isinstance(shape, dict):
            problems.add(where, f"must be an object, got {type(shape).__name__}")
            continue
        label, kind, group_id = shape.get("label"), shape.get("shape_type") or "polygon", shape.get("group_id")
        if not isinstance(kind, str):
            problems.add(where, f"'shape_type' must be a string, got {kind!r}")
            continue
        if kind in IGNORED_SHAPES:
            plan.warnings.append(f"{where}: a '{kind}' shape has no area; ignored")
            continue
        if not isinstance(label, str) or not label.strip():
            problems.add(where, f"'label' must be a non-empty string, got {label!r}")
            continue
        if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int)):
            problems.add(where, f"'group_id' must be an integer or null, got {group_id!r}")
            continue
        try:
            polys, mask = _shape_geometry(shape, (height, width))
        except ValueError as exc:
            problems.add(where, str(exc))
            continue
        key = (label, group_id) if group_id is not None else ("#", k)
        group = groups.setdefault(key, {"label": label, "polygons": [], "masks": [], "first": k})
        if polys is not None:
            group["polygons"].extend(polys)
        if mask is not None:
            group["masks"].append(mask)
    entry = by_name.get(name)
    if entry is None:
        entry = by_name[name] = ImageAnnotations(name, width, height)
        plan.images.append(entry)
    for group in groups.values():
        parts = list(group["masks"])
        if group["polygons"]:
            parts.append(polygons_to_mask(group["polygons"], (height, width)))
        mask = union_masks(parts, (height, width))
        if mask.bits.size == 0:
            plan.warnings.append(f"{fname}: shapes[{group['first']}] covers no pixel of the image; skipped")
            continue
        keep_polys = group["polygons"] if not group["masks"] else None  # polygons describe it exactly
        crowd = group["label"] == IGNORE  # labelme's ignore label: a crowd/ignore region, never a class
        entry.add(AnnotatedInstance(entry.next_id(), group["label"], mask, keep_polys, source="import", iscrowd=crowd))


def plan_labelme_import(path: str | Path, project: ImageResolver, skip: Iterable[Path] = ()) -> ImportPlan:
    """Validate labelme JSON (a file or every ``*.json`` of a folder) against ``project``'s images
    (anything with ``resolve_image``, see ``ImageResolver``).

    In a folder, JSON files that are not labelme files (no 'shapes', e.g. a COCO file) are skipped
    with a warning; ``skip`` lists files to pass over silently (the project's own files).
    """
    path = Path(path)
    plan = ImportPlan(path, "labelme")
    problems = ProblemList(path, NOTHING_IMPORTED)
    if path.is_dir():
        skipped = {Path(p).absolute() for p in skip}
        files = sorted(p for p in path.glob("*.json") if p.absolute() not in skipped)
        if not files:
            raise AnnotationError(f"{path}: no labelme .json files in this folder; nothing was imported.")
    else:
        files = [path]
    by_name: dict[str, ImageAnnotations] = {}
    n_labelme = 0
    for f in files:
        try:
            data = read_json(f)
        except AnnotationError as exc:
            problems.items.append(str(exc))
            continue
        if not looks_like_labelme(data):
            if path.is_dir():
                plan.warnings.append(f"{f.name}: not a labelme file (no 'shapes' list); skipped")
                continue
            problems.add(f.name, "not a labelme file: no 'shapes' list")
            continue
        n_labelme += 1
        _plan_file(f, data, project, plan, problems, by_name)
    problems.raise_if_any()
    if path.is_dir() and n_labelme == 0:
        raise AnnotationError(f"{path}: none of the .json files is a labelme file; nothing was imported.")
    return plan
