"""The one interface both architectures implement, and the compact prediction it returns.

The GUI, the CLI and training only talk to ``Segmenter``; Mask R-CNN (engine.maskrcnn) and
YOLACT (engine.yolact) implement it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from engine.classes import category_ids_for
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


class Segmenter(ABC):
    """An instance segmentation model: build from a config, load weights, predict, losses, save.

    Subclasses set ``architecture`` and implement ``_predict`` and ``losses``.
    """

    architecture: ClassVar[str] = ""

    def __init__(
        self,
        model: nn.Module,
        config_name: str,
        class_names: list[str],
        device: torch.device | str = "cpu",
        score_thresh: float = 0.5,
    ) -> None:
        self.model = model
        self.config_name = config_name
        self.class_names = list(class_names)
        self.device = torch.device(device)
        self.score_thresh = float(score_thresh)
        self.weights_source = "random init"  # what the weights came from, for display
        self.extra_metadata: dict = {}
        self.model.to(self.device).eval()

    # --- inference -------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, image: np.ndarray, trace: bool = False) -> Prediction:
        """Segment one RGB uint8 (H, W, 3) image; instances are in original image coordinates."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"predict() needs an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        was_training = self.model.training
        self.model.eval()
        start = time.perf_counter()
        try:
            pred = self._predict(image, trace)
        finally:
            self.model.train(was_training)
        pred.seconds = time.perf_counter() - start
        return pred

    @abstractmethod
    def _predict(self, image: np.ndarray, trace: bool) -> Prediction: ...

    # --- training --------------------------------------------------------------------------
    @abstractmethod
    def losses(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        """Loss components for a batch; the model must be in train mode.

        ``images``: float (3, H, W) RGB tensors in 0..1 on ``self.device``.
        ``targets``: per image ``boxes`` float (N, 4) x1y1x2y2 pixels, ``labels`` int64 (N,)
        indexing ``class_names``, ``masks`` uint8 (N, H, W), optional ``iscrowd`` (N,).
        """

    # --- bookkeeping -----------------------------------------------------------------------
    def to(self, device: torch.device | str) -> Segmenter:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    @property
    def category_ids(self) -> list[int]:
        """COCO category id for each class index (COCO's ids for the 80 COCO classes)."""
        return category_ids_for(self.class_names)

    def describe(self) -> str:
        return f"{self.architecture} {self.config_name} ({len(self.class_names)} classes, {self.weights_source})"

    def metadata(self) -> dict:
        return {
            "architecture": self.architecture,
            "config": self.config_name,
            "class_names": self.class_names,
            "score_thresh": self.score_thresh,
            **self.extra_metadata,
        }

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        """Save weights as safetensors plus a JSON sidecar; returns the .safetensors path."""
        from engine.checkpoint import save_checkpoint

        meta = self.metadata()
        if extra:
            meta.update(extra)
        return save_checkpoint(path, self.model.state_dict(), meta)
