"""Mask R-CNN configurations and how to build each one from torchvision's own pieces.

The ResNet-50 configs always get the architecture of torchvision's COCO-weights model (v1:
FrozenBatchNorm2d backbone; both: three trainable backbone stages), whatever weights follow, so
that COCO weights, a user's torchvision checkpoint and our own safetensors all load into it.
``maskrcnn_r18_fpn`` is a small model for tests and the demo: a ResNet-18 FPN trained from
scratch, with GroupNorm in the backbone because training from scratch with batches of 1-4 images
cannot rely on batch statistics (He et al., "Rethinking ImageNet Pre-training"), and FPN/heads at
half torchvision's width so it runs fast on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torchvision.models import WeightsEnum, resnet18
from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn_v2
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import (
    MaskRCNN_ResNet50_FPN_V2_Weights,
    MaskRCNN_ResNet50_FPN_Weights,
    MaskRCNNHeads,
    MaskRCNNPredictor,
)

from engine.errors import WeightsError

# torchvision's defaults; a prediction's score threshold is set per call (see MaskRCNNSegmenter).
DEFAULT_BOX_SCORE_THRESH = 0.05


@dataclass(frozen=True)
class MaskRCNNConfig:
    name: str
    backbone: str
    min_size: int
    max_size: int
    coco_weights: WeightsEnum | None  # torchvision's COCO weights for this architecture, if any
    description: str
    model_kwargs: tuple[tuple[str, int], ...] = ()  # extra MaskRCNN(...) arguments


CONFIGS: dict[str, MaskRCNNConfig] = {
    c.name: c
    for c in (
        MaskRCNNConfig(
            "maskrcnn_resnet50_fpn",
            "resnet50",
            800,
            1333,
            MaskRCNN_ResNet50_FPN_Weights.COCO_V1,
            "Mask R-CNN ResNet-50 FPN (He et al. 2017); COCO box AP 37.9, mask AP 34.6",
        ),
        MaskRCNNConfig(
            "maskrcnn_resnet50_fpn_v2",
            "resnet50_v2",
            800,
            1333,
            MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1,
            "Mask R-CNN ResNet-50 FPN v2 (Li et al. 2021); COCO box AP 47.4, mask AP 41.8",
        ),
        MaskRCNNConfig(
            "maskrcnn_r18_fpn",
            "resnet18",
            512,
            853,  # keeps torchvision's 800:1333 ratio of the two limits
            None,
            "small Mask R-CNN ResNet-18 FPN (GroupNorm backbone) for tests and the demo model",
            # Fewer RoIs at test time: the box and mask heads dominate CPU time and small images
            # with few objects need no 1000 proposals / 100 detections.
            (
                ("rpn_pre_nms_top_n_test", 500),
                ("rpn_post_nms_top_n_test", 300),
                ("box_detections_per_img", 50),
            ),
        ),
    )
}
DEFAULT_CONFIG = "maskrcnn_resnet50_fpn"
# Width of the small config's FPN and heads, and of its box head's hidden layer.
SMALL_WIDTH = 128
SMALL_BOX_REPR = 512
# Stages left trainable when fine-tuning the ResNet-50 configs (torchvision's default with weights).
RESNET50_TRAINABLE_LAYERS = 3


def get_config(name: str | None) -> MaskRCNNConfig:
    name = name or DEFAULT_CONFIG
    if name not in CONFIGS:
        raise WeightsError(f"Unknown Mask R-CNN config {name!r}; choose one of {', '.join(CONFIGS)}.")
    return CONFIGS[name]


def _freeze_like_torchvision(model: MaskRCNN, trainable_layers: int) -> None:
    """The same requires_grad pattern as torchvision's ``_resnet_fpn_extractor``."""
    layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers.append("bn1")
    for name, param in model.backbone.body.named_parameters():
        if all(not name.startswith(layer) for layer in layers):
            param.requires_grad_(False)


def build_model(config: MaskRCNNConfig, num_classes: int, min_size: int, max_size: int) -> MaskRCNN:
    """A randomly initialised torchvision ``MaskRCNN`` for ``config`` with ``num_classes`` incl. background."""
    common = dict(
        num_classes=num_classes,
        min_size=min_size,
        max_size=max_size,
        box_score_thresh=DEFAULT_BOX_SCORE_THRESH,
        **dict(config.model_kwargs),
    )
    if config.backbone == "resnet50":
        # What maskrcnn_resnet50_fpn(weights=COCO_V1) builds, minus the download.
        backbone = resnet_fpn_backbone(
            backbone_name="resnet50", weights=None, trainable_layers=RESNET50_TRAINABLE_LAYERS
        )
        return MaskRCNN(backbone, **common)
    if config.backbone == "resnet50_v2":
        model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, **common)
        _freeze_like_torchvision(model, RESNET50_TRAINABLE_LAYERS)
        return model
    if config.backbone == "resnet18":
        return _build_small(num_classes, common)
    raise WeightsError(f"Config {config.name!r} names an unknown backbone {config.backbone!r}.")


def _build_small(num_classes: int, common: dict) -> MaskRCNN:
    """ResNet-18 + FPN at half torchvision's width (128 channels, 512-wide box head).

    The box head over ~300 RoIs and the mask head over each detection dominate CPU time; halving
    the channels cuts them about 4x, which is what a test/demo model on a laptop needs.
    """
    body = resnet18(weights=None, norm_layer=partial(nn.GroupNorm, 32))
    in_channels = [64, 128, 256, 512]  # ResNet-18 layer1..layer4
    return_layers = {f"layer{i + 1}": str(i) for i in range(4)}
    backbone = BackboneWithFPN(body, return_layers, in_channels, SMALL_WIDTH)
    resolution = 7  # torchvision's box RoIAlign output size
    return MaskRCNN(
        backbone,
        box_head=TwoMLPHead(SMALL_WIDTH * resolution**2, SMALL_BOX_REPR),
        box_predictor=FastRCNNPredictor(SMALL_BOX_REPR, num_classes),
        mask_head=MaskRCNNHeads(SMALL_WIDTH, [SMALL_WIDTH] * 4, 1),
        mask_predictor=MaskRCNNPredictor(SMALL_WIDTH, SMALL_WIDTH, num_classes),
        **{k: v for k, v in common.items() if k != "num_classes"},
    )


def state_dict_shapes(config: MaskRCNNConfig, num_classes: int) -> dict[str, torch.Size]:
    """Parameter names and shapes of ``config`` without allocating its weights (meta device)."""
    with torch.device("meta"):
        model = build_model(config, num_classes, config.min_size, config.max_size)
    return {k: v.shape for k, v in model.state_dict().items()}
