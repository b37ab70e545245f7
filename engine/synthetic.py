"""Seedable generator of a synthetic instance-segmentation dataset: coloured shapes on textured ground.

Used for the demo models, the fine-tuning benchmark and the tests. Every image holds a few shapes
of the requested classes with random size, rotation and colour, on a noise / gradient / stripe
background; shapes may occlude each other (each keeps at least ``MIN_VISIBLE`` of its area), and
the masks are the *visible* pixels. Everything follows from one seed.

``write_coco_dataset`` writes the images plus a COCO instances JSON (compressed RLE masks) that
pycocotools loads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.fileio import atomic_write_text
from engine.masks import encode_rle

# Every shape the generator can draw. The demo models learn DEMO_CLASSES; UNSEEN_CLASS is kept out
# of them so the fine-tuning benchmark has a class the demo models have never seen.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross", "hexagon")
DEMO_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring")
UNSEEN_CLASS = "cross"

MIN_VISIBLE = 0.55  # an occluded shape keeps at least this fraction of its own area
MIN_AREA = 24  # pixels; smaller visible shapes are not placed
_SHIFT = 4  # cv2 fixed-point bits: sub-pixel vertex positions
_BACKGROUNDS = ("noise", "gradient", "stripes", "plain")


@dataclass
class SyntheticImage:
    """One generated image with its instances; ``labels`` index the ``classes`` it was made with."""

    image: np.ndarray  # uint8 (H, W, 3) RGB
    masks: np.ndarray  # bool (N, H, W), visible pixels of each instance
    labels: np.ndarray  # int64 (N,)
    classes: tuple[str, ...]
    full_areas: np.ndarray  # int64 (N,), pixels of each whole shape before occlusion

    @property
    def boxes(self) -> np.ndarray:
        """Tight float32 (N, 4) x1, y1, x2, y2 boxes of the masks (x2/y2 exclusive, pixel edges)."""
        return masks_to_boxes(self.masks)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight x1y1x2y2 boxes (x2, y2 one past the last set pixel) of bool (N, H, W) masks."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        ys = np.flatnonzero(m.any(axis=1))
        xs = np.flatnonzero(m.any(axis=0))
        if len(ys):
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def _as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = (int(v) for v in size)
    return h, w


# --- shapes ---------------------------------------------------------------------------------
def _polygon(n: int, radius: float, angle: float, phase: float = 0.0) -> np.ndarray:
    t = angle + phase + np.arange(n) * (2 * math.pi / n)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _star(radius: float, angle: float) -> np.ndarray:
    outer = _polygon(5, radius, angle, -math.pi / 2)
    inner = _polygon(5, radius * 0.45, angle, -math.pi / 2 + math.pi / 5)
    return np.stack([outer, inner], axis=1).reshape(-1, 2)


def _cross(radius: float, angle: float) -> np.ndarray:
    a, b = radius, radius * 0.34  # arm length and half-width
    pts = np.array(
        [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]
    )
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def shape_mask(shape: str, size: tuple[int, int], center: tuple[float, float], radius: float, angle: float):
    """Bool (H, W) mask of one shape centred at ``center`` (x, y) with circumradius ``radius``."""
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    scale = 1 << _SHIFT
    cx, cy = center
    if shape in ("circle", "ring"):
        c = (round(cx * scale), round(cy * scale))
        cv2.circle(mask, c, round(radius * scale), 1, -1, cv2.LINE_8, _SHIFT)
        if shape == "ring":
            cv2.circle(mask, c, round(radius * 0.55 * scale), 0, -1, cv2.LINE_8, _SHIFT)
        return mask.astype(bool)
    if shape == "square":
        pts = _polygon(4, radius, angle, math.pi / 4)
    elif shape == "triangle":
        pts = _polygon(3, radius, angle, -math.pi / 2)
    elif shape == "hexagon":
        pts = _polygon(6, radius, angle)
    elif shape == "star":
        pts = _star(radius, angle)
    elif shape == "cross":
        pts = _cross(radius, angle)
    else:
        raise ValueError(f"Unknown shape {shape!r}; choose from {SHAPES}")
    pts = np.round((pts + (cx, cy)) * scale).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, _SHIFT)
    return mask.astype(bool)


# --- textures -------------------------------------------------------------------------------
def _random_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(60, 256), rng.integers(60, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    c1 = rng.uniform(0, 255, 3).astype(np.float32)
    c2 = np.clip(c1 + rng.normal(0, 45, 3), 0, 255).astype(np.float32)  # low contrast texture
    kind = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":
        cells = int(rng.integers(3, 12))
        low = rng.random((cells, cells)).astype(np.float32)
        t = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    elif kind == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        proj = xx * math.cos(a) + yy * math.sin(a)
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    elif kind == "stripes":
        a = rng.uniform(0, math.pi)
        period = rng.uniform(0.08, 0.3) * min(h, w)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period))
    else:
        t = np.zeros((h, w), np.float32)
    return c1 + t[..., None] * (c2 - c1)


def _shade_object(rng: np.random.Generator, color: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The object's colour with a soft linear shading across the image (lit from one side)."""
    h, w = size
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx * math.cos(a) + yy * math.sin(a)) / max(h, w)
    return color + rng.uniform(-40, 40) * t[..., None]


# --- images ---------------------------------------------------------------------------------
def generate_image(
    rng: np.random.Generator,
    size: int | Sequence[int] = 128,
    classes: Sequence[str] = DEMO_CLASSES,
    n_objects: tuple[int, int] = (1, 4),
    radius_range: tuple[float, float] = (0.09, 0.24),
) -> SyntheticImage:
    """Draw one image with ``n_objects`` (inclusive range) shapes of ``classes``.

    ``radius_range`` is the circumradius as a fraction of the shorter image side.
    """
    classes = tuple(classes)
    for name in classes:
        if name not in SHAPES:
            raise ValueError(f"Unknown shape class {name!r}; choose from {SHAPES}")
    h, w = _as_hw(size)
    canvas = _background(rng, (h, w))
    masks: list[np.ndarray] = []  # visible pixels so far
    full_areas: list[int] = []
    labels: list[int] = []
    wanted = int(rng.integers(n_objects[0], n_objects[1] + 1))
    short = min(h, w)
    for _ in range(wanted):
        label = int(rng.integers(len(classes)))
        for _attempt in range(20):
            r = rng.uniform(*radius_range) * short
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            m = shape_mask(classes[label], (h, w), (cx, cy), r, rng.uniform(0, 2 * math.pi))
            area = int(m.sum())
            if area < MIN_AREA:
                continue
            # The new shape goes on top; every earlier one must stay mostly visible.
            if all((old & ~m).sum() >= MIN_VISIBLE * fa for old, fa in zip(masks, full_areas, strict=True)):
                break
        else:
            continue  # no room for this one
        under = canvas[m].mean(axis=0)
        for _c in range(10):  # a colour that stands out from what lies under it
            color = _random_color(rng)
            if np.linalg.norm(color - under) > 80:
                break
        shaded = _shade_object(rng, color, (h, w))
        canvas[m] = shaded[m]
        masks = [old & ~m for old in masks]
        masks.append(m)
        full_areas.append(area)
        labels.append(label)
    canvas += rng.normal(0, rng.uniform(2, 8), canvas.shape).astype(np.float32)
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    mask_arr = np.stack(masks) if masks else np.zeros((0, h, w), bool)
    return SyntheticImage(image, mask_arr, np.asarray(labels, np.int64), classes, np.asarray(full_areas, np.int64))


def generate_dataset(
    n_images: int,
    size: int | Sequence[int] = 128,
    classes: Sequence[str] = DEMO_CLASSES,
    seed: int = 0,
    n_objects: tuple[int, int] = (1, 4),
) -> Iterator[SyntheticImage]:
    """Yield ``n_images`` images; image ``i`` depends only on (seed, i), not on how many are drawn."""
    for i in range(n_images):
        rng = np.random.default_rng([seed, i])
        yield generate_image(rng, size, classes, n_objects)


def write_coco_dataset(
    out_dir: str | Path,
    n_images: int,
    size: int | Sequence[int] = 128,
    classes: Sequence[str] = DEMO_CLASSES,
    seed: int = 0,
    image_format: str = "png",
    n_objects: tuple[int, int] = (1, 4),
    json_name: str = "annotations.json",
) -> Path:
    """Write ``out_dir/images/*.{png,jpg}`` and ``out_dir/<json_name>`` (COCO instances, RLE masks).

    Categories get ids 1..N in the order of ``classes``. Returns the JSON path.
    """
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    out = Path(out_dir)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    classes = tuple(classes)
    images, annotations = [], []
    ann_id = 1
    for i, sample in enumerate(generate_dataset(n_images, size, classes, seed, n_objects)):
        name = f"synthetic_{i:05d}.{image_format}"
        bgr = cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
        if not cv2.imwrite(str(img_dir / name), bgr, params):
            raise OSError(f"Could not write {img_dir / name}")
        h, w = sample.image.shape[:2]
        images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
        for m, label, box in zip(sample.masks, sample.labels, sample.boxes, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": i + 1,
                    "category_id": int(label) + 1,
                    "segmentation": encode_rle(m),
                    "area": int(m.sum()),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
            )
            ann_id += 1
    coco = {
        "info": {"description": "MaskScope synthetic shapes", "seed": seed, "classes": list(classes)},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": c, "supercategory": "shape"} for k, c in enumerate(classes)],
    }
    path = out / json_name
    atomic_write_text(path, json.dumps(coco))
    return path
