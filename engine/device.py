"""Device choice: CUDA when present, else CPU; a setting can force one."""

from __future__ import annotations

import torch

from engine.errors import MaskScopeError


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to run on. ``requested`` is None/'auto', 'cpu' or 'cuda[:N]'."""
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise MaskScopeError("CUDA was requested but no CUDA device is available; use --device cpu.")
    return torch.device(requested)
