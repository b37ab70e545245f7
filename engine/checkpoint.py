"""Our own checkpoints: one self-describing ``NAME.safetensors``.

The tensors and the metadata (architecture, class names, config, training run) are one file: the
metadata is JSON in the safetensors header (``__metadata__["maskscope"]``), so a checkpoint is
written by one atomic rename and a kill can never separate the weights from their description.
``NAME.json`` beside it is only a readable copy, written after the checkpoint; it is read only for
checkpoints written before the metadata moved into the header.

Nothing here unpickles: safetensors holds only tensors, JSON only data. Every tensor is checked
(engine.torch_weights.check_weights) before a model sees it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from engine.errors import WeightsError
from engine.fileio import atomic_write_bytes, atomic_write_text
from engine.jsonio import parse_json_bytes, read_json_file
from engine.torch_weights import check_weights

METADATA_KEY = "maskscope"


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor], metadata: dict) -> Path:
    """Write ``state_dict`` with ``metadata`` in its header atomically, then the readable JSON copy;
    returns the .safetensors path."""
    from safetensors.torch import save

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared storage and non-contiguous tensors: store plain copies.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    text = json.dumps(metadata, indent=2, sort_keys=True)
    atomic_write_bytes(path, save(tensors, metadata={METADATA_KEY: text}))
    atomic_write_text(sidecar_path(path), text)  # a copy for people; the checkpoint does not need it
    return path


def read_header_metadata(path: str | Path) -> dict | None:
    """The metadata stored in a checkpoint's safetensors header; None when it has none (older files)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from exc
    text = header.get(METADATA_KEY)
    if text is None:
        return None
    return parse_json_bytes(text, f"{path} (metadata in the header)", WeightsError)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by ``save_checkpoint``; clear ``WeightsError`` on any problem."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"Checkpoint not found: {path}")
    if not path.is_file():
        raise WeightsError(f"{path}: not a regular file (a folder, FIFO, socket or device), not a checkpoint.")
    meta = read_checkpoint_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file: {exc}") from exc
    return check_weights(tensors, path), meta


def read_checkpoint_metadata(path: str | Path) -> dict:
    """A checkpoint's metadata without reading its tensors: from the header, or from the JSON
    sidecar for checkpoints written before it moved there. WeightsError when neither has it."""
    path = Path(path)
    meta = read_header_metadata(path)
    source = path
    if meta is None:  # written before the metadata moved into the header
        source = sidecar_path(path)
        if not source.is_file():
            raise WeightsError(
                f"{path} carries no MaskScope metadata in its header and has no {source.name} beside it "
                "(architecture, classes): it is not one of our checkpoints."
            )
        meta = read_json_file(source, WeightsError)
    if not isinstance(meta, dict) or "architecture" not in meta or "class_names" not in meta:
        raise WeightsError(f"{source} lacks 'architecture' or 'class_names'.")
    return meta
