"""Training data: a COCO instances set (JSON + image folder) as a torch Dataset, its seeded
train/validation split by image, and the augmentations (horizontal flip, scale jitter) that move
image, masks and boxes together.

Targets follow ``Segmenter.losses``: ``boxes`` float (N, 4) x1y1x2y2 pixels, ``labels`` int64
0-based into the set's classes, ``masks`` uint8 (N, H, W), ``iscrowd`` int64 (N,).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from engine.errors import AnnotationError, DataError
from engine.paths import path_inside

log = logging.getLogger(__name__)

MIN_BOX_SIDE = 1.0  # pixels; thinner annotations carry no trainable box


class Cancelled(Exception):
    """Raised inside the data loop when the cancel event is set."""


@dataclass
class ImageRecord:
    """One image of a set and its annotations (COCO dicts, ``label`` added: 0-based class index)."""

    image_id: int
    path: Path
    height: int
    width: int
    annotations: list[dict] = field(default_factory=list)


@dataclass
class CocoSource:
    """A COCO instances set: the class list (in category id order) and the images."""

    json_path: Path
    image_dir: Path
    classes: list[str]
    category_ids: list[int]  # COCO category id of each class index
    records: list[ImageRecord]
    coco: dict  # the parsed JSON, for evaluation against the ground truth

    def subset(self, image_ids: Sequence[int]) -> list[ImageRecord]:
        wanted = set(int(i) for i in image_ids)
        return [r for r in self.records if r.image_id in wanted]


def _fail(path: Path, cause: str) -> DataError:
    return DataError(f"{path}: {cause}")


NOT_LOADED = "; the data set was not loaded"


def load_coco_source(json_path: str | Path, image_dir: str | Path | None = None) -> CocoSource:
    """Read and check a COCO instances JSON; images are looked up in ``image_dir``
    (default: the JSON's ``images/`` subfolder when there is one, else the JSON's folder).

    The file goes through the same strict reader as ``import`` (engine.coco_io): dangling ids,
    unknown categories, bad RLE or polygons, duplicate ids... raise ``DataError`` listing every
    problem with its JSON path. So do no categories, no annotated image, image files that are not
    there, and file names that leave ``image_dir``.
    """
    from engine.coco_io import read_json

    json_path = Path(json_path)
    try:
        coco = read_json(json_path)
    except AnnotationError as exc:
        raise DataError(str(exc)) from exc
    if image_dir is None:
        image_dir = json_path.parent / "images" if (json_path.parent / "images").is_dir() else json_path.parent
    return source_from_coco(coco, json_path, image_dir)


def load_project_source(path: str | Path) -> CocoSource:
    """A MaskScope project (folder or its annotations JSON) as a training set: the project's
    classes that are used or kept, and every annotated image, as the project would export them.

    With a project store (``.maskscope/project.db``) the set is read from it in one read
    transaction, so a GUI editing meanwhile never gives a half-applied edit; the store is opened
    read-only and never created. A folder without a store is read from its ``annotations.json``.
    """
    from engine.project import ANNOTATIONS_NAME, store_path_for
    from engine.store.export import build_coco_from_store
    from engine.store.store import ProjectStore

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    db = store_path_for(folder)
    if not db.is_file():
        json_path = path if path.is_file() else folder / ANNOTATIONS_NAME
        if not json_path.is_file():
            raise _fail(
                folder,
                "no annotations file (annotations.json) and no project store (.maskscope/project.db); "
                "annotate some images first",
            )
        return load_coco_source(json_path, folder)
    store = ProjectStore(db, readonly=True)
    try:
        with store.snapshot():  # classes, counts and instances from the same committed state
            counts = store.class_counts()
            classes = [c for c in store.classes() if counts.get(c.name, 0) > 0 or c.keep]
            coco, _stats = build_coco_from_store(store, classes, "rle")
    finally:
        store.close()
    return source_from_coco(coco, db, folder)


def load_data(project: str | Path | None, coco: str | Path | None, images: str | Path | None = None) -> CocoSource:
    """The set named on a command line: a project, or a COCO JSON (+ image folder)."""
    if project is not None:
        return load_project_source(project)
    if coco is None:
        raise DataError("Give a project folder or a COCO annotations file.")
    return load_coco_source(coco, images)


def source_from_coco(coco: object, origin: Path, image_dir: str | Path) -> CocoSource:
    """Validate a parsed COCO dict with the strict reader (``origin`` names it in errors) and
    index it by image. Only a file that passes completely is used."""
    from engine.coco_io import ProblemList, parse_coco

    origin = Path(origin)
    try:
        dataset = parse_coco(coco, origin, NOT_LOADED)
    except AnnotationError as exc:
        raise DataError(str(exc)) from exc
    assert isinstance(coco, dict)  # parse_coco accepts nothing else
    for warning in dataset.warnings:
        log.warning("%s: %s", origin, warning)
    if not dataset.categories:
        raise _fail(origin, "has no categories; a training set needs at least one class")
    cats = sorted(dataset.categories, key=lambda c: c.id)
    cat_ids = [int(c.id) for c in cats]
    classes = [c.name for c in cats]
    label_of = {cid: k for k, cid in enumerate(cat_ids)}
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise _fail(image_dir, "image folder not found")

    problems = ProblemList(origin, NOT_LOADED)
    records: dict[int, ImageRecord] = {}
    for k, img in enumerate(dataset.images):  # the reader kept every entry, in file order
        assert img.image_id is not None
        try:
            path = path_inside(image_dir, img.file_name)
        except ValueError as exc:
            problems.add(f"images[{k}] (id {img.image_id})", f"file_name {exc}; refused")
            continue
        records[img.image_id] = ImageRecord(img.image_id, path, img.height, img.width)
    problems.raise_if_any(DataError)
    for ann in coco["annotations"]:
        # Validated above: every annotation has a known image and category and a usable segmentation.
        records[ann["image_id"]].annotations.append({**ann, "label": label_of[ann["category_id"]]})

    if not any(r.annotations for r in records.values()):
        raise _fail(origin, "has no annotated images with masks; nothing to train on")
    _check_image_files(list(records.values()), origin, image_dir)
    return CocoSource(origin, image_dir, classes, cat_ids, list(records.values()), coco)


def _check_image_files(records: list[ImageRecord], origin: Path, image_dir: Path) -> None:
    missing, special = [], []
    for r in records:
        if not r.path.exists():
            missing.append(r.path)
        elif not r.path.is_file():  # a folder, FIFO, socket or device named like an image
            special.append(r.path)
    if missing:
        raise _fail(
            image_dir, f"{len(missing)} image file(s) listed in {origin.name} are missing, e.g. {missing[0].name}"
        )
    if special:
        raise _fail(
            image_dir,
            f"{len(special)} image path(s) listed in {origin.name} are not regular files "
            f"(a folder, FIFO, socket or device), e.g. {special[0].name}",
        )


def split_by_image(image_ids: Sequence[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of image ids into (train, val). At least one image stays in train; with
    ``val_fraction`` > 0 and two or more images, at least one goes to val."""
    ids = sorted(int(i) for i in image_ids)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(len(ids) * val_fraction)
    if val_fraction > 0 and len(ids) >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, len(ids) - 1)
    order = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return train, val


# --- reading one sample ---------------------------------------------------------------------
def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 image through the app's loader (EXIF, palette, 16-bit... handled there)."""
    from engine.imageio import load_image

    return load_image(path).rgb


def decode_segmentation(seg, height: int, width: int) -> np.ndarray:
    """Polygons, uncompressed or compressed RLE -> bool (H, W)."""
    if isinstance(seg, list):  # polygons
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return np.zeros((height, width), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, height, width)
    elif isinstance(seg, dict):
        counts = seg["counts"]
        rle = {"size": seg["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise ValueError(f"unknown segmentation format {type(seg).__name__}")
    mask = mask_utils.decode(rle).astype(bool)
    if mask.shape != (height, width):
        raise ValueError(f"mask size {mask.shape} differs from image size {(height, width)}")
    return mask


def load_sample(rec: ImageRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image RGB uint8, masks bool (N,H,W), labels int64, iscrowd int64) of one record."""
    image = read_rgb(rec.path)
    h, w = image.shape[:2]
    masks, labels, crowd = [], [], []
    for ann in rec.annotations:
        try:
            m = decode_segmentation(ann["segmentation"], h, w)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{rec.path.name}: annotation {ann.get('id')} has a bad segmentation ({exc})") from exc
        if not m.any():
            continue
        masks.append(m)
        labels.append(ann["label"])
        crowd.append(int(ann.get("iscrowd", 0)))
    mask_arr = np.stack(masks) if masks else np.zeros((0, h, w), bool)
    return image, mask_arr, np.asarray(labels, np.int64), np.asarray(crowd, np.int64)


# --- augmentation ---------------------------------------------------------------------------
@dataclass
class AugmentConfig:
    hflip: float = 0.5  # probability of a horizontal flip
    scale: tuple[float, float] = (0.75, 1.25)  # content zoom range; the canvas keeps its size


def hflip(image: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return image[:, ::-1].copy(), masks[:, :, ::-1].copy()


def scale_jitter(
    image: np.ndarray, masks: np.ndarray, factor: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Zoom the content by ``factor`` keeping the image size: crop a random window when zooming in,
    pad (with the mean colour) at a random offset when zooming out. The model's own resize to its
    input size would undo a plain resize, so the zoom is what changes object scale."""
    h, w = image.shape[:2]
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    # Masks are resampled like the image (bilinear about pixel centres), then cut at 0.5.
    # INTER_NEAREST would pick source pixel floor(x / factor), moving every zoomed mask about half a
    # pixel right of and below its object, and the models learn that offset.
    ms = (
        np.stack([cv2.resize(m.astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR) > 0.5 for m in masks])
        if len(masks)
        else np.zeros((0, nh, nw), bool)
    )
    out_img = np.empty_like(image)
    out_img[:] = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    out_masks = np.zeros((len(masks), h, w), bool)
    # Source window in the resized image and destination window in the output canvas.
    sy = int(rng.integers(0, nh - h + 1)) if nh > h else 0
    sx = int(rng.integers(0, nw - w + 1)) if nw > w else 0
    dy = int(rng.integers(0, h - nh + 1)) if nh < h else 0
    dx = int(rng.integers(0, w - nw + 1)) if nw < w else 0
    ch, cw = min(h, nh), min(w, nw)
    out_img[dy : dy + ch, dx : dx + cw] = img[sy : sy + ch, sx : sx + cw]
    out_masks[:, dy : dy + ch, dx : dx + cw] = ms[:, sy : sy + ch, sx : sx + cw]
    return out_img, out_masks


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight x1y1x2y2 float32 boxes (x2, y2 one past the last set pixel)."""
    from engine.synthetic import masks_to_boxes as _boxes

    return _boxes(masks)


def to_target(masks: np.ndarray, labels: np.ndarray, crowd: np.ndarray) -> dict[str, torch.Tensor]:
    """Build a losses() target, dropping instances whose box is thinner than ``MIN_BOX_SIDE``."""
    boxes = masks_to_boxes(masks)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= MIN_BOX_SIDE) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_BOX_SIDE)
    return {
        "boxes": torch.from_numpy(boxes[keep]).reshape(-1, 4),
        "labels": torch.from_numpy(labels[keep]),
        "masks": torch.from_numpy(masks[keep].astype(np.uint8)),
        "iscrowd": torch.from_numpy(crowd[keep]),
    }


class InstanceDataset(torch.utils.data.Dataset):
    """Records -> (image float (3,H,W) in 0..1, target dict). Augmentation is drawn from
    (seed, epoch, index), so a run is reproducible whatever the worker count."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        augment: AugmentConfig | None = None,
        seed: int = 0,
        cancel: threading.Event | None = None,
    ) -> None:
        self.records = list(records)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.cancel = cancel

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        rec = self.records[index]
        image, masks, labels, crowd = load_sample(rec)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if rng.random() < self.augment.hflip:
                image, masks = hflip(image, masks)
            lo, hi = self.augment.scale
            if hi > lo or lo != 1.0:
                zoomed, zmasks = scale_jitter(image, masks, float(rng.uniform(lo, hi)), rng)
                if zmasks.any(axis=(1, 2)).all():  # keep the zoom only when no instance is cut away
                    image, masks = zoomed, zmasks
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
        return tensor, to_target(masks, labels, crowd)


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
