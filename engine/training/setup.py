"""Model preparation for fine-tuning: build a segmenter for a project's classes from a checkpoint
(backbone and neck kept, class-dependent heads re-initialised when the classes differ), and freeze
backbone stages by parameter-name prefix."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from engine.errors import WeightsError
from engine.segmenter import Segmenter

log = logging.getLogger(__name__)

# Backbone stages from the stem up, as parameter-name prefixes of ``segmenter.model``.
# Mask R-CNN: torchvision's ResNet under backbone.body; YOLACT: the official names (yolact-spec.md s.3).
BACKBONE_STAGES: dict[str, tuple[tuple[str, ...], ...]] = {
    "maskrcnn": (
        ("backbone.body.conv1.", "backbone.body.bn1."),
        ("backbone.body.layer1.",),
        ("backbone.body.layer2.",),
        ("backbone.body.layer3.",),
        ("backbone.body.layer4.",),
    ),
    "yolact": (
        ("backbone.conv1.", "backbone.bn1."),
        ("backbone.layers.0.",),
        ("backbone.layers.1.",),
        ("backbone.layers.2.",),
        ("backbone.layers.3.",),
    ),
}

# Layers whose shape or meaning depends on the class list: re-initialised when the classes change.
CLASS_HEADS: dict[str, tuple[str, ...]] = {
    "maskrcnn": ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits."),
    "yolact": ("prediction_layers.0.conf_layer.", "semantic_seg_conv."),
}


def backbone_stages(segmenter: Segmenter) -> tuple[tuple[str, ...], ...]:
    """Stage prefixes of this segmenter; a segmenter may define its own ``backbone_stages``."""
    own = getattr(segmenter, "backbone_stages", None)
    if own:
        return tuple(tuple(s) for s in own)
    return BACKBONE_STAGES.get(segmenter.architecture, ())


def class_head_prefixes(segmenter: Segmenter) -> tuple[str, ...]:
    own = getattr(segmenter, "class_head_prefixes", None)
    if own:
        return tuple(own)
    return CLASS_HEADS.get(segmenter.architecture, ())


def freeze_backbone(segmenter: Segmenter, stages: int) -> list[str]:
    """Stop gradients of the first ``stages`` backbone stages (stem first; -1: all of them).

    Returns the names of the frozen parameters. Raises ``WeightsError`` when the architecture's
    stage names are unknown or match nothing.
    """
    if stages == 0:
        return []
    groups = backbone_stages(segmenter)
    if not groups:
        raise WeightsError(f"Freezing is not supported for {segmenter.architecture!r}: backbone stages unknown.")
    chosen = groups if stages < 0 else groups[: min(stages, len(groups))]
    prefixes = tuple(p for g in chosen for p in g)
    frozen = []
    for name, param in segmenter.model.named_parameters():
        if name.startswith(prefixes):
            param.requires_grad_(False)
            frozen.append(name)
    if not frozen:
        raise WeightsError(
            f"No parameter of {segmenter.describe()} matches the backbone prefixes {prefixes[:2]}...; "
            "cannot freeze its backbone."
        )
    return frozen


def set_batchnorm_eval(model: nn.Module, frozen_only: bool = False) -> int:
    """Put BatchNorm layers in eval mode (running statistics): small batches make batch statistics
    noisy. ``frozen_only``: only layers whose affine parameters take no gradient (a frozen stage
    keeps its statistics too). Returns how many layers were switched."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if frozen_only and all(p.requires_grad for p in m.parameters(recurse=False)):
                continue
            m.eval()
            n += 1
    return n


def load_matching(
    model: nn.Module, tensors: dict[str, torch.Tensor], skip_prefixes: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """Copy tensors whose name and shape match ``model``'s, except ``skip_prefixes``; dtype is cast
    to the model's (fp16 storage loads into fp32). Returns (loaded, left at their init)."""
    state = model.state_dict()
    take, left = {}, []
    for name, current in state.items():
        t = tensors.get(name)
        if t is None or t.shape != current.shape or name.startswith(tuple(skip_prefixes)):
            left.append(name)
            continue
        take[name] = t.to(current.dtype)
    model.load_state_dict(take, strict=False)
    return list(take), left


def build_for_training(
    class_names: Sequence[str],
    architecture: str | None = None,
    config: str | None = None,
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
) -> Segmenter:
    """A segmenter predicting ``class_names``, ready to fine-tune.

    ``weights`` one of our ``.safetensors`` checkpoints: its architecture and config are used; with
    the same classes it loads as is, with other classes everything but the class heads is kept.
    Other ``weights`` (None for the config's default, "random", a ``.pth``) go to the
    architecture's own ``create`` with ``class_names``.
    """
    from engine.checkpoint import load_checkpoint
    from engine.models import ARCHITECTURES, create_segmenter, load_segmenter

    class_names = list(class_names)
    dev = str(device) if device is not None else None
    if weights is not None and str(weights).endswith(".safetensors"):
        tensors, meta = load_checkpoint(weights)
        arch = meta["architecture"]
        if architecture and architecture != arch:
            raise WeightsError(f"{weights} holds a {arch} model, not {architecture}.")
        cfg = meta.get("config")
        if config and cfg and config != cfg:
            raise WeightsError(f"{weights} was trained with config {cfg!r}, not {config!r}.")
        if list(meta["class_names"]) == class_names:
            return load_segmenter(weights, device=dev)
        fresh = create_segmenter(arch, cfg, weights="random", device=dev, class_names=class_names)
        heads = class_head_prefixes(fresh)
        # Everything of the checkpoint (weights and settings such as the input size) except the
        # class heads, which come freshly initialised for the new classes.
        merged = {k: v for k, v in tensors.items() if not k.startswith(heads)}
        merged.update({k: v for k, v in fresh.model.state_dict().items() if k.startswith(heads)})
        try:
            module = importlib.import_module(ARCHITECTURES[arch])
            seg = module.from_checkpoint(merged, {**meta, "class_names": class_names}, device=dev, source=str(weights))
        except WeightsError as exc:  # e.g. a custom config whose heads differ from the named one
            log.info("%s; copying the matching tensors instead", exc)
            seg = fresh
            loaded, _ = load_matching(seg.model, tensors, heads)
            if not loaded:
                raise WeightsError(f"{weights}: no tensor fits a {arch} {cfg} model; wrong file?") from exc
        seg.weights_source = f"{Path(weights).name} (heads re-initialised for {len(class_names)} classes)"
        log.info("Re-initialised %s of %s for the classes %s", heads, weights, class_names)
        return seg
    if architecture is None:
        raise WeightsError("Choose a model architecture (maskrcnn or yolact) or pass one of our .safetensors files.")
    return create_segmenter(architecture, config, weights=weights, device=dev, class_names=class_names)
