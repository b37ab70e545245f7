"""What the Mask R-CNN inspectors show: one ``MaskRCNNTrace`` per traced prediction.

Coordinates: "network" means the resized image the backbone saw (before batch padding); boxes in
original image pixels are on the matching ``Instance``. ``network = original * scale`` per axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PoolerSettings:
    """A ``MultiScaleRoIAlign``'s settings and its FPN level mapper (torchvision's own values).

    Level of a box of area ``A`` (FPN paper, eq. 1):
    ``k = clamp(floor(canonical_level + log2(sqrt(A) / canonical_scale) + eps), k_min, k_max)``;
    it pools from ``featmap_names[k - k_min]`` with ``spatial_scale = scales[k - k_min]`` (= 2**-k).
    """

    featmap_names: list[str]
    output_size: tuple[int, int]
    sampling_ratio: int
    aligned: bool  # torchvision's MultiScaleRoIAlign calls roi_align with aligned=False
    scales: list[float]
    k_min: int
    k_max: int
    canonical_scale: int
    canonical_level: int
    eps: float

    def level_index(self, level: int) -> int:
        return level - self.k_min


@dataclass
class DetectionTrace:
    """One final detection, followed back through the network (same order as the instances)."""

    proposal_index: int  # row of MaskRCNNTrace.proposals this detection was refined from
    proposal_box: np.ndarray  # float32 (4,) network coordinates
    proposal_objectness: float  # RPN objectness probability of that proposal
    box_level: int  # FPN level k the box branch pooled the proposal from (LevelMapper)
    box_featmap: str  # name of that level in MaskRCNNTrace.features
    box_spatial_scale: float
    class_probs: np.ndarray  # float32 (num_classes,) box-head softmax per class (our label order)
    background_prob: float
    label: int  # our label (class index)
    score: float
    box_network: np.ndarray  # float32 (4,) refined, clipped box for ``label``, network coordinates
    mask_level: int  # FPN level k the mask branch pooled the refined box from
    mask_featmap: str
    mask_spatial_scale: float
    mask_probs: np.ndarray  # float32 (28, 28) sigmoid mask probabilities for ``label``

    def top_classes(self, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` most likely classes as (label, probability), most likely first."""
        order = np.argsort(-self.class_probs, kind="stable")[:k]
        return [(int(i), float(self.class_probs[i])) for i in order]


@dataclass
class MaskRCNNTrace:
    """Internals of one Mask R-CNN forward pass, computed only when ``predict(trace=True)``."""

    original_size: tuple[int, int]  # (height, width) of the input image
    network_size: tuple[int, int]  # (height, width) after GeneralizedRCNNTransform's resize
    padded_size: tuple[int, int]  # (height, width) of the batched tensor (multiple of 32)
    scale: tuple[float, float]  # (sy, sx): network = original * scale
    image_mean: list[float]
    image_std: list[float]
    features: dict[str, torch.Tensor]  # FPN outputs '0'..'3', 'pool': (1, C, h, w), on the model device
    proposals: np.ndarray  # float32 (P, 4) RPN proposals, network coordinates, by objectness
    proposal_objectness: np.ndarray  # float32 (P,)
    box_pooler: PoolerSettings
    mask_pooler: PoolerSettings
    detections: list[DetectionTrace]
    mask_threshold: float = 0.5
    # True for the trace of a box prompt (Segmenter.trace_box): its one detection is the drawn box,
    # pooled as is by both branches (proposal_box == box_network, objectness NaN: no RPN proposal).
    prompt: bool = False

    def feature(self, name: str) -> torch.Tensor:
        """One FPN level as (C, h, w), ready for engine.roialign's explain function."""
        return self.features[name][0]

    def to_network(self, xy: np.ndarray) -> np.ndarray:
        """Original image (x, y) points -> network coordinates."""
        sy, sx = self.scale
        return np.asarray(xy, dtype=np.float64) * np.array([sx, sy])

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        """Network (x, y) points -> original image coordinates."""
        sy, sx = self.scale
        return np.asarray(xy, dtype=np.float64) / np.array([sx, sy])
