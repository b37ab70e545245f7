"""Network input from an image, as the official FastBaseTransform (yolact-spec.md section 2).

The official path takes BGR, resizes (bilinear, no antialias, aspect ratio NOT kept), normalises
with BGR means/std, then reorders to RGB. Every step is per channel, so starting from RGB with the
RGB-ordered means/std and no reorder gives the same bits: resize -> normalise, same order.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.yolact.config import YolactConfig


def _rgb_stats(cfg: YolactConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(cfg.means[::-1], dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std[::-1], dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return mean, std


def preprocess_rgb(image: np.ndarray, cfg: YolactConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> normalised [1, 3, max_size, max_size] float32 (R, G, B channels)."""
    device = torch.device(device)
    # uint8 travels to the device (4x less to copy); the float conversion is exact either way.
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    x = x.permute(2, 0, 1).unsqueeze(0).float().contiguous()
    return normalize_batch(x, cfg)


def normalize_batch(x: torch.Tensor, cfg: YolactConfig) -> torch.Tensor:
    """[N, 3, H, W] RGB float 0..255 -> stretched to max_size x max_size and normalised."""
    x = F.interpolate(x, (cfg.max_size, cfg.max_size), mode="bilinear", align_corners=False)
    mean, std = _rgb_stats(cfg, x.device)
    return (x - mean) / std
