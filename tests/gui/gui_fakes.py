"""A deterministic stand-in Segmenter for GUI tests: known masks, boxes and scores, no network."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.masks import CroppedMask
from engine.segmenter import Instance, Prediction, Segmenter

CLASSES = ["disc", "block", "bar"]
# (class index, score, shape, (x0, y0, x1, y1) as fractions of the image)
LAYOUT = (
    (0, 0.95, "disc", (0.10, 0.15, 0.40, 0.55)),
    (1, 0.70, "rect", (0.55, 0.20, 0.90, 0.60)),
    (2, 0.30, "rect", (0.20, 0.70, 0.80, 0.85)),
)


def _instance(label: int, score: float, shape: str, frac, h: int, w: int) -> Instance:
    x0, y0 = int(frac[0] * w), int(frac[1] * h)
    x1, y1 = int(frac[2] * w), int(frac[3] * h)
    bits = np.ones((y1 - y0, x1 - x0), bool)
    if shape == "disc":
        yy, xx = np.mgrid[0 : y1 - y0, 0 : x1 - x0]
        cy, cx = (y1 - y0 - 1) / 2, (x1 - x0 - 1) / 2
        bits = ((yy - cy) / max(cy, 1)) ** 2 + ((xx - cx) / max(cx, 1)) ** 2 <= 1.0
    box = np.array([x0, y0, x1, y1], np.float32)
    return Instance(label, score, box, CroppedMask(x0, y0, bits, (h, w)))


class FakeSegmenter(Segmenter):
    """Returns the three instances of ``LAYOUT`` scaled to any image; counts its calls."""

    architecture = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(nn.Identity(), "fake", CLASSES, "cpu", 0.0)
        self.delay = delay
        self.calls = 0

    def _predict(self, image: np.ndarray, trace: bool) -> Prediction:
        import time

        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        h, w = image.shape[:2]
        instances = [_instance(label, score, shape, frac, h, w) for label, score, shape, frac in LAYOUT]
        return Prediction((h, w), instances, list(self.class_names))

    def losses(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        raise NotImplementedError("the fake segmenter is for display tests only")


# Tiny real models for the inspectors: seeded random weights, scaled so that random scores pass 0.0
# and the prototypes have contrast. Shared by the behaviour and the pixel-snapshot tests.
INSPECT_CLASSES = ["circle", "square", "triangle"]


def tiny_maskrcnn() -> Segmenter:
    from engine.models import create_segmenter

    torch.manual_seed(0)
    seg = create_segmenter(
        "maskrcnn", "maskrcnn_r18_fpn", weights="random", class_names=INSPECT_CLASSES, score_thresh=0.0
    )
    seg.model.transform.min_size = (192,)
    seg.model.transform.max_size = 256
    seg.model.roi_heads.detections_per_img = 5
    with torch.no_grad():
        seg.model.roi_heads.box_predictor.cls_score.weight.mul_(30)
    return seg


def tiny_yolact() -> Segmenter:
    from engine.models import create_segmenter

    torch.manual_seed(0)
    seg = create_segmenter("yolact", "yolact_tiny", weights="random", class_names=INSPECT_CLASSES, score_thresh=0.0)
    with torch.no_grad():
        seg.model.proto_net[-1].weight.mul_(50)
        seg.model.proto_net[-1].bias.mul_(50)
    return seg


def write_shapes_picture(path, seed: int = 3, size: tuple[int, int] = (150, 190)):
    """A generated image of coloured shapes (the engine's synthetic data), saved as ``path``."""
    import cv2

    from engine.synthetic import generate_image

    rgb = generate_image(np.random.default_rng(seed), size).image
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path
