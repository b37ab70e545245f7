"""The one JSON reader behind every file MaskScope reads (COCO, labelme, projects, checkpoint metadata).

Before anything is parsed the file must be a regular file (a FIFO would block for ever, a device
never ends), no larger than ``MAX_JSON_BYTES``, and nested no deeper than ``MAX_JSON_DEPTH``: the
depth is measured on the raw bytes, so a 100,000-deep ``[[[[...`` gets a clear message instead of
Python's RecursionError. Every problem raises the caller's error type (AnnotationError by default)
with the file name and the cause.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import AnnotationError, MaskScopeError

# COCO train2017's instances file is 448 MB; parsing 1 GiB of JSON takes several GB of memory.
MAX_JSON_BYTES = 1 << 30
# COCO and labelme files nest 5 levels deep (object, list, object, list, list); 64 leaves room for
# any 'info'/'extra' a tool adds while staying far below Python's recursion limit.
MAX_JSON_DEPTH = 64

# A JSON string literal (unrolled so that long RLE strings cost one regex step per character run).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Byte classes for the depth scan: 1 opens, 2 closes, 3 quote, 4 backslash.
_KIND = np.zeros(256, np.uint8)
_KIND[[ord("["), ord("{")]] = 1
_KIND[[ord("]"), ord("}")]] = 2
_KIND[ord('"')] = 3
_KIND[ord("\\")] = 4


def nesting_depth(raw: bytes) -> int:
    """Deepest bracket nesting of JSON text, brackets inside strings not counted.

    Vectorised: without backslashes a bracket is inside a string exactly when an odd number of
    quotes precede it; text with escapes has its strings blanked by a regex first (slower).
    """
    code = np.frombuffer(raw, np.uint8)
    where = np.flatnonzero(_KIND[code])
    kinds = _KIND[code[where]]
    if (kinds == 4).any():
        code = np.frombuffer(_STRING.sub(b'""', raw), np.uint8)
        where = np.flatnonzero(_KIND[code])
        kinds = _KIND[code[where]]
    quotes = kinds == 3
    outside = (np.cumsum(quotes) % 2 == 0) & ~quotes
    steps = np.where(kinds[outside] == 1, 1, -1)
    steps[kinds[outside] > 2] = 0  # a stray backslash outside strings: invalid JSON, the parser says so
    return int(np.cumsum(steps).max()) if steps.size else 0


def _size_text(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n} bytes"


def read_json_bytes(path: Path, error: type[MaskScopeError], max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ``error`` naming the cause otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: file not found.") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder, not a JSON file.")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (a FIFO, socket or device); only regular files are read.")
    if st.st_size > max_bytes:
        raise error(
            f"{path}: the file is {_size_text(st.st_size)}, more than the {_size_text(max_bytes)} "
            "MaskScope reads from one JSON file."
        )
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)  # the file may have grown since stat
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a JSON file.") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if len(raw) > max_bytes:
        raise error(f"{path}: the file is larger than the {_size_text(max_bytes)} MaskScope reads from one JSON file.")
    return raw


def parse_json_bytes(
    raw: bytes | str,
    source: str | Path,
    error: type[MaskScopeError] = AnnotationError,
    max_depth: int | None = None,
) -> Any:
    """Parse JSON text (bytes are UTF-8, a BOM allowed) within the depth limit; ``error`` for anything wrong."""
    max_depth = MAX_JSON_DEPTH if max_depth is None else max_depth
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not raw.strip():
        raise error(f"{source}: the file is empty.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 text (byte {exc.start}); is it really a JSON file?") from None
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise error(
            f"{source}: JSON nested {depth} levels deep; MaskScope reads at most {max_depth} levels "
            "(COCO and labelme files need 5). The file is damaged or not an annotation file."
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
    except RecursionError:  # only reachable with a max_depth above Python's recursion limit
        raise error(f"{source}: JSON nested too deeply.") from None


def read_json_file(
    path: str | Path,
    error: type[MaskScopeError] = AnnotationError,
    *,
    max_bytes: int | None = None,
    max_depth: int | None = None,
) -> Any:
    """Read and parse a JSON file with the checks above; ``error`` (a MaskScopeError type) names the file.

    The limits default to ``MAX_JSON_BYTES`` and ``MAX_JSON_DEPTH`` as they are at call time.
    """
    path = Path(path)
    raw = read_json_bytes(path, error, MAX_JSON_BYTES if max_bytes is None else max_bytes)
    return parse_json_bytes(raw, path, error, MAX_JSON_DEPTH if max_depth is None else max_depth)
