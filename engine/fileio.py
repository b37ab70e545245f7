"""Atomic file writes: write a temp file in the same folder, fsync, then rename over the target.

A crash, a kill -9 or a full disk leaves either the old file or the new one, never a torn one. What
a kill leaves besides is the temp file (``.TARGET.XXXXXXXX.tmp``, hidden): ``remove_stale_temp_files``
deletes those of ours on the next open of that folder.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path

from engine.errors import MaskScopeError

TEMP_SUFFIX = ".tmp"
# What we write atomically: annotation files, checkpoints (+ their JSON), logs.
OUR_TARGET_SUFFIXES = (".json", ".safetensors", ".jsonl")
# tempfile.mkstemp(prefix=".TARGET.", suffix=".tmp") names: 8 characters of this alphabet between them.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


def _process_start() -> float:
    """When this process started (epoch seconds); a temp file older than that is no write of ours."""
    try:  # Linux: field 22 of /proc/self/stat is the start time in clock ticks after boot
        with open("/proc/self/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _IMPORTED  # no procfs: our temp files are all written after this module was imported


_IMPORTED = time.time()
# /proc gives the start in 10 ms ticks and the uptime in 10 ms steps, and file times come from the
# kernel's coarse clock: allow that much, but never past this import (no temp file of ours is older).
_CLOCK_SLACK = 0.05
PROCESS_START = min(_process_start() + _CLOCK_SLACK, _IMPORTED)


def is_our_temp_name(name: str) -> bool:
    """True for the temp-file names ``atomic_write_bytes`` creates for the files we write."""
    match = _TEMP_NAME.match(name)
    return match is not None and match.group("target").endswith(OUR_TARGET_SUFFIXES)


def remove_stale_temp_files(folder: str | Path, older_than: float | None = None) -> list[Path]:
    """Delete the temp files a killed atomic write left in ``folder``; returns what was removed.

    Only regular files with our naming pattern (``is_our_temp_name``) last modified before
    ``older_than`` (default: this process's start), so a write in progress, here or in another
    running MaskScope, is never touched. Errors (read-only folder, a file gone meanwhile) are ignored:
    a leftover temp file is harmless, a failed open is not.
    """
    limit = PROCESS_START if older_than is None else older_than
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_our_temp_name(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_mtime < limit:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise MaskScopeError(f"Could not write {path}: {exc.strerror or exc}.") from exc
    try:
        # mkstemp creates 0600 files: give the new file the old one's mode, or the usual umask default.
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise MaskScopeError(f"Could not write {path}: {exc.strerror or exc}. The previous file is intact.") from exc
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _target_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
