"""Resumable training state without pickle: optimizer and grad-scaler state in one safetensors
file beside the model checkpoint.

Layout: ``NAME.train_state.safetensors`` holds ``state.<param index>.<key>`` tensors, and in its
header (``__metadata__["maskscope_train_state"]``) the JSON of the scalar state, the param groups,
the scaler and the position (epoch, iteration). Files written before the JSON moved into the
header keep it in ``NAME.train_state.json``, which is still read.

The trainer writes this file before the model checkpoint, so a checkpoint that exists has its
state. A checkpoint copied on its own still resumes (``resume_train_state``): weights and position
come from the checkpoint, the optimizer's moments start afresh.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from engine.errors import WeightsError
from engine.fileio import atomic_write_bytes
from engine.jsonio import parse_json_bytes, read_json_file

log = logging.getLogger(__name__)

METADATA_KEY = "maskscope_train_state"


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
    t_path, _ = state_paths(checkpoint)
    header = {METADATA_KEY: json.dumps(meta)}
    atomic_write_bytes(t_path, save(tensors or {"_empty": torch.zeros(0)}, metadata=header))
    return t_path


def _read_state(checkpoint: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    t_path, j_path = state_paths(checkpoint)
    try:
        with safe_open(str(t_path), framework="pt") as fh:
            text = (fh.metadata() or {}).get(METADATA_KEY)
        tensors = load_file(str(t_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{t_path}: unreadable training state ({exc})") from exc
    if text is not None:
        meta = parse_json_bytes(text, f"{t_path} (metadata in the header)", WeightsError)
    elif j_path.is_file():  # written before the JSON moved into the header
        meta = read_json_file(j_path, WeightsError)
    else:
        raise WeightsError(f"{t_path}: the training state has no metadata (param groups, position)")
    if not isinstance(meta, dict) or not {"param_groups", "scalar_state", "position"} <= meta.keys():
        raise WeightsError(f"{t_path}: the training state lacks 'param_groups', 'scalar_state' or 'position'")
    return tensors, meta


def load_train_state(
    checkpoint: str | Path, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> dict:
    """Restore the optimizer (and scaler) saved beside ``checkpoint``; returns the position dict."""
    t_path, _ = state_paths(checkpoint)
    if not t_path.is_file():
        raise WeightsError(f"{checkpoint}: no training state ({t_path.name}) beside it to resume from")
    tensors, meta = _read_state(checkpoint)
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


def resume_train_state(
    checkpoint: str | Path, checkpoint_meta: dict, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> dict:
    """The position to resume ``checkpoint`` from, restoring the optimizer when its state is there.

    Without the state file (a checkpoint copied alone), the position recorded in the checkpoint's
    own metadata is used and the optimizer starts afresh (a warning says so).
    """
    if state_paths(checkpoint)[0].is_file():
        return load_train_state(checkpoint, optimizer, scaler)
    position = (checkpoint_meta.get("training") or {}).get("position")
    if not isinstance(position, dict) or not {"epoch", "iteration"} <= position.keys():
        raise WeightsError(
            f"{checkpoint}: no training state beside it and no resume position in its metadata; "
            "it cannot continue a run (use it as --weights to start a new one)."
        )
    log.warning(
        "%s: no %s beside it; resuming at epoch %s, iteration %s with a fresh optimizer state.",
        checkpoint,
        state_paths(checkpoint)[0].name,
        position["epoch"],
        position["iteration"],
    )
    return dict(position)
