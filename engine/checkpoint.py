"""Our own checkpoints: tensors in ``NAME.safetensors``, metadata in ``NAME.json`` beside it.

Nothing here unpickles: safetensors holds only tensors, JSON only data.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from engine.errors import WeightsError
from engine.fileio import atomic_write_bytes, atomic_write_text


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor], metadata: dict) -> Path:
    """Write ``state_dict`` and ``metadata`` atomically; returns the .safetensors path."""
    from safetensors.torch import save

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared storage and non-contiguous tensors: store plain copies.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    atomic_write_bytes(path, save(tensors))
    atomic_write_text(sidecar_path(path), json.dumps(metadata, indent=2, sort_keys=True))
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by ``save_checkpoint``; clear ``WeightsError`` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Checkpoint not found: {path}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from exc
    meta_path = sidecar_path(path)
    if not meta_path.is_file():
        raise WeightsError(f"{path} has no metadata file {meta_path.name} beside it (architecture, classes).")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or "architecture" not in meta or "class_names" not in meta:
        raise WeightsError(f"{meta_path} lacks 'architecture' or 'class_names'.")
    return tensors, meta
