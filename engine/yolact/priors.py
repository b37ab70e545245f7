"""Prior (anchor) boxes, yolact-spec.md section 7.

Center-size form (cx, cy, w, h) relative to the image, never clipped. Values are computed in
float64 (as Python floats in the official code) and cast to float32 once: computing them in
float32 can differ by one ulp (quirk 14). All anchors are square (quirk 1): the aspect ratio only
scales the side, s * sqrt(ar) / max_size.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=64)
def _level_priors(
    conv_h: int, conv_w: int, scale: float, aspect_ratios: tuple[float, ...], max_size: int
) -> np.ndarray:
    # Same float64 operations, in the same order, as the official Python loop.
    xs = (np.arange(conv_w, dtype=np.float64) + 0.5) / conv_w
    ys = (np.arange(conv_h, dtype=np.float64) + 0.5) / conv_h
    sides = np.array([scale * math.sqrt(ar) / max_size for ar in aspect_ratios], dtype=np.float64)
    a = len(aspect_ratios)
    out = np.empty((conv_h, conv_w, a, 4), dtype=np.float64)
    out[..., 0] = xs[None, :, None]
    out[..., 1] = ys[:, None, None]
    out[..., 2] = sides[None, None, :]
    out[..., 3] = sides[None, None, :]  # use_square_anchors: h = w (the "backward-compat bug")
    priors = out.reshape(-1, 4).astype(np.float32)
    priors.flags.writeable = False
    return priors


def make_priors(
    conv_h: int,
    conv_w: int,
    scale: float,
    aspect_ratios: tuple[float, ...],
    max_size: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Priors [conv_h * conv_w * A, 4] of one level, row-major then anchor (cached per size)."""
    return _cached_tensor(conv_h, conv_w, float(scale), tuple(aspect_ratios), int(max_size), str(device))


@lru_cache(maxsize=64)
def _cached_tensor(
    conv_h: int, conv_w: int, scale: float, aspect_ratios: tuple[float, ...], max_size: int, device: str
) -> torch.Tensor:
    return torch.from_numpy(_level_priors(conv_h, conv_w, scale, aspect_ratios, max_size).copy()).to(device)
