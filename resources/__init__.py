"""Files that ship with MaskScope: toolbar icons, the demo models and the sample images.

They are package data of this package, found through ``importlib.resources`` so the same lookup works
in a source checkout and in an installed wheel, from any working folder. Importing this module is
cheap (no Qt, no torch): the engine and the CLI's ``--help`` use it too.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from importlib.resources import as_file, files
from pathlib import Path

ICONS = "icons"
MODELS = "models"
SAMPLES = "samples"

# Files extracted from a zipped install live until the process exits (plain installs need none).
_extracted = ExitStack()
atexit.register(_extracted.close)


def resource_path(*parts: str) -> Path:
    """A filesystem path to ``resources/PARTS...`` (the file may not exist: callers check).

    A regular install or a checkout gives the file in place; a zipped one gives a temporary copy.
    """
    if any(not part or "/" in part or "\\" in part or part in (".", "..") for part in parts):
        raise ValueError(f"resource_path takes plain names, one per level: {parts!r}")
    node = files(__name__).joinpath(*parts)
    if isinstance(node, Path):
        return node
    return Path(_extracted.enter_context(as_file(node)))
