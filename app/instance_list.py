"""The instance list dock: class, score, area and a visibility checkbox per instance.

A table model over numpy arrays: showing a new prediction is one model reset (no per-row widget
items), sorting is a numpy argsort, and rows below the score threshold are filtered out the same
way, so 100 or 1000 instances cost the GUI thread next to nothing. Rows are sorted by score
(highest first) unless the user clicks another column. Selection is synced by the window.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QTreeView, QWidget

COLUMNS = ("#", "Class", "Score", "Area (px)")
COL_INDEX, COL_CLASS, COL_SCORE, COL_AREA = range(4)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
Index = QModelIndex | QPersistentModelIndex


def _swatch(rgb: tuple[int, int, int], dpr: float) -> QIcon:
    pm = QPixmap(int(14 * dpr), int(14 * dpr))
    pm.setDevicePixelRatio(dpr)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QColor(0, 0, 0, 120))
    p.setBrush(QColor(*rgb))
    p.drawRoundedRect(1, 1, 12, 12, 3, 3)
    p.end()
    return QIcon(pm)


class InstanceTableModel(QAbstractTableModel):
    """Rows are the instances that pass the threshold, in the current sort order."""

    visibilityToggled = Signal(int, bool)  # instance index, visible

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.names: list[str] = []
        self.scores = np.zeros(0, np.float32)
        self.areas = np.zeros(0, np.int64)
        self.colors = np.zeros((0, 3), np.uint8)
        self.user_visible = np.zeros(0, bool)
        self.above = np.zeros(0, bool)
        self.rows = np.zeros(0, np.int64)  # row -> instance index
        self.sort_column, self.sort_order = COL_SCORE, Qt.SortOrder.DescendingOrder
        self._icons: dict[int, QIcon] = {}
        self.dpr = 1.0

    def set_instances(self, names, scores, areas, colors, user_visible) -> None:
        self.beginResetModel()
        self.names = list(names)
        self.scores = np.asarray(scores, np.float32)
        self.areas = np.asarray(areas, np.int64)
        self.colors = np.asarray(colors, np.uint8).reshape(-1, 3)
        self.user_visible = user_visible  # shared with the window: the same array it filters with
        self.above = np.ones(len(self.names), bool)
        self._icons.clear()
        self._reorder()
        self.endResetModel()

    def set_above_threshold(self, above: np.ndarray) -> None:
        self.layoutAboutToBeChanged.emit()
        old = self.rows
        self.above = np.asarray(above, bool)
        self._reorder()
        self._remap_persistent(old)
        self.layoutChanged.emit()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        old = self.rows
        self.sort_column, self.sort_order = column, order
        self._reorder()
        self._remap_persistent(old)
        self.layoutChanged.emit()

    def row_of(self, instance: int) -> int:
        hits = np.flatnonzero(self.rows == instance)
        return int(hits[0]) if len(hits) else -1

    def _reorder(self) -> None:
        n = len(self.names)
        keys = {
            COL_INDEX: np.arange(n),
            COL_SCORE: self.scores,
            COL_AREA: self.areas,
            COL_CLASS: np.array(self.names, dtype=object) if n else np.zeros(0),
        }[self.sort_column]
        order = np.argsort(keys, kind="stable")
        if self.sort_order == Qt.SortOrder.DescendingOrder:
            order = order[::-1]
        self.rows = order[self.above[order]] if n else order

    def _remap_persistent(self, old_rows: np.ndarray) -> None:
        # Keep the selection on the same instances after a re-sort or a threshold change.
        olds = self.persistentIndexList()
        news = []
        for idx in olds:
            inst = int(old_rows[idx.row()]) if 0 <= idx.row() < len(old_rows) else -1
            row = self.row_of(inst) if inst >= 0 else -1
            news.append(self.index(row, idx.column()) if row >= 0 else QModelIndex())
        self.changePersistentIndexList(olds, news)

    # --- Qt model API ----------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COL_INDEX:
            base |= Qt.ItemFlag.ItemIsUserCheckable
        return base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        i = int(self.rows[index.row()])
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_INDEX:
                return str(i + 1)
            if col == COL_CLASS:
                return self.names[i]
            if col == COL_SCORE:
                return f"{float(self.scores[i]):.3f}"
            return f"{int(self.areas[i]):,}"
        if role == Qt.ItemDataRole.CheckStateRole and col == COL_INDEX:
            return Qt.CheckState.Checked if self.user_visible[i] else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DecorationRole and col == COL_INDEX:
            icon = self._icons.get(i)
            if icon is None:
                icon = self._icons[i] = _swatch(tuple(int(c) for c in self.colors[i]), self.dpr)
            return icon
        if role == Qt.ItemDataRole.TextAlignmentRole and col != COL_CLASS:
            return int(_RIGHT.value)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"#{i + 1} {self.names[i]}  score {float(self.scores[i]):.3f}  area {int(self.areas[i]):,} px"
        return None

    def setData(self, index: Index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole or index.column() != COL_INDEX:
            return False
        i = int(self.rows[index.row()])
        checked = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
        self.visibilityToggled.emit(i, bool(checked))
        return True

    def refresh_checks(self) -> None:
        if len(self.rows):
            self.dataChanged.emit(
                self.index(0, COL_INDEX), self.index(len(self.rows) - 1, COL_INDEX), [Qt.ItemDataRole.CheckStateRole]
            )


class InstanceListDock(QDockWidget):
    instanceSelected = Signal(int)  # index into the prediction's instances; -1 for none
    visibilityToggled = Signal(int, bool)  # index, visible
    instanceActivated = Signal(int)  # double click: centre the canvas on it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Instances", parent)
        self.setObjectName("InstanceListDock")
        self.model = InstanceTableModel(self)
        self.view = QTreeView(self)
        self.view.setModel(self.model)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSortingEnabled(True)
        self.view.header().setSortIndicator(COL_SCORE, Qt.SortOrder.DescendingOrder)
        self.view.header().setStretchLastSection(True)
        self.view.setToolTip("Instances of the current prediction; untick to hide one")
        for col, width in ((COL_INDEX, 64), (COL_CLASS, 110), (COL_SCORE, 60)):
            self.view.setColumnWidth(col, width)
        self.setWidget(self.view)
        self._updating = False
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.model.visibilityToggled.connect(self.visibilityToggled)
        self.view.doubleClicked.connect(lambda idx: self.instanceActivated.emit(int(self.model.rows[idx.row()])))

    def set_instances(
        self,
        class_names: list[str],
        scores: np.ndarray,
        areas: np.ndarray,
        colors: np.ndarray,
        user_visible: np.ndarray,
    ) -> None:
        self._updating = True
        self.model.dpr = self.devicePixelRatioF()
        self.model.set_instances(class_names, scores, areas, colors, user_visible)
        self._updating = False
        self._update_title()

    def set_above_threshold(self, above: np.ndarray) -> None:
        """Hide rows whose score is below the threshold."""
        self._updating = True
        self.model.set_above_threshold(above)
        self._updating = False
        self._update_title()

    def refresh_checks(self) -> None:
        self.model.refresh_checks()

    def select(self, index: int) -> None:
        self._updating = True
        selection = self.view.selectionModel()
        row = self.model.row_of(index) if index >= 0 else -1
        if row >= 0:
            model_index = self.model.index(row, 0)
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            selection.setCurrentIndex(model_index, flags)
            self.view.scrollTo(model_index)
        else:
            selection.clearSelection()
        self._updating = False

    def selected_index(self) -> int:
        rows = self.view.selectionModel().selectedRows()
        return int(self.model.rows[rows[0].row()]) if rows else -1

    def row_rect(self, index: int):
        """The on-screen rectangle of instance ``index``'s row (tests click it)."""
        return self.view.visualRect(self.model.index(self.model.row_of(index), COL_CLASS))

    def is_listed(self, index: int) -> bool:
        return self.model.row_of(index) >= 0

    def is_checked(self, index: int) -> bool:
        return bool(self.model.user_visible[index])

    def visible_row_count(self) -> int:
        return self.model.rowCount()

    def _update_title(self) -> None:
        shown, total = self.model.rowCount(), len(self.model.names)
        self.setWindowTitle(f"Instances ({shown} of {total})" if shown != total else f"Instances ({total})")

    def _on_selection(self, *_args) -> None:
        if not self._updating:
            self.instanceSelected.emit(self.selected_index())
