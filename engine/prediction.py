"""What a segmenter returns: compact instances and the prediction of one image.

Plain data (numpy and our masks, no torch), so that the window, the project store and the CLI can
hold and pass predictions without importing torch (``engine.segmenter`` re-exports both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.masks import CroppedMask


@dataclass
class Instance:
    """One predicted (or annotated) instance. ``label`` indexes the segmenter's ``class_names``."""

    label: int
    score: float
    box: np.ndarray  # float32 (4,) x1, y1, x2, y2 in original image pixels
    mask: CroppedMask

    @property
    def area(self) -> int:
        return self.mask.area


@dataclass
class Prediction:
    """All instances found in one image, sorted by descending score, plus the optional trace."""

    image_size: tuple[int, int]  # (height, width)
    instances: list[Instance]
    class_names: list[str]
    trace: Any = None  # MaskRCNNTrace / YolactTrace when asked for
    seconds: float = 0.0  # wall time of predict()
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instances)

    def above(self, threshold: float) -> list[Instance]:
        return [inst for inst in self.instances if inst.score >= threshold]

    def class_name(self, inst: Instance) -> str:
        return self.class_names[inst.label]
