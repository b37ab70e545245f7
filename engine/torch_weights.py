"""Reading a user's ``.pth``/``.pt`` weight file safely (``torch.load(weights_only=True)`` only).

Shared by both architectures: a file that needs arbitrary unpickling is refused with a clear
``WeightsError``; common wrappers ({'model': ...}, {'state_dict': ...}) and DDP's 'module.' prefix
are undone.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.errors import WeightsError

WRAPPER_KEYS = ("model", "state_dict", "model_state_dict")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pt`` with ``weights_only=True`` and return its flat tensor state dict."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weight file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # text, random bytes, truncated zip, pickled objects weights_only rejects
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint that can be loaded safely (torch.load weights_only=True "
            f"failed: {reason[:300]})."
        ) from exc
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Find the state dict in ``obj`` (raw, or under 'model'/'state_dict'), strip 'module.' prefixes."""
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors.")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise WeightsError(f"{path} holds no tensors; it is not a model checkpoint.")
    # DistributedDataParallel / DataParallel save every key under 'module.'.
    return {k.removeprefix("module."): v for k, v in state.items()}
