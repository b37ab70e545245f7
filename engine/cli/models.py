"""``python main.py models list|download NAME|locate NAME FILE``: the model manager's command line.

- ``list``: every known model with size, licence, source and whether it is installed (and where).
- ``download NAME``: fetch a downloadable model's file with progress; Ctrl+C stops and keeps the
  partial file, and the same command continues from there.
- ``locate NAME FILE``: check a file you got yourself (the official YOLACT files are on Google
  Drive) by loading it, then copy it where MaskScope looks for it.

Nothing here imports torch until ``locate`` needs it, so ``models --help`` and ``list`` are fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.download import Progress, format_eta
from engine.model_registry import (
    MB,
    download_model,
    entries,
    get_entry,
    how_to_get,
    locate,
    size_bytes,
    status,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    names = [e.name for e in entries()]
    p = subparsers.add_parser(
        "models",
        help="list, download or install model weights",
        description="Known models: list them, download one, or install a file you downloaded yourself.",
    )
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="every known model, its size, licence, source and status").set_defaults(run=_list)
    dl = sub.add_parser("download", help="download a model's weights (resumes an interrupted download)")
    dl.add_argument("name", choices=names, metavar="NAME", help=f"one of: {', '.join(names)}")
    dl.add_argument("--url", help="download from this mirror instead (the SHA-256 check still applies)")
    dl.set_defaults(run=_download)
    loc = sub.add_parser("locate", help="check a weight file you have by loading it, then install it")
    loc.add_argument("name", choices=names, metavar="NAME", help=f"one of: {', '.join(names)}")
    loc.add_argument("file", type=Path, metavar="FILE", help="the weight file (e.g. yolact_base_54_800000.pth)")
    loc.set_defaults(run=_locate)


def _list(_args: argparse.Namespace) -> int:
    for entry in entries():
        size = size_bytes(entry)
        size_text = f"{size / MB:6.1f} MB" if size else "      ?   "
        print(f"{entry.name:22} {entry.kind:9} {size_text}  {status(entry).describe()}")
        print(f"{'':22} {entry.label}; {entry.licence}")
        print(f"{'':22} source: {entry.source}")
    return 0


def _download(args: argparse.Namespace) -> int:
    entry = get_entry(args.name)
    state = status(entry)
    if state.installed:
        print(f"{entry.name} is already installed: {state.path}")
        return 0
    if not entry.downloadable:
        print(f"error: {entry.label} cannot be downloaded automatically. {how_to_get(entry)}", file=sys.stderr)
        print(f"Then: python main.py models locate {entry.name} FILE", file=sys.stderr)
        return 1
    if state.partial_bytes:
        print(f"Continuing the download of {entry.file_name} ({state.partial_bytes / MB:.1f} MB already there)")
    try:
        path = download_model(entry, progress=_print_progress, url=args.url)
    except KeyboardInterrupt:
        print("\nstopped; run the same command again to continue the download", file=sys.stderr)
        return 130
    print(f"\ninstalled: {path}")
    return 0


def _print_progress(p: Progress) -> None:
    of = f" / {p.total / MB:.1f}" if p.total else ""
    eta = f"  {format_eta(p.eta)} left" if p.eta is not None else ""
    print(f"\r  {p.done / MB:.1f}{of} MB  {p.rate / MB:.1f} MB/s{eta}   ", end="", file=sys.stderr, flush=True)


def _locate(args: argparse.Namespace) -> int:
    entry = get_entry(args.name)
    path = locate(entry, args.file, log=print)
    print(f"installed: {path}")
    return 0
