"""``python main.py eval``: COCO mask and box AP of a model on an annotated set, as a table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli.options import add_data_source
from engine.errors import WeightsError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="COCO mask/box AP of a model on an annotated set",
        description="Run the model on every image of the set and score it with pycocotools' COCOeval.",
    )
    add_data_source(p, coco_help="COCO instances JSON (ground truth)")
    p.add_argument("--weights", required=True, help="our .safetensors checkpoint, or weights for --model")
    p.add_argument("--model", choices=("maskrcnn", "yolact"), help="architecture for non-.safetensors weights")
    p.add_argument("--config", help="model config for non-.safetensors weights")
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    p.add_argument("--score-thresh", type=float, default=0.05, help="lowest score kept (default 0.05)")
    p.add_argument(
        "--val-split",
        action="store_true",
        help="score only the validation images of the training run (its seed and fraction, from the checkpoint)",
    )
    p.add_argument("--json", type=Path, help="also write the metrics as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.checkpoint import load_checkpoint
    from engine.models import create_segmenter
    from engine.training.data import load_data, split_by_image
    from engine.training.evaluate import evaluate_segmenter, format_ap_table

    source = load_data(args.project, args.coco, args.images)
    is_ours = str(args.weights).endswith(".safetensors")
    if not is_ours and args.model is None:
        raise WeightsError("Pass --model maskrcnn|yolact for weights that are not one of our .safetensors files.")
    image_ids = None
    if args.val_split:
        if not is_ours:
            raise WeightsError("--val-split needs one of our training checkpoints (.safetensors).")
        _, meta = load_checkpoint(args.weights)
        cfg = (meta.get("training") or {}).get("config")
        if not cfg:
            raise WeightsError(f"{args.weights} records no training run; drop --val-split.")
        _, image_ids = split_by_image([r.image_id for r in source.records], cfg["val_fraction"], cfg["seed"])
    segmenter = create_segmenter(args.model, args.config, args.weights, args.device)
    n = len(image_ids) if image_ids is not None else len(source.records)
    with tqdm(total=n, unit="img", file=sys.stderr, leave=False) as bar:
        metrics = evaluate_segmenter(
            segmenter, source, image_ids, args.score_thresh, progress=lambda k, total: bar.update(k - bar.n)
        )
    print(f"{segmenter.describe()} on {source.json_path}")
    print(format_ap_table(metrics))
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=2))
    return 0
