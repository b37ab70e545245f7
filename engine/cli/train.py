"""``python main.py train``: fine-tune Mask R-CNN or YOLACT on a project or a COCO set.

Runs the same under ``torchrun --nproc_per_node N main.py train ...`` (DistributedDataParallel).
Progress: a tqdm bar, plus JSON lines in ``OUT/train_log.jsonl`` (what a GUI reads). Creating
the ``--cancel-file`` stops the run after the current iteration, with a resumable checkpoint.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from engine.cli.options import add_data_source
from engine.errors import DataError, WeightsError

# Used when an option is not given (None in argparse, so --resume can tell what was set).
DEFAULTS: dict[str, Any] = {
    "epochs": 12,
    "batch_size": 2,
    "optimizer": "sgd",
    "schedule": "cosine",
    "warmup": 50,
    "clip": 10.0,
    "val_fraction": 0.2,
    "seed": 0,
    "workers": 0,
}
DEFAULT_LR = {("maskrcnn", "sgd"): 0.005, ("yolact", "sgd"): 0.001, "adamw": 1e-4}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="fine-tune a model on a project or a COCO dataset",
        description="Fine-tune Mask R-CNN or YOLACT on annotated images; writes checkpoints to --out.",
    )
    add_data_source(p)
    p.add_argument("--model", choices=("maskrcnn", "yolact"), help="architecture (implied by a .safetensors --weights)")
    p.add_argument("--config", help="model config, e.g. maskrcnn_r18_fpn, yolact_tiny")
    p.add_argument("--weights", help="starting weights: our .safetensors, a .pth, 'random'; default: the config's own")
    p.add_argument("--resume", type=Path, help="continue a run from one of its checkpoints (epoch_*.safetensors)")
    p.add_argument("--out", type=Path, required=True, help="output folder for checkpoints and the log")
    p.add_argument("--epochs", type=int, help=f"default {DEFAULTS['epochs']}")
    p.add_argument("--batch-size", type=int, help=f"images per step and process (default {DEFAULTS['batch_size']})")
    p.add_argument(
        "--lr", type=float, help="base learning rate (default: 0.005 SGD Mask R-CNN, 0.001 SGD YOLACT, 1e-4 AdamW)"
    )
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--schedule", choices=("cosine", "step", "constant"))
    p.add_argument("--warmup", type=int, help="linear warm-up iterations (default 50)")
    p.add_argument("--clip", type=float, help="gradient-norm clip, 0 = off (default 10)")
    frz = p.add_mutually_exclusive_group()
    frz.add_argument("--freeze-backbone", action="store_true", help="freeze every backbone stage")
    frz.add_argument("--freeze", type=int, metavar="N", help="freeze the first N backbone stages (stem = 1)")
    p.add_argument("--train-bn", action="store_true", help="BatchNorm with batch statistics (large batches only)")
    p.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun with --train-bn: BatchNorm statistics over all processes' images (SyncBatchNorm)",
    )
    p.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    p.add_argument("--scale", type=float, nargs=2, metavar=("MIN", "MAX"), help="zoom jitter range (0.75 1.25)")
    p.add_argument("--val-fraction", type=float, help="held-out images for validation (default 0.2)")
    p.add_argument("--seed", type=int, help="seed of the split, sampling, augmentation and init (default 0)")
    p.add_argument("--max-iters", type=int, help="stop after this many iterations")
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--workers", type=int, help="data-loading processes (default 0)")
    p.add_argument("--log", type=Path, help="JSON-lines progress log (default OUT/train_log.jsonl)")
    p.add_argument("--cancel-file", type=Path, help="stop cleanly once this file exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _opt(args: argparse.Namespace, name: str, saved: dict):
    value = getattr(args, name)
    if value is not None:
        return value
    return saved.get(name, DEFAULTS.get(name))


def build_config(args: argparse.Namespace, architecture: str, saved: dict | None = None):
    """TrainConfig from the options; ``saved`` (a resumed run's settings) fills what is not given."""
    from engine.training.trainer import TrainConfig

    saved_cfg = dict(saved or {})
    # map TrainConfig names of a saved run onto option names
    s = {
        "epochs": saved_cfg.get("epochs"),
        "batch_size": saved_cfg.get("batch_size"),
        "optimizer": saved_cfg.get("optimizer"),
        "schedule": saved_cfg.get("schedule"),
        "warmup": saved_cfg.get("warmup_iters"),
        "clip": saved_cfg.get("clip_grad_norm"),
        "val_fraction": saved_cfg.get("val_fraction"),
        "seed": saved_cfg.get("seed"),
        "workers": saved_cfg.get("num_workers"),
        "lr": saved_cfg.get("lr"),
    }
    s = {k: v for k, v in s.items() if v is not None}
    optimizer = _opt(args, "optimizer", s)
    lr = args.lr if args.lr is not None else s.get("lr")
    if lr is None:
        lr = DEFAULT_LR["adamw"] if optimizer == "adamw" else DEFAULT_LR[(architecture, "sgd")]
    freeze = -1 if args.freeze_backbone else (args.freeze if args.freeze is not None else saved_cfg.get("freeze", 0))
    scale = tuple(args.scale) if args.scale else tuple(saved_cfg.get("scale", (0.75, 1.25)))
    clip = _opt(args, "clip", s)
    train_bn = args.train_bn or bool(saved_cfg.get("train_bn", False))
    sync_bn = args.sync_bn or bool(saved_cfg.get("sync_bn", False))
    if sync_bn and not train_bn:
        raise DataError("--sync-bn needs --train-bn: without it BatchNorm uses running statistics, nothing to sync.")
    for name, value, low in (("epochs", _opt(args, "epochs", s), 1), ("batch-size", _opt(args, "batch_size", s), 1)):
        if value < low:
            raise DataError(f"--{name} must be at least {low}, got {value}")
    return TrainConfig(
        epochs=_opt(args, "epochs", s),
        batch_size=_opt(args, "batch_size", s),
        optimizer=optimizer,
        lr=float(lr),
        schedule=_opt(args, "schedule", s),
        warmup_iters=_opt(args, "warmup", s),
        clip_grad_norm=clip if clip and clip > 0 else None,
        amp=not args.no_amp,
        seed=_opt(args, "seed", s),
        val_fraction=_opt(args, "val_fraction", s),
        freeze=freeze,
        train_bn=train_bn,
        sync_bn=sync_bn,
        hflip=0.0 if args.no_flip else float(saved_cfg.get("hflip", 0.5)),
        scale=scale,
        num_workers=_opt(args, "workers", s),
        max_iters=args.max_iters,
    )


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint
    from engine.fileio import remove_stale_temp_files
    from engine.models import load_segmenter
    from engine.training.callbacks import Callback, CancelFileWatcher, JsonlLogger, TqdmProgress
    from engine.training.data import load_data
    from engine.training.ddp import device_for, init_distributed, shutdown
    from engine.training.evaluate import format_ap_table
    from engine.training.setup import build_for_training
    from engine.training.trainer import Trainer, seed_everything

    ctx = init_distributed(args.device)
    try:
        device = device_for(ctx) if ctx else args.device
        if ctx is None or ctx.is_main:  # temp files of checkpoint saves that a kill interrupted
            for folder in {args.out, *([args.resume.parent] if args.resume is not None else [])}:
                remove_stale_temp_files(folder)
        source = load_data(args.project, args.coco, args.images)
        saved = None
        if args.resume is not None:
            _, meta = load_checkpoint(args.resume)
            saved = (meta.get("training") or {}).get("config")
            if saved is None:
                raise WeightsError(f"{args.resume} is not a checkpoint of a training run (no training settings).")
            segmenter = load_segmenter(args.resume, device=device)
            if list(segmenter.class_names) != list(source.classes):
                raise DataError(
                    f"{args.resume} was trained on classes {segmenter.class_names}, the data has {source.classes}."
                )
        else:
            if args.model is None and not str(args.weights or "").endswith(".safetensors"):
                raise WeightsError("Choose --model maskrcnn|yolact (or pass one of our .safetensors as --weights).")
            seed_everything(args.seed if args.seed is not None else DEFAULTS["seed"])  # head init
            segmenter = build_for_training(source.classes, args.model, args.config, args.weights, device)
        config = build_config(args, segmenter.architecture, saved)
        args.out.mkdir(parents=True, exist_ok=True)
        cancel = threading.Event()
        is_main = ctx is None or ctx.is_main
        callbacks: list[Callback] = []
        if is_main:
            callbacks.append(JsonlLogger(args.log or args.out / "train_log.jsonl"))
            callbacks.append(TqdmProgress(disable=args.quiet))
        if args.cancel_file is not None:
            callbacks.append(CancelFileWatcher(args.cancel_file, cancel))
        run_info = {"command": "train", "data": str(args.project or args.coco)}
        trainer = Trainer(segmenter, source, config, args.out, callbacks, cancel, ctx, run_info)
        if is_main:
            print(
                f"training {segmenter.describe()} on {len(trainer.train_set)} images "
                f"({len(trainer.val_ids)} held out), classes: {', '.join(source.classes)}"
            )
        result = trainer.fit(resume=args.resume)
        if is_main:
            if result.metrics:
                print(format_ap_table(result.metrics))
            state = "cancelled" if result.cancelled else "finished"
            speed = f"{result.images_per_s:.2f} images/s"
            print(f"{state}: {result.iterations} iterations, {speed}; weights: {result.checkpoint}")
            summary = {"checkpoint": str(result.checkpoint), "cancelled": result.cancelled, "metrics": result.metrics}
            (args.out / "result.json").write_text(json.dumps(summary, indent=2))
        return 0
    finally:
        shutdown(ctx)
