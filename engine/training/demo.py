"""The demo models shipped in ``resources/models``: small Mask R-CNN and YOLACT networks trained
from scratch on generated shapes (engine.synthetic), so the app segments something offline.

``train_demo_model`` is the whole recipe: generate the set, build the network, train with the
ordinary ``Trainer``, store fp16 weights (loaded back as fp32) with a sidecar that records the
command, seeds and settings. Run it with ``python scripts/train_demo_models.py`` or
``python main.py demo --train``.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.segmenter import Segmenter
from engine.synthetic import DEMO_CLASSES, write_coco_dataset
from engine.training.callbacks import Callback
from engine.training.data import load_coco_source
from engine.training.trainer import TrainConfig, Trainer, TrainResult, seed_everything
from resources import MODELS, resource_path

DEMO_DIR = resource_path(MODELS)


@dataclass(frozen=True)
class DemoRecipe:
    architecture: str
    config: str
    file_stem: str
    image_size: int  # generated images are image_size x image_size
    input_size: int  # network input: Mask R-CNN min/max size, YOLACT max_size
    train_images: int
    data_seed: int
    train: TrainConfig
    # Training-only sampling settings of torchvision's Mask R-CNN (fewer RoIs: faster CPU steps).
    rpn_pre_nms_train: int = 600
    rpn_post_nms_train: int = 300
    roi_batch_per_image: int = 128

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"] = self.train.to_dict()
        return d


RECIPES: dict[str, DemoRecipe] = {
    "maskrcnn": DemoRecipe(
        architecture="maskrcnn",
        config="maskrcnn_r18_fpn",
        file_stem="demo_maskrcnn",
        image_size=128,
        # The 128 px images enter the network at 1.25x: the mask head pools stride-3.2 features
        # instead of stride-4 ones. The model first trained at 128 already segments better when
        # run at 160 (box-prompt masks of held-out shapes at IoU >= 0.9: 72 % instead of 59 %).
        input_size=160,
        train_images=800,
        data_seed=1000,
        train=TrainConfig(
            epochs=5,
            batch_size=4,
            optimizer="adamw",
            lr=6e-4,
            weight_decay=1e-4,
            schedule="cosine",
            warmup_iters=100,
            clip_grad_norm=10.0,
            seed=0,
            val_fraction=0.05,
            train_bn=False,  # GroupNorm backbone: nothing to switch
            hflip=0.5,
            scale=(0.75, 1.25),
            eval_every=2,
        ),
    ),
    "yolact": DemoRecipe(
        architecture="yolact",
        config="yolact_tiny",
        file_stem="demo_yolact",
        image_size=160,
        input_size=320,
        train_images=800,
        data_seed=2000,
        train=TrainConfig(
            epochs=8,
            batch_size=8,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=1e-4,
            schedule="cosine",
            warmup_iters=100,
            clip_grad_norm=10.0,
            seed=0,
            val_fraction=0.05,
            train_bn=True,  # BatchNorm trained from scratch needs batch statistics
            hflip=0.5,
            scale=(0.75, 1.25),
            eval_every=3,
        ),
    ),
}


def demo_path(architecture: str, folder: Path = DEMO_DIR) -> Path:
    return folder / f"{RECIPES[architecture].file_stem}.safetensors"


def build_demo_segmenter(recipe: DemoRecipe, device: str | None = None) -> Segmenter:
    """The untrained network of ``recipe`` for DEMO_CLASSES (seeded)."""
    seed_everything(recipe.train.seed)
    names = list(DEMO_CLASSES)
    if recipe.architecture == "maskrcnn":
        from engine.maskrcnn import create

        seg: Segmenter = create(
            recipe.config, "random", device, names, min_size=recipe.input_size, max_size=recipe.input_size
        )
        return apply_training_sampling(seg, recipe)
    if recipe.architecture == "yolact":
        from engine.yolact.config import _scaled, get_config
        from engine.yolact.model import Yolact
        from engine.yolact.segmenter import YolactSegmenter

        base = get_config(recipe.config)
        cfg = dataclasses.replace(
            base.with_num_classes(len(names)),
            max_size=recipe.input_size,
            pred_scales=_scaled(get_config("yolact_base").pred_scales, recipe.input_size),
        )
        seg = YolactSegmenter(Yolact(cfg), names, device=device or "cpu")
        seg.weights_source = "random init"
        return seg
    raise ValueError(f"no demo recipe for {recipe.architecture!r}")


def apply_training_sampling(seg: Segmenter, recipe: DemoRecipe = RECIPES["maskrcnn"]) -> Segmenter:
    """Fewer proposals and sampled RoIs per image during training (Mask R-CNN only; inference
    settings untouched): the CPU steps get much cheaper on images with a few objects."""
    if seg.architecture == "maskrcnn":
        m: Any = seg.model  # torchvision's MaskRCNN (untyped)
        m.rpn._pre_nms_top_n["training"] = recipe.rpn_pre_nms_train
        m.rpn._post_nms_top_n["training"] = recipe.rpn_post_nms_train
        m.roi_heads.fg_bg_sampler.batch_size_per_image = recipe.roi_batch_per_image
    return seg


def set_input_size(seg: Segmenter, size: int) -> None:
    """Mask R-CNN's network input (its transform's min and max size); YOLACT keeps its config."""
    if seg.architecture == "maskrcnn":
        m: Any = seg.model
        m.transform.min_size, m.transform.max_size = (size,), size


def input_metadata(recipe: DemoRecipe) -> dict:
    """The sidecar's network input size, read back by load_segmenter (Mask R-CNN only)."""
    if recipe.architecture != "maskrcnn":
        return {}
    return {"min_size": recipe.input_size, "max_size": recipe.input_size}


def save_half(path: Path, state: dict[str, torch.Tensor], meta: dict) -> Path:
    """Store float tensors as fp16 (half the file; loading casts back to the model's fp32)."""
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    return save_checkpoint(path, half, {**meta, "weights_dtype": "float16"})


def train_demo_model(
    architecture: str,
    out_dir: Path = DEMO_DIR,
    work_dir: Path | None = None,
    quick_iters: int | None = None,
    device: str | None = None,
    callbacks: Iterable[Callback] = (),
    cancel: threading.Event | None = None,
    command: str = "",
) -> tuple[Path, TrainResult]:
    """Generate data, train ``architecture``'s demo model, write ``out_dir/<stem>.safetensors``.

    ``quick_iters``: smoke test: 12 images, that many iterations (the file is not a usable demo).
    """
    recipe = RECIPES[architecture]
    n_images = 12 if quick_iters else recipe.train_images
    cfg = recipe.train
    if quick_iters:
        cfg = dataclasses.replace(cfg, epochs=1, max_iters=quick_iters, val_fraction=0.2, warmup_iters=1)
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix=f"maskscope_demo_{architecture}_")) if work_dir is None else Path(work_dir)
    try:
        data_json = write_coco_dataset(work / "data", n_images, recipe.image_size, DEMO_CLASSES, seed=recipe.data_seed)
        source = load_coco_source(data_json)
        seg = build_demo_segmenter(recipe, device)
        info = {"command": command, "recipe": recipe.to_dict()}
        trainer = Trainer(seg, source, cfg, work / "run", callbacks, cancel, run_info={"demo": info})
        result = trainer.fit()
        if result.cancelled or result.checkpoint is None:
            return Path(), result
        _, meta = load_checkpoint(result.checkpoint)
        meta["demo"] = {
            "command": command,
            "recipe": recipe.to_dict(),
            "quick_smoke_test": bool(quick_iters),
            "data": {
                "generator": "engine.synthetic.write_coco_dataset",
                "n_images": n_images,
                "size": recipe.image_size,
                "classes": list(DEMO_CLASSES),
                "seed": recipe.data_seed,
            },
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
        meta.update(input_metadata(recipe))
        path = save_half(out_dir / f"{recipe.file_stem}.safetensors", seg.model.state_dict(), meta)
        return path, result
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def train_demo_models(
    arch: str = "both",
    out_dir: Path = DEMO_DIR,
    work_dir: Path | None = None,
    quick_iters: int | None = None,
    device: str | None = None,
    command: str = "",
    quiet: bool = False,
) -> int:
    """Train one demo model or both with a progress bar; prints the AP table. Returns an exit code."""
    from engine.training.callbacks import TqdmProgress
    from engine.training.evaluate import format_ap_table

    archs = list(RECIPES) if arch == "both" else [arch]
    for name in archs:
        work = work_dir / name if work_dir is not None else None
        print(f"training demo {name} ({RECIPES[name].config})")
        path, result = train_demo_model(
            name, out_dir, work, quick_iters, device, [TqdmProgress(disable=quiet)], command=command
        )
        if result.cancelled:
            print(f"{name}: cancelled")
            return 1
        if result.metrics:
            print(format_ap_table(result.metrics))
        print(f"{name}: {result.iterations} iterations, {result.images_per_s:.2f} images/s -> {path}")
    return 0


def continue_demo_model(
    architecture: str,
    epochs: int,
    lr_factor: float = 1 / 3,
    out_dir: Path = DEMO_DIR,
    work_dir: Path | None = None,
    device: str | None = None,
    callbacks: Iterable[Callback] = (),
    command: str = "",
) -> tuple[Path, TrainResult]:
    """Train the shipped demo model ``epochs`` more epochs on the same generated data (same seed,
    same validation split), warm-up then cosine from ``lr_factor`` x the recipe's learning rate.

    The sidecar keeps the original recipe and appends this continuation to ``demo.continued``.
    """
    from engine.models import load_segmenter

    recipe = RECIPES[architecture]
    path = demo_path(architecture, out_dir)
    _, meta = load_checkpoint(path)
    seg = apply_training_sampling(load_segmenter(path, device=device), recipe)
    set_input_size(seg, recipe.input_size)  # the recipe's, even when the file was trained at another
    cfg = dataclasses.replace(recipe.train, epochs=epochs, lr=recipe.train.lr * lr_factor, warmup_iters=20)
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix=f"maskscope_demo_more_{architecture}_")) if work_dir is None else Path(work_dir)
    try:
        data_json = write_coco_dataset(work / "data", recipe.train_images, recipe.image_size, DEMO_CLASSES,
                                       seed=recipe.data_seed)  # fmt: skip
        trainer = Trainer(seg, load_coco_source(data_json), cfg, work / "run", callbacks)
        result = trainer.fit()
        if result.cancelled:
            return Path(), result
        demo = meta.get("demo", {})
        demo.setdefault("continued", []).append(
            {
                "command": command,
                "epochs": epochs,
                "input_size": recipe.input_size,
                "scale_jitter_masks": "bilinear",
                "lr": cfg.lr,
                "warmup_iters": cfg.warmup_iters,
                "iterations": result.iterations,
            }  # fmt: skip
        )
        meta.update({"demo": demo, "metrics": result.metrics, **input_metadata(recipe)})
        meta.pop("weights_dtype", None)
        return save_half(path, seg.model.state_dict(), meta), result
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
