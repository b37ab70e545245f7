"""Loading the official YOLACT ``.pth`` files and ImageNet backbones (yolact-spec.md sections 14, 15).

Only ``torch.load(..., weights_only=True)``: a file that needs unpickling of arbitrary objects is
refused with a ``WeightsError``, as is anything that is not a YOLACT state dict.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from engine.errors import WeightsError
from engine.torch_weights import read_state_dict
from engine.yolact.config import YolactConfig, config_from_checkpoint_name, config_from_state_dict

if TYPE_CHECKING:
    from engine.yolact.model import Yolact

log = logging.getLogger(__name__)

# Tensors whose shape depends on the number of classes: re-initialised when it differs.
CLASS_DEPENDENT = ("prediction_layers.0.conf_layer.", "semantic_seg_conv.")
_DOWNSAMPLE_EXTRA = re.compile(r"^fpn\.downsample_layers\.(\d+)\.")


def clean_official_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop what the official ``load_weights`` drops: old ``backbone.layerN`` keys (not
    ``backbone.layers``) and ``fpn.downsample_layers.K`` for K >= 2 (extra ones in v1.0 files)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("backbone.layer") and not key.startswith("backbone.layers"):
            continue
        m = _DOWNSAMPLE_EXTRA.match(key)
        if m and int(m.group(1)) >= 2:
            continue
        out[key] = value
    return out


def infer_config(path: str | Path | None, state_dict: dict[str, torch.Tensor]) -> tuple[YolactConfig, str]:
    """Config for a checkpoint: from its official file name when that agrees with the tensors, else
    from the tensor shapes. Returns (config with the file's class count, a note for the user)."""
    by_shape, note = config_from_state_dict(state_dict)
    by_name = config_from_checkpoint_name(path) if path is not None else None
    if by_name is not None and (by_shape is None or by_name.backbone_layers == by_shape.backbone_layers):
        cfg, note = by_name, f"config {by_name.name} from the file name"
    elif by_shape is not None:
        cfg = by_shape
    else:
        where = f"{path}" if path is not None else "The weights"
        raise WeightsError(f"{where} is not a YOLACT checkpoint: {note}.")
    conf = state_dict.get("prediction_layers.0.conf_layer.weight")
    if conf is not None and conf.shape[0] % cfg.num_priors_per_location == 0:
        num_classes = conf.shape[0] // cfg.num_priors_per_location
        if num_classes != cfg.num_classes:
            cfg = cfg.with_num_classes(num_classes - 1)
    return cfg, note


def load_into(
    model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "weights", allow_class_change: bool = True
) -> list[str]:
    """Load a cleaned state dict strictly, except: missing ``num_batches_tracked`` is fine, and
    class-dependent head tensors of another class count are skipped (kept as initialised) with a
    warning. Returns the skipped keys. Anything else that does not fit -> ``WeightsError``.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit this YOLACT network ({len(missing)} missing, {len(unexpected)} unexpected "
            f"tensors; e.g. missing {missing[:3]}, unexpected {unexpected[:3]}). Is it a YOLACT checkpoint of "
            f"this config?"
        )
    skipped = []
    merged = dict(own)
    for key, value in state_dict.items():
        if value.shape != own[key].shape:
            if allow_class_change and key.startswith(CLASS_DEPENDENT):
                skipped.append(key)
                continue
            raise WeightsError(
                f"{source}: tensor {key} has shape {tuple(value.shape)}, this network needs {tuple(own[key].shape)}."
            )
        merged[key] = value
    if skipped:
        log.warning("%s: class count differs, re-initialised %s", source, ", ".join(skipped))
    model.load_state_dict(merged, strict=True)
    return skipped


def load_official(model: nn.Module, path: str | Path) -> list[str]:
    """Read, clean and load an official YOLACT ``.pth`` into ``model``; returns re-initialised keys."""
    state_dict = clean_official_state_dict(read_state_dict(path))
    return load_into(model, state_dict, source=str(path))


_TV_LAYER = re.compile(r"^layer(\d+)\.")


def load_imagenet_backbone(model: Yolact, path: str | Path) -> tuple[list[str], list[str]]:
    """Initialise ``model.backbone`` from a torchvision-named ImageNet ResNet (``layerN.`` ->
    ``layers.{N-1}.``), strict=False like the official code; ``fc`` is ignored.

    Returns (backbone keys left at their init, file keys not used). Shape mismatches -> WeightsError.
    """
    state_dict = read_state_dict(path)
    renamed = {_TV_LAYER.sub(lambda m: f"layers.{int(m.group(1)) - 1}.", k): v for k, v in state_dict.items()}
    own = model.backbone.state_dict()
    for key, value in renamed.items():
        if key in own and own[key].shape != value.shape:
            raise WeightsError(
                f"{path}: backbone tensor {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}."
            )
    result = model.backbone.load_state_dict({k: v for k, v in renamed.items() if k in own}, strict=False)
    unused = [k for k in renamed if k not in own]
    if len(unused) == len(renamed):
        raise WeightsError(f"{path} holds no tensor of a ResNet backbone with torchvision names.")
    return list(result.missing_keys), unused
