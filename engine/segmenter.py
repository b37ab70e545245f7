"""The one interface both architectures implement (its result types live in engine.prediction).

The GUI, the CLI and training only talk to ``Segmenter``; Mask R-CNN (engine.maskrcnn) and
YOLACT (engine.yolact) implement it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from engine.classes import category_ids_for
from engine.errors import PromptError
from engine.prediction import Instance, Prediction
from engine.prompts import MAX_POINT_CANDIDATES, PromptCache, check_box, check_label, check_point, image_key


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
        self.prompt_cache = PromptCache()  # one image's features, shared by all prompts on it
        self.model.to(self.device).eval()

    # --- inference -------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, image: np.ndarray, trace: bool = False) -> Prediction:
        """Segment one RGB uint8 (H, W, 3) image; instances are in original image coordinates."""
        _check_image(image, "predict()")
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

    # --- prompts ---------------------------------------------------------------------------
    def segment_box(self, image: np.ndarray, box: Any, label: int | None = None) -> Instance:
        """The instance inside a user box (x1, y1, x2, y2 image pixels, clipped to the image).

        ``label`` (a class index) forces the class; by default it is the model's most likely one.
        Raises ``PromptError`` for a degenerate box (see engine.prompts).
        """
        return self._box_prompt(image, box, label, trace=False).instances[0]

    def trace_box(self, image: np.ndarray, box: Any, label: int | None = None) -> Prediction:
        """``segment_box`` as a one-instance ``Prediction`` whose ``trace`` describes that box the way
        ``predict(trace=True)`` describes a detection, so the inspectors can show it (instance 0)."""
        return self._box_prompt(image, box, label, trace=True)

    def segment_point(
        self, image: np.ndarray, x: float, y: float, max_candidates: int = MAX_POINT_CANDIDATES
    ) -> list[Instance]:
        """Candidate instances whose masks cover the pixel at (x, y), best first, de-duplicated.

        Candidates include what the model scores below ``score_thresh``, so a user can cycle to an
        object the detector missed. Empty when nothing covers the point.
        """
        _check_image(image, "segment_point()")
        px, py = check_point(x, y, image.shape[:2])
        if int(max_candidates) < 1:
            raise PromptError(f"max_candidates must be at least 1, got {max_candidates}.")
        with self.prompt_cache.lock, self._eval_mode():
            return self._point_prompt(image, image_key(image), px, py, int(max_candidates))

    def clear_prompt_cache(self) -> None:
        """Free the cached features (also done automatically when another image is prompted)."""
        self.prompt_cache.clear()

    def _box_prompt(self, image: np.ndarray, box: Any, label: int | None, trace: bool) -> Prediction:
        _check_image(image, "segment_box()")
        clipped = check_box(box, image.shape[:2])
        label = check_label(label, len(self.class_names))
        start = time.perf_counter()
        with self.prompt_cache.lock, self._eval_mode():
            instance, tr = self._box_instance(image, image_key(image), clipped, label, trace)
        pred = Prediction(image.shape[:2], [instance], self.class_names, trace=tr)
        pred.seconds = time.perf_counter() - start
        pred.meta = {"prompt": "box", "box": clipped.tolist()}
        return pred

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.model.train(was_training)

    def _box_instance(
        self, image: np.ndarray, key: tuple, box: np.ndarray, label: int | None, trace: bool
    ) -> tuple[Instance, Any]:
        """One instance for a checked, clipped float64 box, and its trace when asked for."""
        raise PromptError(f"{self.describe()} cannot segment a box prompt.")

    def _point_prompt(self, image: np.ndarray, key: tuple, x: float, y: float, max_candidates: int) -> list[Instance]:
        """Candidates covering (x, y) for a checked point."""
        raise PromptError(f"{self.describe()} cannot segment a point prompt.")

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
        self.clear_prompt_cache()
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


def _check_image(image: np.ndarray, caller: str) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{caller} needs an RGB uint8 (H, W, 3) image, got {got}")
