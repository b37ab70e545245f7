"""Resumable training state without pickle: optimizer and grad-scaler state as safetensors
(tensors) + JSON (everything else), beside the model checkpoint.

Layout: ``NAME.train_state.safetensors`` holds ``state.<param index>.<key>`` tensors;
``NAME.train_state.json`` holds the scalar state, the param groups, the scaler and the position
(epoch, iteration).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from engine.errors import WeightsError
from engine.fileio import atomic_write_bytes, atomic_write_text


def state_paths(checkpoint: str | Path) -> tuple[Path, Path]:
    base = Path(checkpoint).with_suffix("")
    return base.with_name(base.name + ".train_state.safetensors"), base.with_name(base.name + ".train_state.json")


def save_train_state(
    checkpoint: str | Path,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    position: dict,
) -> Path:
    """Write the optimizer/scaler state and ``position`` (epoch, iteration, ...) for ``checkpoint``."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, entries in sd["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    meta = {
        "param_groups": sd["param_groups"],
        "scalar_state": scalars,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "position": position,
    }
    t_path, j_path = state_paths(checkpoint)
    atomic_write_bytes(t_path, save(tensors) if tensors else save({"_empty": torch.zeros(0)}))
    atomic_write_text(j_path, json.dumps(meta, indent=1))
    return t_path


def load_train_state(
    checkpoint: str | Path, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> dict:
    """Restore the optimizer (and scaler) saved beside ``checkpoint``; returns the position dict."""
    t_path, j_path = state_paths(checkpoint)
    if not t_path.is_file() or not j_path.is_file():
        raise WeightsError(f"{checkpoint}: no training state ({t_path.name}, {j_path.name}) beside it to resume from")
    try:
        tensors = load_file(str(t_path))
        meta = json.loads(j_path.read_text(encoding="utf-8"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{t_path}: unreadable training state ({exc})") from exc
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        if name == "_empty":
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = tensor
    for idx, entries in meta["scalar_state"].items():
        state.setdefault(int(idx), {}).update(entries)
    groups = meta["param_groups"]
    if len(groups) != len(optimizer.param_groups) or any(
        len(g["params"]) != len(cur["params"]) for g, cur in zip(groups, optimizer.param_groups, strict=True)
    ):
        raise WeightsError(
            f"{checkpoint}: the saved optimizer state does not fit this model's trainable parameters "
            "(different frozen layers or architecture?)"
        )
    for g in groups:  # JSON turned tuples into lists
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scaler is not None and scaler.is_enabled() and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    return dict(meta["position"])
