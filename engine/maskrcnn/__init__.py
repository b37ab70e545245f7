"""Mask R-CNN on torchvision: configs, weights, step-by-step inference with an optional trace."""

from engine.maskrcnn.configs import CONFIGS
from engine.maskrcnn.segmenter import MaskRCNNSegmenter, create, from_checkpoint
from engine.maskrcnn.trace import DetectionTrace, MaskRCNNTrace, PoolerSettings

__all__ = [
    "CONFIGS",
    "DetectionTrace",
    "MaskRCNNSegmenter",
    "MaskRCNNTrace",
    "PoolerSettings",
    "create",
    "from_checkpoint",
]
