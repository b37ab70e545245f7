"""Command-line options that more than one command takes."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_data_source(parser: argparse.ArgumentParser, coco_help: str = "COCO instances JSON") -> None:
    """An annotated set, as training and evaluation read it (engine.training.data.load_data):
    ``--project`` or ``--coco`` (with ``--images``, default beside the JSON)."""
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--project", type=Path, help="MaskScope project folder (or its annotations JSON)")
    data.add_argument("--coco", type=Path, help=coco_help)
    parser.add_argument("--images", type=Path, help="image folder of --coco (default: beside the JSON)")
