"""Device choice: CUDA when present, else CPU; a setting can force one."""

from __future__ import annotations

import os

import torch

from engine.errors import MaskScopeError


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to run on. ``requested`` is None/'auto', 'cpu' or 'cuda[:N]'."""
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise MaskScopeError("CUDA was requested but no CUDA device is available; use --device cpu.")
    return torch.device(requested)


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, in words for a user (a disabled menu entry's tooltip); None if it can."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return f"This PyTorch ({torch.__version__}) is a CPU-only build; a CUDA build of PyTorch is needed for a GPU."
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"The environment variable CUDA_VISIBLE_DEVICES={visible!r} hides every GPU."
    return (
        f"No usable NVIDIA GPU or driver was found (PyTorch {torch.__version__} is built for "
        f"CUDA {torch.version.cuda or torch.version.hip})."
    )
