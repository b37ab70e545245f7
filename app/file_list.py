"""The file list dock: the images of the open folder, with a status mark per file.

Marks: prediction present, annotations present, done (reviewed), unreadable (warning icon, dimmed
text, the error as tooltip); each row also shows its counts of predictions still to review and of
annotations (the editing tools set them through ``set_state``). Above the list: which stored
prediction run is reviewed, and the order (folder, or model uncertainty first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QVBoxLayout,
    QWidget,
)

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
PREDICTED_COLOR = QColor(46, 160, 90)
ANNOTATED_COLOR = QColor(52, 120, 220)
DONE_COLOR = QColor(30, 140, 60)
ORDERS = (("folder", "Folder order"), ("uncertainty", "Model uncertainty (lowest score margin first)"))


@dataclass
class FileState:
    predicted: bool = False
    annotated: bool = False
    error: str | None = None  # message when the file cannot be read
    pending: int = 0  # predictions still to review (at or above the threshold)
    annotations: int = 0
    done: bool = False


_ICONS: dict[tuple, QIcon] = {}


def _status_icon(state: FileState, palette: QPalette, dpr: float) -> QIcon:
    """Cached: a folder of thousands of files needs only a handful of distinct icons."""
    key = (state.predicted, state.annotated, state.done, palette.color(QPalette.ColorRole.Mid).rgba(), dpr)
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
    if state.done:
        pen = QPen(DONE_COLOR, 2.2)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawPolyline([QPointF(3, 8.5), QPointF(6.5, 12), QPointF(13, 4)])
    elif state.predicted and state.annotated:
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
    runChosen = Signal(int)  # the stored prediction run to review
    orderChosen = Signal(str)  # 'folder' | 'uncertainty'

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Files", parent)
        self.setObjectName("FileListDock")
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        form = QFormLayout()
        form.setContentsMargins(4, 2, 4, 0)
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("Which stored prediction run to review (each model run is kept)")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(10)
        self.run_combo.activated.connect(self._on_run)
        self.order_combo = QComboBox()
        self.order_combo.setToolTip("Order of the images: folder order, or the least certain predictions first")
        self.order_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.order_combo.setMinimumContentsLength(10)
        for key, text in ORDERS:
            self.order_combo.addItem(text, key)
        self.order_combo.activated.connect(lambda i: self.orderChosen.emit(self.order_combo.itemData(i)))
        form.addRow("Run", self.run_combo)
        form.addRow("Order", self.order_combo)
        layout.addLayout(form)
        legend = QLabel("name   to review / annotations   \u2713 done")
        legend.setContentsMargins(6, 0, 4, 0)
        legend.setEnabled(False)  # a quiet hint, in the disabled text colour
        layout.addWidget(legend)
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(16, 16))
        self.list.setUniformItemSizes(True)
        self.list.setToolTip(
            "Images of the open folder: predictions to review / annotations; \u2713 done "
            "(A/D step, Shift+D next needing review, Ctrl+D mark done)"
        )
        layout.addWidget(self.list)
        self.setWidget(body)
        self.set_runs([], None)
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
        pending: int | None = None,
        annotations: int | None = None,
        done: bool | None = None,
    ) -> None:
        """Update the marks of ``path`` (None keeps a mark). ``error``: a message marks it unreadable,
        None clears, False keeps."""
        state = self._states.setdefault(path, FileState())
        if predicted is not None:
            state.predicted = predicted
        if annotated is not None:
            state.annotated = annotated
        if pending is not None:
            state.pending = pending
        if annotations is not None:
            state.annotations = annotations
        if done is not None:
            state.done = done
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

    def set_runs(self, runs: list[tuple[int, str]], active: int | None) -> None:
        """The stored prediction runs of the current project ((id, label), oldest first)."""
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run_id, label in runs:
            self.run_combo.addItem(label, run_id)
        if not runs:
            self.run_combo.addItem("no stored predictions", None)
        index = self.run_combo.findData(active) if active is not None else -1
        self.run_combo.setCurrentIndex(index if index >= 0 else self.run_combo.count() - 1)
        self.run_combo.setEnabled(bool(runs))
        self.run_combo.blockSignals(False)

    def set_order(self, order: str) -> None:
        index = self.order_combo.findData(order)
        if index >= 0 and index != self.order_combo.currentIndex():
            self.order_combo.setCurrentIndex(index)

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
            marks = [m for m, on in (("done", state.done), ("predicted", state.predicted)) if on]
            if state.pending:
                marks.append(f"{state.pending} predictions to review")
            if state.annotations:
                marks.append(f"{state.annotations} annotations")
            item.setToolTip(f"{path}\n{', '.join(marks) if marks else 'no prediction yet'}")
            item.setData(Qt.ItemDataRole.ForegroundRole, None)
        counts = f"  {state.pending} / {state.annotations}" if state.pending or state.annotations else ""
        item.setText(Path(path).name + counts)

    def _on_run(self, index: int) -> None:
        run_id = self.run_combo.itemData(index)
        if run_id is not None:
            self.runChosen.emit(int(run_id))

    def _on_current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if self._updating or current is None:
            return
        self.fileActivated.emit(current.data(PATH_ROLE))
