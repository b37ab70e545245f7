"""``python main.py demo``: the bundled demo models and their generated data.

- ``demo``: list the demo models (file, size, classes, how they were trained, validation AP).
- ``demo --train [--arch maskrcnn|yolact|both] [--quick N]``: (re)train them (see
  scripts/train_demo_models.py for the recipe).
- ``demo --data DIR [--n N] [--size PX] [--seed S] [--classes ...]``: write a generated COCO set
  (images + annotations.json) to try training, evaluation or the app on.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.synthetic import DEMO_CLASSES, SHAPES

    p = subparsers.add_parser(
        "demo",
        help="demo models: list, train, or write generated data",
        description="List the bundled demo models, retrain them, or write a generated shapes dataset.",
    )
    p.add_argument("--train", action="store_true", help="train the demo models (long on CPU)")
    p.add_argument("--arch", choices=("maskrcnn", "yolact", "both"), default="both")
    p.add_argument("--out", type=Path, help="where --train writes the models (default resources/models)")
    p.add_argument("--quick", type=int, metavar="N", help="with --train: smoke test, N iterations")
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--data", type=Path, metavar="DIR", help="write a generated COCO dataset here")
    p.add_argument("--n", type=int, default=50, help="images for --data (default 50)")
    p.add_argument("--size", type=int, default=256, help="image size for --data (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed for --data")
    p.add_argument("--classes", nargs="+", choices=SHAPES, default=list(DEMO_CLASSES), help="shape classes for --data")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.data is not None:
        from engine.synthetic import write_coco_dataset

        if args.n < 1 or args.size < 32:
            print("error: --n must be >= 1 and --size >= 32", file=sys.stderr)
            return 2
        path = write_coco_dataset(args.data, args.n, args.size, args.classes, args.seed)
        print(f"wrote {args.n} images and {path}")
        return 0
    if args.train:
        from engine.training.demo import DEMO_DIR, train_demo_models

        command = "python main.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        return train_demo_models(args.arch, args.out or DEMO_DIR, None, args.quick, args.device, command)
    return _list()


def _list() -> int:
    from engine.checkpoint import read_checkpoint_metadata
    from engine.training.demo import RECIPES, demo_path

    for arch in RECIPES:
        path = demo_path(arch)
        if not path.is_file():
            print(f"{arch}: {path} missing (python main.py demo --train --arch {arch})")
            continue
        meta = read_checkpoint_metadata(path)
        size_mb = path.stat().st_size / 1e6
        ap = (meta.get("metrics") or {}).get("mask", {}).get("AP50")
        ap_text = f", validation mask AP50 {ap:.3f}" if isinstance(ap, float) else ""
        classes = ", ".join(meta["class_names"])
        print(f"{arch}: {path} ({size_mb:.1f} MB, {meta.get('config')}, classes {classes}{ap_text})")
        cmd = (meta.get("demo") or {}).get("command")
        if cmd:
            print(f"  trained with: {cmd}")
    return 0
