"""Persistent user settings (recent files, overlay options, model, device) on top of QSettings.

Tests and benchmarks pass their own ``QSettings`` (an INI file in a temp folder) so the user's
settings are never touched; ``MASKSCOPE_SETTINGS=/path/file.ini`` does the same for a whole run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

MAX_RECENT = 10


def default_qsettings() -> QSettings:
    path = os.environ.get("MASKSCOPE_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "MaskScope", "MaskScope")


class AppSettings:
    """Typed accessors over one ``QSettings`` store."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else default_qsettings()

    # --- generic typed values ----------------------------------------------------------------
    def get_float(self, key: str, default: float) -> float:
        try:
            value: Any = self.store.value(key, default)  # QSettings gives back whatever was stored
            return float(value)
        except (TypeError, ValueError):
            return default

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.store.value(key, default)
        if isinstance(value, str):  # INI files give strings back
            return value.lower() in ("true", "1", "yes")
        return bool(value)

    def get_str(self, key: str, default: str = "") -> str:
        value = self.store.value(key, default)
        return default if value is None else str(value)

    def set(self, key: str, value: object) -> None:
        self.store.setValue(key, value)

    def get_bytes(self, key: str) -> bytes | None:
        value = self.store.value(key)
        if value is None:
            return None
        try:
            return bytes(value)
        except TypeError:
            return None

    def sync(self) -> None:
        self.store.sync()

    # --- recent files and folders ----------------------------------------------------------------
    def recent(self) -> list[str]:
        """Recently opened files and folders, newest first; entries that no longer exist are dropped."""
        value: Any = self.store.value("recent/paths", [])
        if isinstance(value, str):
            value = [value]
        paths = [str(p) for p in (value or []) if p]
        return [p for p in paths if Path(p).exists()]

    def add_recent(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        paths = [p for p in self.recent() if p != path]
        paths.insert(0, path)
        paths = paths[:MAX_RECENT]
        self.store.setValue("recent/paths", paths)
        return paths

    def clear_recent(self) -> None:
        self.store.setValue("recent/paths", [])
