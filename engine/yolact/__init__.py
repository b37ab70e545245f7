"""YOLACT (v1.0), our implementation of the official network; loads the official ``.pth`` files.

The registry (engine.models) uses ``create``, ``from_checkpoint`` and ``CONFIGS``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from engine.classes import COCO_CLASSES
from engine.device import pick_device
from engine.errors import WeightsError
from engine.segmenter import Segmenter
from engine.yolact.config import CONFIGS, DEFAULT_CONFIG, YolactConfig, get_config
from engine.yolact.model import Yolact
from engine.yolact.segmenter import DEFAULT_SCORE_THRESH, YolactSegmenter
from engine.yolact.weights import clean_official_state_dict, infer_config, load_into, read_state_dict

__all__ = ["CONFIGS", "YolactConfig", "YolactSegmenter", "create", "from_checkpoint", "weights_dir"]

log = logging.getLogger(__name__)


def weights_dir() -> Path:
    """Where official weight files are looked for: $MASKSCOPE_WEIGHTS_DIR, else the user data folder."""
    env = os.environ.get("MASKSCOPE_WEIGHTS_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("maskscope")) / "weights"


def official_weights_path(cfg: YolactConfig) -> Path:
    """The official checkpoint of ``cfg`` in ``weights_dir()``; WeightsError naming file and folder if absent."""
    if cfg.checkpoint is None:
        raise WeightsError(
            f"{cfg.name} has no official weights; pass weights='random' or a checkpoint file (.pth / .safetensors)."
        )
    folder = weights_dir()
    path = folder / cfg.checkpoint
    if not path.is_file():
        raise WeightsError(
            f"YOLACT weights {cfg.checkpoint} not found in {folder}. They cannot be downloaded from here: "
            f"get {cfg.checkpoint} from the official YOLACT release (github.com/dbolya/yolact) and copy it "
            f"into {folder}, or pass the file with --weights."
        )
    return path


def _class_names_for(num_object_classes: int, class_names: list[str] | None) -> list[str]:
    if class_names is not None:
        return list(class_names)
    if num_object_classes == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return [f"class_{i + 1}" for i in range(num_object_classes)]


def create(
    config: str | None = None,
    weights: str | Path | None = None,
    device: str | None = None,
    class_names: list[str] | None = None,
    score_thresh: float | None = None,
) -> Segmenter:  # a .safetensors of ours may hold either architecture
    """Build a YOLACT segmenter.

    ``weights``: None -> the config's official file from ``weights_dir()``; ``"random"`` -> random
    init (xavier heads); a path -> an official-format ``.pth`` (config from ``config`` or inferred
    from the file name / tensor shapes). With ``class_names`` of another length than the file's
    classes, the class-dependent heads are re-initialised (with a warning).
    """
    if weights is not None and str(weights).endswith(".safetensors"):
        from engine.models import load_segmenter  # one of our own checkpoints

        return load_segmenter(weights, device=device, score_thresh=score_thresh)
    dev = pick_device(device)
    thresh = DEFAULT_SCORE_THRESH if score_thresh is None else float(score_thresh)
    state_dict, source = None, "random init"
    if weights is not None and str(weights) == "random":
        cfg = get_config(config or DEFAULT_CONFIG)
    else:
        if weights is None:
            cfg = get_config(config or DEFAULT_CONFIG)
            path = official_weights_path(cfg)
        else:
            path = Path(weights)
        state_dict = clean_official_state_dict(read_state_dict(path))
        inferred, note = infer_config(path, state_dict)
        log.info("%s: %s", path, note)
        file_classes = inferred.num_classes
        cfg = get_config(config) if config else inferred
        cfg = cfg.with_num_classes(file_classes - 1)
        source = str(path)
    names = _class_names_for(cfg.num_classes - 1, class_names)
    if len(names) != cfg.num_classes - 1:
        cfg = cfg.with_num_classes(len(names))
    model = Yolact(cfg)
    if state_dict is not None:
        skipped = load_into(model, state_dict, source=source)
        if skipped:
            source += f" (heads re-initialised for {len(names)} classes)"
    seg = YolactSegmenter(model, names, device=dev, score_thresh=thresh)
    seg.weights_source = source
    return seg


def from_checkpoint(
    tensors: dict[str, torch.Tensor],
    meta: dict,
    device: str | None = None,
    score_thresh: float | None = None,
    source: str = "checkpoint",
) -> YolactSegmenter:
    """Rebuild a segmenter from one of our safetensors checkpoints (engine.checkpoint)."""
    names = list(meta["class_names"])
    if isinstance(meta.get("yolact_config"), dict):
        cfg = YolactConfig.from_dict(meta["yolact_config"])
    else:
        cfg = get_config(meta.get("config") or DEFAULT_CONFIG)
    if cfg.num_classes != len(names) + 1:
        cfg = cfg.with_num_classes(len(names))
    model = Yolact(cfg)
    load_into(model, dict(tensors), source=source, allow_class_change=False)
    if score_thresh is None:
        score_thresh = float(meta.get("score_thresh", DEFAULT_SCORE_THRESH))
    seg = YolactSegmenter(model, names, device=pick_device(device), score_thresh=score_thresh)
    seg.weights_source = source
    return seg
