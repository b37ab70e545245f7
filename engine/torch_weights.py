"""Reading a user's ``.pth``/``.pt`` weight file safely (``torch.load(weights_only=True)`` only), and
the checks every weight file passes before a model sees it.

Shared by both architectures: a file that needs arbitrary unpickling is refused with a clear
``WeightsError`` (never with torch's advice to retry with ``weights_only=False``, which would run
whatever code the file carries); common wrappers ({'model': ...}, {'state_dict': ...}) and DDP's
'module.' prefix are undone. ``check_weights`` refuses non-floating tensors (fp16/bf16 are fine:
loading casts them) and NaN/infinite values, naming the first bad tensor: such a file would load
silently and then find nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint that can be loaded safely: {torch_load_reason(exc)}."
        ) from exc
    return check_weights(unwrap_state_dict(obj, path), path)


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def torch_load_reason(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in words that never suggest ``weights_only=False``.

    torch's own text advises re-running with ``weights_only=False`` (or allow-listing globals), which
    would execute code from the file: that advice is replaced, never passed on.
    """
    text = _ANSI.sub("", str(exc)).strip()
    if "weights_only" in text or "Weights only load failed" in text or "safe_globals" in text:
        found = _UNSAFE_GLOBAL.search(text)
        what = f" (it needs {found.group(1)})" if found else ""
        return (
            f"it holds pickled Python objects{what}, not only tensors. MaskScope never unpickles such "
            "files because that can run code from the file; save a plain state dict of tensors "
            "(or a .safetensors file) instead"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def _expects_integer(key: str) -> bool:
    # BatchNorm's step counter is the only integer tensor in either architecture's state dict.
    return key.endswith("num_batches_tracked")


def check_weights(state: Mapping[str, torch.Tensor], source: str | Path) -> dict[str, torch.Tensor]:
    """``state`` as a dict when every tensor is usable; WeightsError naming the first bad one otherwise.

    Floating dtypes only (float32/64, float16 and bfloat16 are cast by ``load_state_dict``), except
    BatchNorm's integer ``num_batches_tracked``; every value finite.
    """
    for key, value in state.items():
        if _expects_integer(key):
            if value.dtype == torch.bool or value.is_complex():
                raise WeightsError(
                    f"{source}: tensor {key!r} has dtype {_dtype(value)}; it must be an integer counter."
                )
            continue
        if not value.is_floating_point():
            raise WeightsError(
                f"{source}: tensor {key!r} has dtype {_dtype(value)}; weights must be floating point "
                "(float32, float16 or bfloat16). The file is damaged or was converted wrongly."
            )
        if value.numel() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise WeightsError(
                f"{source}: tensor {key!r} holds {bad} NaN or infinite value(s) of {value.numel()}; "
                "the file is damaged or comes from a training run that diverged."
            )
    return dict(state)


def _dtype(value: torch.Tensor) -> str:
    return str(value.dtype).removeprefix("torch.")


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
