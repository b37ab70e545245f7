"""YOLACT training augmentation (SSDAugmentation) and the eval-time resize (BaseTransform).

yolact-spec.md section 15 ("Augmentation") and section 2. Images are numpy BGR float32 HWC in 0..255,
masks [G, H, W] float 0/1, boxes [G, 4] absolute x1y1x2y2 pixels (x2 exclusive, i.e. the box of a
mask covering columns a..b is [a, b + 1)), labels [G] int64 with crowds (label -1) last.
All randomness comes from the numpy Generator passed in, so a seed reproduces a sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

MEANS = (103.94, 116.78, 123.68)  # BGR
STD = (57.38, 57.12, 58.40)  # BGR
# Resize's "discard small boxes" rule compares absolute-pixel sizes with these relative limits, so it
# only drops degenerate boxes (spec section 16, quirk 15).
DISCARD_BOX = 4 / 550


@dataclass
class Sample:
    """One training sample. Before normalisation ``image`` is BGR 0..255; after it, network input
    (normalised, RGB). ``boxes`` are absolute pixels until :func:`to_relative`, relative after."""

    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    @property
    def num_crowds(self) -> int:
        return int((self.labels < 0).sum())


def normalize(image: np.ndarray) -> np.ndarray:
    """BGR 0..255 -> (x - MEANS) / STD in BGR order, then reordered to RGB (the network's input)."""
    out = (image.astype(np.float32) - np.asarray(MEANS, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(out[:, :, (2, 1, 0)])


# ---- photometric distortion -------------------------------------------------------------------


def _coin(rng: np.random.Generator) -> bool:
    return bool(rng.integers(2))


def _contrast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if _coin(rng):
        image = image * np.float32(rng.uniform(0.5, 1.5))
    return image


def _hsv_steps(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Saturation x U(0.5, 1.5) and hue +-18 degrees, each with p 0.5, in float HSV."""
    hsv: np.ndarray = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_BGR2HSV)
    if _coin(rng):
        hsv[:, :, 1] *= np.float32(rng.uniform(0.5, 1.5))
    if _coin(rng):
        hue = hsv[:, :, 0] + np.float32(rng.uniform(-18.0, 18.0))
        hue[hue > 360.0] -= 360.0
        hue[hue < 0.0] += 360.0
        hsv[:, :, 0] = hue
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def photometric_distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness +-32, then contrast before or after (coin flip) the HSV steps; no channel swap."""
    image = image.astype(np.float32, copy=True)
    if _coin(rng):
        image += np.float32(rng.uniform(-32.0, 32.0))
    if _coin(rng):
        image = _contrast(image, rng)
        image = _hsv_steps(image, rng)
    else:
        image = _hsv_steps(image, rng)
        image = _contrast(image, rng)
    return image


# ---- geometric steps (absolute pixel boxes) ----------------------------------------------------


def expand(s: Sample, rng: np.random.Generator) -> Sample:
    """With p 0.5, place the image at a random spot of a canvas ratio U(1, 4) times larger, filled
    with MEANS (zero after normalisation)."""
    if _coin(rng):
        return s
    h, w, c = s.image.shape
    ratio = rng.uniform(1, 4)
    left = int(rng.uniform(0, w * ratio - w))
    top = int(rng.uniform(0, h * ratio - h))
    big_h, big_w = int(h * ratio), int(w * ratio)
    image = np.empty((big_h, big_w, c), dtype=s.image.dtype)
    image[:] = np.asarray(MEANS, dtype=s.image.dtype)
    image[top : top + h, left : left + w] = s.image
    masks = np.zeros((s.masks.shape[0], big_h, big_w), dtype=s.masks.dtype)
    masks[:, top : top + h, left : left + w] = s.masks
    boxes = s.boxes + np.array([left, top, left, top], dtype=s.boxes.dtype)
    return Sample(image, masks, boxes, s.labels)


def random_sample_crop(s: Sample, rng: np.random.Generator) -> Sample:
    """SSD's random crop. Of its six modes one returns the input; the five "min IoU" modes are a
    no-op test in the official code (kept), so they all crop w, h ~ U(0.3, 1) x size with aspect
    h / w in [0.5, 2]. Boxes whose centre is strictly inside the crop are kept (clipped to it); at
    least one of them must be a non-crowd box, else it tries again (50 tries per mode draw)."""
    height, width = s.image.shape[:2]
    crowd = s.labels < 0
    if not (~crowd).any():
        return s  # the official loop could only ever end by drawing "no crop" here
    centers = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2.0
    while True:
        if rng.integers(6) == 0:
            return s
        for _ in range(50):
            w = rng.uniform(0.3 * width, width)
            h = rng.uniform(0.3 * height, height)
            if h / w < 0.5 or h / w > 2:
                continue
            left = rng.uniform(0, width - w)
            top = rng.uniform(0, height - h)
            rect = np.array([int(left), int(top), int(left + w), int(top + h)])
            inside = (
                (rect[0] < centers[:, 0])
                & (rect[1] < centers[:, 1])
                & (rect[2] > centers[:, 0])
                & (rect[3] > centers[:, 1])
            )
            if not (inside & ~crowd).any():
                continue
            boxes = s.boxes[inside].copy()
            boxes[:, :2] = np.maximum(boxes[:, :2], rect[:2]) - rect[:2]
            boxes[:, 2:] = np.minimum(boxes[:, 2:], rect[2:]) - rect[:2]
            image = s.image[rect[1] : rect[3], rect[0] : rect[2]]
            masks = s.masks[inside][:, rect[1] : rect[3], rect[0] : rect[2]]
            return Sample(image, masks, boxes, s.labels[inside])


def mirror(s: Sample, rng: np.random.Generator) -> Sample:
    """Horizontal flip with p 0.5."""
    if not _coin(rng):
        return s
    width = s.image.shape[1]
    boxes = s.boxes.copy()
    boxes[:, 0::2] = width - s.boxes[:, 2::-2]
    return Sample(s.image[:, ::-1], s.masks[:, :, ::-1], boxes, s.labels)


def _resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """cv2.resize (INTER_LINEAR) of [G, H, W] float masks to [G, size, size]; cv2 takes at most
    512 channels at once, so larger stacks go in chunks."""
    out = np.zeros((masks.shape[0], size, size), dtype=np.float32)
    for start in range(0, masks.shape[0], 512):
        chunk = np.ascontiguousarray(masks[start : start + 512].transpose(1, 2, 0), dtype=np.float32)
        resized = cv2.resize(chunk, (size, size))
        out[start : start + 512] = resized.reshape(size, size, -1).transpose(2, 0, 1)
    return out


def resize(s: Sample, size: int) -> Sample:
    """Stretch to size x size (no aspect preservation); masks resized as float; boxes scaled.
    Degenerate boxes are dropped by the (pixel-vs-relative) discard rule."""
    h, w = s.image.shape[:2]
    image = cv2.resize(np.ascontiguousarray(s.image, dtype=np.float32), (size, size))
    masks = _resize_masks(s.masks, size)
    # float64 so that a box edge on the image border maps back to exactly 1.0 in to_relative
    boxes = s.boxes.astype(np.float64) * np.array([size / w, size / h, size / w, size / h])
    keep = ((boxes[:, 2] - boxes[:, 0]) > DISCARD_BOX) & ((boxes[:, 3] - boxes[:, 1]) > DISCARD_BOX)
    return Sample(image, masks[keep], boxes[keep], s.labels[keep])


def to_relative(s: Sample) -> Sample:
    h, w = s.image.shape[:2]
    boxes = (s.boxes.astype(np.float64) / np.array([w, h, w, h])).astype(np.float32)
    return Sample(s.image, s.masks, boxes, s.labels)


def _as_sample(image: np.ndarray, masks: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> Sample:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"augment: expected an HxWx3 BGR image, got shape {image.shape}")
    masks = np.asarray(masks, dtype=np.float32).reshape(-1, *image.shape[:2])
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if not (masks.shape[0] == boxes.shape[0] == labels.shape[0]):
        raise ValueError(f"augment: {masks.shape[0]} masks, {boxes.shape[0]} boxes and {labels.shape[0]} labels differ")
    crowd = labels < 0
    if crowd.any() and not crowd[int(np.argmax(crowd)) :].all():
        raise ValueError("augment: crowd objects (label -1) must come after all normal objects")
    return Sample(image.astype(np.float32), masks, boxes, labels)


class SSDAugmentation:
    """The official training augmentation: photometric distortion, expand, random crop, mirror,
    resize to ``max_size`` and relative boxes; then normalisation + BGR->RGB when ``normalize``."""

    def __init__(self, max_size: int = 550, normalize: bool = True) -> None:
        self.max_size = max_size
        self.normalize = normalize

    def __call__(
        self,
        image: np.ndarray,
        masks: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
        rng: np.random.Generator,
    ) -> Sample:
        s = _as_sample(image, masks, boxes, labels)
        s = Sample(photometric_distort(s.image, rng), s.masks, s.boxes, s.labels)
        s = expand(s, rng)
        s = random_sample_crop(s, rng)
        s = mirror(s, rng)
        s = to_relative(resize(s, self.max_size))
        if self.normalize:
            s = Sample(normalize(s.image), s.masks, s.boxes, s.labels)
        return s


class BaseTransform:
    """Eval-time preprocessing of COCO evaluation: cv2.resize (INTER_LINEAR) of the float image to
    max_size x max_size, normalisation and BGR->RGB. Masks/boxes, when given, follow the resize
    (for validation losses); as in the official eval, the discard rule then sees relative boxes and
    drops GT boxes narrower or shorter than 4/550 of the image (spec quirk 15)."""

    def __init__(self, max_size: int = 550) -> None:
        self.max_size = max_size

    def __call__(
        self,
        image: np.ndarray,
        masks: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> Sample:
        n = 0 if boxes is None else int(np.asarray(boxes).reshape(-1, 4).shape[0])
        h, w = image.shape[:2]
        s = _as_sample(
            image,
            np.zeros((n, h, w), np.float32) if masks is None else masks,
            np.zeros((n, 4), np.float32) if boxes is None else boxes,
            np.zeros(n, np.int64) if labels is None else labels,
        )
        s = to_relative(resize(s, self.max_size))
        b = s.boxes
        keep = ((b[:, 2] - b[:, 0]) > DISCARD_BOX) & ((b[:, 3] - b[:, 1]) > DISCARD_BOX)
        return Sample(normalize(s.image), s.masks[keep], b[keep], s.labels[keep])


def to_network(s: Sample) -> tuple[torch.Tensor, dict[str, torch.Tensor | int]]:
    """A normalised sample -> (image tensor [3, S, S], target dict for engine.yolact.loss)."""
    image = torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1)))
    target: dict[str, torch.Tensor | int] = {
        "boxes": torch.from_numpy(np.ascontiguousarray(s.boxes, dtype=np.float32)),
        "labels": torch.from_numpy(np.ascontiguousarray(s.labels, dtype=np.int64)),
        "masks": torch.from_numpy(np.ascontiguousarray(s.masks, dtype=np.float32)),
        "num_crowds": s.num_crowds,
    }
    return image, target
