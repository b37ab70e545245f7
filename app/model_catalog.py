"""The models the chooser offers, and how each one is built (in the inference worker thread)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resources import MODELS, resource_path


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model chooser (plain data: the GUI thread never imports torch, so the
    window opens at once)."""

    key: str
    label: str
    architecture: str
    config: str | None
    weights: str | None  # None: the config's default weights; a path; or "random"


DEMO_WEIGHTS = resource_path(MODELS, "demo_maskrcnn.safetensors")
DEMO_YOLACT_WEIGHTS = resource_path(MODELS, "demo_yolact.safetensors")
# The placeholder demo model (until a trained one ships): small and randomly initialised.
PLACEHOLDER_CONFIG = "maskrcnn_r18_fpn"
# Predictions keep everything down to this score; the GUI's threshold slider filters above it.
MODEL_SCORE_THRESH = 0.05

DEMO_KEY = "demo"

BUILTIN_CHOICES: tuple[ModelChoice, ...] = (
    ModelChoice(DEMO_KEY, "Demo model (built-in)", "maskrcnn", PLACEHOLDER_CONFIG, None),
    ModelChoice("maskrcnn_r50_coco", "Mask R-CNN ResNet-50-FPN (COCO)", "maskrcnn", "maskrcnn_resnet50_fpn", None),
    ModelChoice(
        "maskrcnn_r50_v2_coco",
        "Mask R-CNN ResNet-50-FPN v2 (COCO)",
        "maskrcnn",
        "maskrcnn_resnet50_fpn_v2",
        None,
    ),
    ModelChoice("yolact_r50_coco", "YOLACT ResNet-50 (COCO)", "yolact", "yolact_resnet50", None),
    ModelChoice("yolact_r101_coco", "YOLACT ResNet-101 (COCO)", "yolact", "yolact_base", None),
    ModelChoice("yolact_im700_coco", "YOLACT ResNet-101 im700 (COCO)", "yolact", "yolact_im700", None),
)

# Official YOLACT checkpoint file per config: named in error messages so users know what to get.
YOLACT_OFFICIAL_FILES = {
    "yolact_base": "yolact_base_54_800000.pth",
    "yolact_resnet50": "yolact_resnet50_54_800000.pth",
    "yolact_im700": "yolact_im700_54_800000.pth",
}


DEMO_YOLACT_CHOICE = ModelChoice(
    "demo_yolact", "Demo YOLACT (built-in)", "yolact", "yolact_tiny", str(DEMO_YOLACT_WEIGHTS)
)


def builtin_choices() -> list[ModelChoice]:
    """The chooser's fixed entries; the YOLACT demo only when its trained weights ship."""
    choices = list(BUILTIN_CHOICES)
    if DEMO_YOLACT_WEIGHTS.is_file():
        choices.insert(1, DEMO_YOLACT_CHOICE)
    return choices


def demo_is_placeholder() -> bool:
    """True while no trained demo model ships in resources/models/."""
    return not DEMO_WEIGHTS.is_file()


def choice_by_key(key: str) -> ModelChoice | None:
    return next((c for c in builtin_choices() if c.key == key), None)


def choice_for_file(path: str | Path, architecture: str, config: str | None) -> ModelChoice:
    """A chooser entry for a user's weight file."""
    path = Path(path)
    return ModelChoice(f"file:{path}", f"{path.name}", architecture, config, str(path))


def guess_file_model(path: str | Path) -> tuple[str, str | None]:
    """Best guess of (architecture, config) for a ``.pth`` file from its name; safetensors say it themselves."""
    name = Path(path).name.lower()
    if name.startswith("yolact"):
        for config in ("yolact_im700", "yolact_resnet50", "yolact_base"):
            if name.startswith(config):
                return "yolact", config
        return "yolact", "yolact_base"
    if "v2" in name:
        return "maskrcnn", "maskrcnn_resnet50_fpn_v2"
    return "maskrcnn", "maskrcnn_resnet50_fpn"


@dataclass
class LoadRequest:
    """What the worker needs to build a segmenter."""

    choice: ModelChoice
    device: str  # "auto", "cpu" or "cuda"


def build_segmenter(request: LoadRequest):
    """Build the segmenter for ``request`` (slow: runs in the worker thread). Raises MaskScopeError."""
    from engine.models import create_segmenter, load_segmenter

    choice = request.choice
    device = None if request.device == "auto" else request.device
    if choice.key == DEMO_KEY:
        if DEMO_WEIGHTS.is_file():
            return load_segmenter(DEMO_WEIGHTS, device=device, score_thresh=MODEL_SCORE_THRESH)
        from engine.synthetic import DEMO_CLASSES

        # Same classes as the trained demo model will have, so the GUI looks the same once it ships.
        segmenter = create_segmenter(
            "maskrcnn",
            PLACEHOLDER_CONFIG,
            "random",
            device=device,
            class_names=list(DEMO_CLASSES),
            score_thresh=MODEL_SCORE_THRESH,
        )
        segmenter.weights_source = "untrained placeholder (random init)"
        return segmenter
    if choice.weights is not None and str(choice.weights).endswith(".safetensors"):
        return load_segmenter(choice.weights, device=device, score_thresh=MODEL_SCORE_THRESH)
    return create_segmenter(
        choice.architecture,
        choice.config,
        choice.weights,
        device=device,
        score_thresh=MODEL_SCORE_THRESH,
    )


def weights_help(choice: ModelChoice) -> str:
    """What the user can do when ``choice``'s weights could not be loaded."""
    if choice.architecture == "yolact" and choice.config in YOLACT_OFFICIAL_FILES and choice.weights is None:
        fname = YOLACT_OFFICIAL_FILES[choice.config]
        return (
            f"YOLACT needs the official checkpoint {fname} (from the YOLACT authors' release). "
            "Copy it into the folder named above, or use Model \u25b8 Load weights\u2026 to pick the file "
            "wherever it is."
        )
    if choice.architecture == "maskrcnn" and choice.weights is None:
        return (
            "The COCO weights come from torchvision's download on first use. When offline, copy the "
            "file named above into the folder named above, or use Model \u25b8 Load weights\u2026 "
            "to pick a weight file you have."
        )
    return (
        "Check that the file is a Mask R-CNN or YOLACT checkpoint, "
        "or pick another one with Model \u25b8 Load weights\u2026."
    )
