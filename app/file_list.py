"""The file list dock: the images of the open folder, with a status mark per file.

Marks: prediction present, annotations present (set by later editing tools through the same
``set_state`` hook), unreadable (warning icon, dimmed text, the error as tooltip).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QDockWidget, QListWidget, QListWidgetItem, QStyle, QWidget

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
PREDICTED_COLOR = QColor(46, 160, 90)
ANNOTATED_COLOR = QColor(52, 120, 220)


@dataclass
class FileState:
    predicted: bool = False
    annotated: bool = False
    error: str | None = None  # message when the file cannot be read


_ICONS: dict[tuple, QIcon] = {}


def _status_icon(state: FileState, palette: QPalette, dpr: float) -> QIcon:
    """Cached: a folder of thousands of files needs only a handful of distinct icons."""
    key = (state.predicted, state.annotated, palette.color(QPalette.ColorRole.Mid).rgba(), dpr)
    if key not in _ICONS:
        _ICONS[key] = _draw_status_icon(state, palette, dpr)
    return _ICONS[key]


def _draw_status_icon(state: FileState, palette: QPalette, dpr: float) -> QIcon:
    size = 16
    pm = QPixmap(int(size * dpr), int(size * dpr))
    pm.setDevicePixelRatio(dpr)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    outline = palette.color(QPalette.ColorRole.Mid)
    if state.predicted and state.annotated:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(PREDICTED_COLOR)
        p.drawPie(3, 3, 10, 10, 90 * 16, 180 * 16)
        p.setBrush(ANNOTATED_COLOR)
        p.drawPie(3, 3, 10, 10, 270 * 16, 180 * 16)
    elif state.predicted or state.annotated:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(PREDICTED_COLOR if state.predicted else ANNOTATED_COLOR)
        p.drawEllipse(3, 3, 10, 10)
    else:
        p.setPen(outline)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(4, 4, 8, 8)
    p.end()
    return QIcon(pm)


class FileListDock(QDockWidget):
    fileActivated = Signal(str)  # the user picked a file in the list

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Files", parent)
        self.setObjectName("FileListDock")
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(16, 16))
        self.list.setUniformItemSizes(True)
        self.list.setToolTip("Images of the open folder (A/D or PgUp/PgDn to step through them)")
        self.setWidget(self.list)
        self._items: dict[str, QListWidgetItem] = {}
        self._states: dict[str, FileState] = {}
        self._paths: list[str] = []
        self._updating = False
        self.list.currentItemChanged.connect(self._on_current_changed)

    # --- content ------------------------------------------------------------------------------
    def set_files(self, paths: list[str]) -> None:
        self._updating = True
        self.list.clear()
        self._items.clear()
        self._paths = list(paths)
        self._states = {p: self._states.get(p, FileState()) for p in paths}
        for path in paths:
            item = QListWidgetItem(Path(path).name)
            item.setData(PATH_ROLE, path)
            self.list.addItem(item)
            self._items[path] = item
            self._refresh(path)
        self._updating = False
        self.setWindowTitle(f"Files ({len(paths)})" if paths else "Files")

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    def state(self, path: str) -> FileState:
        return self._states.get(path, FileState())

    def set_state(
        self,
        path: str,
        *,
        predicted: bool | None = None,
        annotated: bool | None = None,
        error: str | None | Literal[False] = False,
    ) -> None:
        """Update the marks of ``path``. ``error``: a message marks it unreadable, None clears, False keeps."""
        state = self._states.setdefault(path, FileState())
        if predicted is not None:
            state.predicted = predicted
        if annotated is not None:
            state.annotated = annotated
        if error is not False:
            state.error = error or None
        self._refresh(path)

    def set_current(self, path: str | None) -> None:
        item = self._items.get(path) if path else None
        self._updating = True
        self.list.setCurrentItem(item)  # type: ignore[arg-type]  # Qt takes None: no current item
        if item is not None:
            self.list.scrollToItem(item)
        self._updating = False

    # --- helpers ---------------------------------------------------------------------------------
    def _refresh(self, path: str) -> None:
        item = self._items.get(path)
        if item is None:
            return
        state = self._states.get(path, FileState())
        palette = self.list.palette()
        if state.error:
            item.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
            item.setToolTip(f"{path}\nCannot be opened: {state.error}")
            item.setForeground(QBrush(palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)))
        else:
            item.setIcon(_status_icon(state, palette, self.devicePixelRatioF()))
            marks = [m for m, on in (("predicted", state.predicted), ("annotated", state.annotated)) if on]
            item.setToolTip(f"{path}\n{', '.join(marks) if marks else 'no prediction yet'}")
            item.setData(Qt.ItemDataRole.ForegroundRole, None)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if self._updating or current is None:
            return
        self.fileActivated.emit(current.data(PATH_ROLE))
