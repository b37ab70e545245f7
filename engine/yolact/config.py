"""YOLACT configurations (yolact-spec.md section 1) and how to recognise them from a checkpoint.

Field names follow the official config where one exists, so the spec reads straight onto them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class YolactConfig:
    """Everything that shapes the network and its detection settings."""

    name: str
    # Backbone: "bottleneck" is torchvision's ResNet v1.5 block (expansion 4); "basic" the ResNet-18 one.
    block: str = "bottleneck"
    backbone_layers: tuple[int, ...] = (3, 4, 23, 3)
    backbone_width: int = 64  # planes of stage 0 (doubled per stage); the stem has this many channels
    selected_layers: tuple[int, ...] = (1, 2, 3)  # C3, C4, C5 feed the FPN
    max_size: int = 550  # the network input is max_size x max_size
    pred_scales: tuple[int, ...] = (24, 48, 96, 192, 384)  # one per level P3..P7, in input pixels
    aspect_ratios: tuple[float, ...] = (1, 1 / 2, 2)
    num_classes: int = 81  # background + object classes
    mask_dim: int = 32  # k prototypes
    fpn_features: int = 256  # FPN, ProtoNet and head width
    fpn_num_downsample: int = 2
    # Detection (Detect / eval.py defaults).
    nms_top_k: int = 200
    nms_conf_thresh: float = 0.05
    nms_thresh: float = 0.5
    max_num_detections: int = 100
    # Training.
    masks_to_train: int = 100
    conf_alpha: float = 1.0
    bbox_alpha: float = 1.5
    mask_alpha: float = 6.125
    semantic_segmentation_alpha: float = 1.0
    positive_iou_threshold: float = 0.5
    negative_iou_threshold: float = 0.4
    crowd_iou_threshold: float = 0.7
    ohem_negpos_ratio: int = 3
    # Files: the official checkpoint name and the ImageNet backbone used to start training.
    checkpoint: str | None = None
    imagenet_file: str | None = None
    means: tuple[float, float, float] = field(default=(103.94, 116.78, 123.68))  # BGR
    std: tuple[float, float, float] = field(default=(57.38, 57.12, 58.40))  # BGR

    @property
    def num_priors_per_location(self) -> int:
        return len(self.aspect_ratios)

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    def backbone_channels(self) -> list[int]:
        """Output channels of stages 0..3."""
        return [self.backbone_width * 2**i * self.expansion for i in range(len(self.backbone_layers))]

    def with_num_classes(self, num_object_classes: int) -> YolactConfig:
        """The same network for ``num_object_classes`` classes (plus background)."""
        return dataclasses.replace(self, num_classes=num_object_classes + 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict) -> YolactConfig:
        names = {f.name for f in dataclasses.fields(YolactConfig)}
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return YolactConfig(**kwargs)


def _scaled(scales: tuple[int, ...], max_size: int) -> tuple[int, ...]:
    # The official im700 config scales the 550 values as int(s / 550 * max_size).
    return tuple(int(s / 550 * max_size) for s in scales)


yolact_base = YolactConfig(
    name="yolact_base",
    checkpoint="yolact_base_54_800000.pth",
    imagenet_file="resnet101_reducedfc.pth",
)
yolact_resnet50 = dataclasses.replace(
    yolact_base,
    name="yolact_resnet50",
    backbone_layers=(3, 4, 6, 3),
    checkpoint="yolact_resnet50_54_800000.pth",
    imagenet_file="resnet50-19c8e357.pth",
)
yolact_im700 = dataclasses.replace(
    yolact_base,
    name="yolact_im700",
    max_size=700,
    pred_scales=_scaled(yolact_base.pred_scales, 700),
    masks_to_train=300,
    checkpoint="yolact_im700_54_800000.pth",
)
# Small network for tests, the demo model and CPU fine-tuning: ResNet-18-shaped backbone at half
# width, 64-wide FPN/ProtoNet/head, 320 px input. Same module structure and key naming as the rest.
yolact_tiny = dataclasses.replace(
    yolact_base,
    name="yolact_tiny",
    block="basic",
    backbone_layers=(2, 2, 2, 2),
    backbone_width=32,
    max_size=320,
    pred_scales=_scaled(yolact_base.pred_scales, 320),
    fpn_features=64,
    checkpoint=None,
    imagenet_file=None,
)

CONFIGS: dict[str, YolactConfig] = {c.name: c for c in (yolact_base, yolact_resnet50, yolact_im700, yolact_tiny)}
DEFAULT_CONFIG = "yolact_base"


def get_config(name: str) -> YolactConfig:
    from engine.errors import WeightsError

    if name not in CONFIGS:
        raise WeightsError(f"Unknown YOLACT config {name!r}; choose one of {sorted(CONFIGS)}.")
    return CONFIGS[name]


def config_from_checkpoint_name(path: str | Path) -> YolactConfig | None:
    """The config named by an official checkpoint file: drop the last two ``_`` fields of the stem.

    ``yolact_im700_54_800000.pth`` -> yolact_im700. None when the name does not follow that pattern.
    """
    parts = Path(path).stem.split("_")
    if len(parts) < 3:
        return None
    return CONFIGS.get("_".join(parts[:-2]))


def config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[YolactConfig | None, str]:
    """Guess the config from tensor shapes; returns (config or None, a note on how sure it is).

    The block count of stage 2 tells ResNet-50 (6) from ResNet-101 (23); base and im700 have the
    same tensors, so ResNet-101 defaults to yolact_base (im700 can only be told from the file name).
    """
    blocks = {int(k.split(".")[3]) for k in state_dict if k.startswith("backbone.layers.2.")}
    count = max(blocks) + 1 if blocks else 0
    if count == 6:
        return yolact_resnet50, "ResNet-50 backbone (6 blocks in stage 2)"
    if count == 23:
        return yolact_base, "ResNet-101 backbone; assumed yolact_base (yolact_im700 has the same tensors)"
    conv = state_dict.get("backbone.layers.0.0.conv1.weight")
    if count == 2 and conv is not None and conv.shape[-1] == 3:
        return yolact_tiny, "ResNet-18-style backbone (yolact_tiny)"
    return None, f"unrecognised backbone ({count} blocks in stage 2)"
