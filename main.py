"""MaskScope entry point (``python main.py`` in a checkout, the ``maskscope`` command once installed).

No arguments opens the window on a bundled sample; ``COMMAND ...`` (or an option such as ``--help``)
runs the command line; ``IMAGE|FOLDER ...`` opens the window on those paths.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    from engine.cli import command_names

    if argv and (argv[0] in command_names() or argv[0].startswith("-")):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from app.application import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
