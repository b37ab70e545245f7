"""The models the chooser offers, and how each one is built (in the inference worker thread)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.model_registry import ModelEntry, entries, status
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


MANAGE_MODELS = "Model \u25b8 Manage models\u2026"
LOAD_WEIGHTS = "Model \u25b8 Load weights\u2026"


def registry_entry(choice: ModelChoice) -> ModelEntry | None:
    """The model manager's entry behind a built-in choice; None for a user's file."""
    return next((e for e in entries() if e.name == choice.key), None)


def is_installed(choice: ModelChoice) -> bool:
    """Whether ``choice`` can be loaded without a download: its file is where the loader looks."""
    if choice.key == DEMO_KEY:
        return True  # without trained weights the demo is a random-init placeholder
    entry = registry_entry(choice)
    if entry is not None and choice.weights is None:
        return status(entry).installed
    return choice.weights is None or choice.weights == "random" or Path(choice.weights).is_file()


def weights_help(choice: ModelChoice) -> str:
    """What the user can do when ``choice``'s weights could not be loaded (menu items, not CLI flags)."""
    entry = registry_entry(choice)
    if entry is not None and choice.weights is None:
        if entry.downloadable:
            return (
                f"Use {MANAGE_MODELS} to download {entry.file_name} (with progress; an interrupted download "
                f"continues), or to install a copy you already have. {LOAD_WEIGHTS} loads any other weight file."
            )
        return (
            f"{entry.label} needs the official file {entry.file_name}, which its authors publish on Google "
            f"Drive. {MANAGE_MODELS} shows the link and installs the file once you have it (pick it or drop it "
            f"on the dialog). {LOAD_WEIGHTS} loads it from wherever it is."
        )
    return f"Check that the file is a Mask R-CNN or YOLACT checkpoint, or pick another one with {LOAD_WEIGHTS}."


# Engine messages are written for the command line; a dialog names the menu item instead.
_CLI_ADVICE: tuple[tuple[str, str], ...] = (
    (r", or pass --weights with a local file, or --weights random\.", f", or pick a weight file with {LOAD_WEIGHTS}."),
    (r",? or pass the file with --weights\.", f", or pick the file with {LOAD_WEIGHTS}."),
    (r"pass weights='random' \(--weights random\) or a weight file\.", f"pick a weight file with {LOAD_WEIGHTS}."),
    (r"pass --weights random or a weight file\.", f"pick a weight file with {LOAD_WEIGHTS}."),
    (r"use --device cpu\.", "choose Model \u25b8 Device \u25b8 CPU."),
    (
        r"use --model yolact\.",
        f"load it with {LOAD_WEIGHTS} and answer YOLACT when asked which model it is for.",
    ),
    (
        r"use --config (\w+)\.",
        f"load it with {LOAD_WEIGHTS} and pick the model for \\1 when asked which model it is for.",
    ),
)
_ANY_FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")


def menu_advice(message: str) -> str:
    """``message`` with command-line advice replaced by the menu items that do the same."""
    for pattern, replacement in _CLI_ADVICE:
        message = re.sub(pattern, replacement, message)
    if _ANY_FLAG.search(message):
        # Advice we have no translation for: drop the sentences that name a flag.
        sentences = re.split(r"(?<=[.!?])\s+", message)
        message = " ".join(s for s in sentences if not _ANY_FLAG.search(s))
    return message
