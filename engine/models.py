"""Model registry: build a ``Segmenter`` by architecture/config/weights, or from our checkpoints.

Each architecture package exposes ``create(config, weights, device, class_names, score_thresh)``
and ``CONFIGS`` (names it can build). Imports are lazy so the CLI and GUI start fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import WeightsError

if TYPE_CHECKING:  # torch stays unimported until a model is built (the CLI's --help is instant)
    from engine.segmenter import Segmenter

ARCHITECTURES = {"maskrcnn": "engine.maskrcnn", "yolact": "engine.yolact"}


def _arch_module(architecture: str):
    if architecture not in ARCHITECTURES:
        raise WeightsError(f"Unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}.")
    return importlib.import_module(ARCHITECTURES[architecture])


def create_segmenter(
    architecture: str,
    config: str | None = None,
    weights: str | Path | None = None,
    device: str | None = None,
    class_names: list[str] | None = None,
    score_thresh: float | None = None,
) -> Segmenter:
    """Build a segmenter. ``weights`` may be one of our ``.safetensors`` checkpoints too."""
    if weights is not None and str(weights).endswith(".safetensors"):
        return load_segmenter(weights, device=device, score_thresh=score_thresh)
    module = _arch_module(architecture)
    return module.create(
        config=config, weights=weights, device=device, class_names=class_names, score_thresh=score_thresh
    )


def load_segmenter(path: str | Path, device: str | None = None, score_thresh: float | None = None) -> Segmenter:
    """Load one of our own checkpoints (safetensors + JSON sidecar) of either architecture."""
    from engine.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(path)
    module = _arch_module(meta["architecture"])
    return module.from_checkpoint(tensors, meta, device=device, score_thresh=score_thresh, source=str(path))
