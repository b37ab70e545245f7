"""File names that come from annotation files, kept inside the folder they are relative to.

A COCO ``file_name`` or a labelme ``imagePath`` is data from whoever wrote the file: ``../x.png``,
``/etc/passwd`` or ``C:\\secret.png`` must not make MaskScope read (or show, or train on) a file
outside the project or image folder. The check is on the name itself (lexical): a symlink the
user placed inside their own folder is theirs to follow.
"""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath, PureWindowsPath


def name_problem(name: str) -> str | None:
    """Why ``name`` may not be used as a path inside a folder, or None when it can."""
    if not name or not name.strip():
        return "the file name is empty"
    if "\x00" in name:
        return "the file name contains a NUL character"
    posix = name.replace("\\", "/")
    if PurePosixPath(posix).is_absolute() or PureWindowsPath(name).drive or PureWindowsPath(name).root:
        return f"{name!r} is an absolute path; file names must be relative to the image folder"
    normal = posixpath.normpath(posix)
    if normal == ".." or normal.startswith("../"):
        return f"{name!r} points outside the image folder"
    if normal == ".":
        return f"{name!r} names the folder itself, not a file"
    return None


def path_inside(root: str | Path, name: str) -> Path:
    """``root / name`` for a relative name that stays inside ``root``; ValueError (with the reason) otherwise."""
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    return Path(root) / posixpath.normpath(name.replace("\\", "/"))
