"""What the training dock offers: architectures and configs, backbone freezing, starting weights,
and small formatting helpers. Plain Python (no torch import: the GUI thread stays light); a test
checks the config names against the engine's registries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from app.model_catalog import DEMO_KEY, DEMO_WEIGHTS, DEMO_YOLACT_WEIGHTS, PLACEHOLDER_CONFIG, ModelChoice


@dataclass(frozen=True)
class ConfigOption:
    name: str  # engine config name
    label: str
    pretrained: bool  # the config has published (COCO) weights to start from


ARCHITECTURES: dict[str, str] = {"maskrcnn": "Mask R-CNN", "yolact": "YOLACT"}
CONFIGS: dict[str, tuple[ConfigOption, ...]] = {
    "maskrcnn": (
        ConfigOption("maskrcnn_r18_fpn", "ResNet-18 FPN (small, CPU-friendly)", False),
        ConfigOption("maskrcnn_resnet50_fpn", "ResNet-50 FPN", True),
        ConfigOption("maskrcnn_resnet50_fpn_v2", "ResNet-50 FPN v2", True),
    ),
    "yolact": (
        ConfigOption("yolact_tiny", "Tiny (small, CPU-friendly)", False),
        ConfigOption("yolact_resnet50", "ResNet-50", True),
        ConfigOption("yolact_base", "ResNet-101", True),
        ConfigOption("yolact_im700", "ResNet-101, 700 px", True),
    ),
}

# (label, TrainConfig.freeze): backbone stages frozen from the stem up; -1 freezes all of them.
FREEZE_CHOICES: tuple[tuple[str, int], ...] = (
    ("Nothing: train everything", 0),
    ("Stem", 1),
    ("Stem + stage 1", 2),
    ("Stem + stages 1\u20132", 3),
    ("Stem + stages 1\u20133", 4),
    ("Whole backbone", -1),
)
DEFAULT_FREEZE = 2  # torchvision's own fine-tuning default: stem and first stage frozen

DEVICES: tuple[tuple[str, str], ...] = (("auto", "Automatic"), ("cpu", "CPU"), ("cuda", "CUDA GPU"))
OPTIMIZERS: tuple[tuple[str, str], ...] = (("sgd", "SGD + momentum"), ("adamw", "AdamW"))
# Mirrors engine.cli.train.DEFAULT_LR (a test keeps them equal).
DEFAULT_LR: dict[tuple[str, str], float] = {
    ("maskrcnn", "sgd"): 0.005,
    ("yolact", "sgd"): 0.001,
    ("maskrcnn", "adamw"): 1e-4,
    ("yolact", "adamw"): 1e-4,
}

DEMO_FILES: dict[str, Path] = {
    "maskrcnn": DEMO_WEIGHTS,
    "yolact": DEMO_YOLACT_WEIGHTS,
}


@dataclass(frozen=True)
class StartingWeights:
    """Resolved starting point of a run: None architecture/config means 'from the checkpoint'."""

    architecture: str | None
    config: str | None
    weights: str | None  # path, "random", or None for the config's published weights
    label: str

    @property
    def from_checkpoint(self) -> bool:
        return self.weights is not None and self.weights.endswith(".safetensors")


def weights_for_file(path: str, architecture: str, config: str) -> StartingWeights:
    """A user's weight file: our checkpoints say what they are; a .pth uses the chosen model."""
    name = Path(path).name
    if path.endswith(".safetensors"):
        return StartingWeights(None, None, path, name)
    return StartingWeights(architecture, config, path, name)


def weights_for_model(choice: ModelChoice | None) -> StartingWeights | None:
    """The model now in use as a starting point, or None when it has no file to start from."""
    if choice is None:
        return None
    if choice.key == DEMO_KEY:
        if DEMO_WEIGHTS.is_file():
            return StartingWeights(None, None, str(DEMO_WEIGHTS), choice.label)
        return StartingWeights("maskrcnn", PLACEHOLDER_CONFIG, "random", "untrained demo placeholder")
    if choice.weights and choice.weights != "random":
        if not Path(choice.weights).is_file():
            return None
        return weights_for_file(choice.weights, choice.architecture, choice.config or "")
    if choice.key.startswith("custom:") or choice.architecture not in ARCHITECTURES:
        return None  # built in memory: no file to hand to the training process
    return StartingWeights(choice.architecture, choice.config, choice.weights, choice.label)


def format_duration(seconds: float | None) -> str:
    """'0:42', '12:05', '1:02:03'; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_ap(value: float | None) -> str:
    """AP in percent as COCO tables show it; '\u2013' where there is no ground truth (-1)."""
    if value is None or value < 0:
        return "\u2013"
    return f"{100 * value:.1f}"
