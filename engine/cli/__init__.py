"""Command line: ``maskscope <command> ...`` (``python main.py <command> ...`` in a checkout).

Each command lives in its own module here with ``register(subparsers)`` (adds the subparser, whose
defaults set ``run``) and ``run(args) -> int`` (does the work). Modules import torch only inside
``run``, so ``--help`` of every command is instant; tests/test_packaging.py checks that.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from engine.errors import MaskScopeError

# The command table: one module under engine.cli per command; adding a command is one name here
# (plus its module). The command is the module's name with "_" as "-" and a trailing "_" dropped
# (import_ -> import, merge_results -> merge-results); build_parser checks each module agrees.
COMMAND_MODULES: tuple[str, ...] = (
    "predict",
    "train",
    "eval",
    "export",
    "import_",
    "demo",
    "models",
    "classes",
    "merge_results",
)

EPILOG = "Without a COMMAND, maskscope opens the window: maskscope [IMAGE|FOLDER ...]."


def command_name(module_name: str) -> str:
    return module_name.rstrip("_").replace("_", "-")


def command_names() -> tuple[str, ...]:
    """The commands, in the order ``--help`` lists them (no command module is imported)."""
    return tuple(command_name(m) for m in COMMAND_MODULES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskscope",
        description="MaskScope: instance segmentation with Mask R-CNN and YOLACT.",
        epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        module.register(sub)
        name = command_name(module_name)
        if name not in sub.choices:  # main.py dispatches by the derived name: the module must use it
            raise RuntimeError(f"engine.cli.{module_name} did not register the command {name!r}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except MaskScopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
