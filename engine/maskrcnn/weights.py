"""Mask R-CNN weights: torchvision's COCO files (cache, download, offline message) and users' ``.pth``.

Everything is read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is
refused. State dicts are checked key by key against the model so a file for another architecture
gives a clear ``WeightsError`` instead of a half-loaded model.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import WeightsEnum

from engine.classes import COCO_CATEGORY_IDS
from engine.errors import WeightsError
from engine.maskrcnn.configs import CONFIGS, MaskRCNNConfig, state_dict_shapes
from engine.torch_weights import check_weights, read_state_dict, torch_load_reason, unwrap_state_dict

log = logging.getLogger(__name__)

CLS_KEY = "roi_heads.box_predictor.cls_score.weight"
# The class-dependent layers: re-initialised when a file has another class count.
HEAD_PREFIXES = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
# torchvision's COCO models have 91 outputs: background + 90 category ids of which 10 are unused.
COCO_TORCHVISION_CLASSES = 91
# A state dict may sit under one of these keys of a training checkpoint.


# --- torchvision's COCO weights ----------------------------------------------------------------
def coco_cache_path(weights: WeightsEnum) -> Path:
    """Where torch's hub cache keeps ``weights`` (the file name is the last part of its URL)."""
    file_name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def load_coco_state_dict(config: MaskRCNNConfig) -> dict[str, torch.Tensor]:
    """torchvision's COCO state dict for ``config``: from the cache, else downloaded, else a clear error."""
    weights = config.coco_weights
    if weights is None:
        raise WeightsError(
            f"Config {config.name} has no published weights; pass weights='random' (--weights random) or a weight file."
        )
    path = coco_cache_path(weights)
    if path.is_file():
        return read_state_dict(path)
    log.info("Downloading %s to %s", weights.url, path.parent)
    try:
        state = weights.get_state_dict(
            progress=sys.stderr.isatty(), check_hash=True, weights_only=True, map_location="cpu"
        )
    except Exception as exc:  # offline, proxy, hash mismatch, disk full: all end the same way
        raise WeightsError(
            f"The COCO weights for {config.name} are not in torch's cache and could not be downloaded "
            f"({type(exc).__name__}: {torch_load_reason(exc)}).\n"
            f"Download {weights.url}\nand save it as {path.name} in the folder {path.parent}\n"
            f"(full path: {path}), or pass --weights with a local file, or --weights random."
        ) from exc
    return check_weights(unwrap_state_dict(state, path), path)


def head_num_classes(state: dict[str, torch.Tensor]) -> int | None:
    """Number of classes (incl. background) of the box predictor in ``state``, None if it has none."""
    weight = state.get(CLS_KEY)
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


def coco91_to_81(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep background + the 80 real COCO classes of torchvision's 91-output heads, in our class order.

    The 10 unused ids' logits are dropped, so scores are softmaxed over 81 instead of 91 logits. Those
    logits were only ever trained as negatives, so the change in scores is tiny (documented difference).
    """
    rows = torch.tensor([0, *COCO_CATEGORY_IDS])
    box_rows = (rows[:, None] * 4 + torch.arange(4)).reshape(-1)  # 4 regression outputs per class
    out = dict(state)
    for key, index in (
        ("roi_heads.box_predictor.cls_score", rows),
        ("roi_heads.box_predictor.bbox_pred", box_rows),
        ("roi_heads.mask_predictor.mask_fcn_logits", rows),
    ):
        for suffix in (".weight", ".bias"):
            out[key + suffix] = state[key + suffix][index].clone()
    return out


def generic_class_names(count: int) -> list[str]:
    return [f"class_{i}" for i in range(1, count + 1)]


# --- loading into a model ----------------------------------------------------------------------
def _is_head(key: str) -> bool:
    return key.startswith(HEAD_PREFIXES)


def _guess_origin(keys: set[str], config: MaskRCNNConfig, num_classes: int) -> str:
    """A hint on what a non-matching state dict is, for the error message."""
    if any("proto_net" in k or "prediction_layers" in k for k in keys):
        return " It looks like YOLACT weights: use --model yolact."
    for other in CONFIGS.values():
        if other.name != config.name and set(state_dict_shapes(other, num_classes)) == keys:
            return f" It matches config {other.name}: use --config {other.name}."
    if not any(k.startswith(("backbone.", "rpn.", "roi_heads.")) for k in keys):
        sample = ", ".join(sorted(keys)[:3])
        return f" Its keys ({sample}, ...) are not those of a torchvision detection model."
    return ""


def load_into_model(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    config: MaskRCNNConfig,
    reinit_heads: bool = False,
) -> None:
    """Copy ``state`` into ``model``; every non-head tensor must be present with the right shape.

    With ``reinit_heads`` the class-dependent layers keep their fresh initialisation.
    """
    expected = model.state_dict()
    keys = {k for k in state if not k.endswith("num_batches_tracked")}
    wanted = {k for k in expected if not k.endswith("num_batches_tracked")}
    if reinit_heads:
        keys = {k for k in keys if not _is_head(k)}
        wanted = {k for k in wanted if not _is_head(k)}
    missing, unexpected = sorted(wanted - keys), sorted(keys - wanted)
    wrong_shape = sorted(k for k in wanted & keys if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(wanted)} expected tensors missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong_shape:
            k = wrong_shape[0]
            parts.append(
                f"{len(wrong_shape)} with another shape (e.g. {k}: {tuple(state[k].shape)} "
                f"instead of {tuple(expected[k].shape)})"
            )
        num_classes = head_num_classes(state) or int(expected[CLS_KEY].shape[0])
        all_keys = {k for k in state if not k.endswith("num_batches_tracked")}
        raise WeightsError(
            f"{source} does not hold weights for Mask R-CNN config {config.name}: "
            + "; ".join(parts)
            + "."
            + _guess_origin(all_keys, config, num_classes)
        )
    model.load_state_dict({k: state[k] for k in keys}, strict=False)


def warn_heads_reinitialised(source: str, file_classes: int, class_names: list[str]) -> None:
    message = (
        f"{source} has a head for {file_classes - 1} classes but {len(class_names)} were asked for; "
        "the box and mask predictors were re-initialised (fine-tune before use)."
    )
    log.warning(message)
    warnings.warn(message, stacklevel=3)
