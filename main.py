"""MaskScope entry point: no arguments opens the window; ``main.py COMMAND ...`` runs the CLI;
``main.py IMAGE|FOLDER ...`` opens the window on those paths."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from engine.cli import COMMAND_MODULES

    commands = {name.rstrip("_").replace("_", "-") for name in COMMAND_MODULES}  # merge_results: merge-results
    if argv and (argv[0] in commands or argv[0].startswith("-")):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from app.application import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
