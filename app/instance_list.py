"""The instance list dock: class, score, area and a visibility checkbox per instance.

Rows are sorted by score (highest first) unless the user sorts by another column; rows below the
score threshold are hidden, like their masks. Selection is synced with the canvas by the window.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QTreeWidget, QTreeWidgetItem, QWidget

INDEX_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("#", "Class", "Score", "Area (px)")


class _Row(QTreeWidgetItem):
    """Sorts numerically on ``SORT_ROLE`` instead of the displayed text."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        col = self.treeWidget().sortColumn() if self.treeWidget() else 0
        a, b = self.data(col, SORT_ROLE), other.data(col, SORT_ROLE)
        if a is None or b is None:
            return super().__lt__(other)
        return a < b


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


class InstanceListDock(QDockWidget):
    instanceSelected = Signal(int)  # index into the prediction's instances; -1 for none
    visibilityToggled = Signal(int, bool)  # index, visible
    instanceActivated = Signal(int)  # double click: centre the canvas on it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Instances", parent)
        self.setObjectName("InstanceListDock")
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(2, Qt.SortOrder.DescendingOrder)
        self.tree.setToolTip("Instances of the current prediction; untick to hide one")
        self.tree.header().setStretchLastSection(True)
        self.setWidget(self.tree)
        self._rows: list[_Row] = []
        self._updating = False
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _c: self.instanceActivated.emit(item.data(0, INDEX_ROLE)))

    def set_instances(
        self,
        class_names: list[str],
        scores: np.ndarray,
        areas: np.ndarray,
        colors: np.ndarray,
        user_visible: np.ndarray,
    ) -> None:
        self._updating = True
        self.tree.setSortingEnabled(False)
        self.tree.clear()
        self._rows = []
        dpr = self.devicePixelRatioF()
        for i, name in enumerate(class_names):
            row = _Row()
            row.setData(0, INDEX_ROLE, i)
            row.setText(0, str(i + 1))
            row.setData(0, SORT_ROLE, i)
            row.setIcon(0, _swatch(tuple(int(c) for c in colors[i]), dpr))
            row.setCheckState(0, Qt.CheckState.Checked if user_visible[i] else Qt.CheckState.Unchecked)
            row.setText(1, name)
            row.setData(1, SORT_ROLE, name)
            row.setText(2, f"{float(scores[i]):.3f}")
            row.setData(2, SORT_ROLE, float(scores[i]))
            row.setText(3, f"{int(areas[i]):,}")
            row.setData(3, SORT_ROLE, int(areas[i]))
            for col in (0, 2, 3):
                row.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._rows.append(row)
        self.tree.addTopLevelItems(self._rows)
        self.tree.setSortingEnabled(True)
        for col in range(3):
            self.tree.resizeColumnToContents(col)
        self._updating = False
        self._update_title()

    def set_above_threshold(self, above: np.ndarray) -> None:
        """Hide rows whose score is below the threshold."""
        for i, row in enumerate(self._rows):
            row.setHidden(not bool(above[i]))
        self._update_title()

    def select(self, index: int) -> None:
        self._updating = True
        self.tree.clearSelection()
        if 0 <= index < len(self._rows):
            row = self._rows[index]
            row.setSelected(True)
            self.tree.setCurrentItem(row)
            self.tree.scrollToItem(row)
        self._updating = False

    def selected_index(self) -> int:
        items = self.tree.selectedItems()
        return int(items[0].data(0, INDEX_ROLE)) if items else -1

    def row(self, index: int) -> QTreeWidgetItem:
        return self._rows[index]

    def visible_row_count(self) -> int:
        return sum(not r.isHidden() for r in self._rows)

    def _update_title(self) -> None:
        shown = self.visible_row_count()
        total = len(self._rows)
        self.setWindowTitle(f"Instances ({shown} of {total})" if shown != total else f"Instances ({total})")

    def _on_selection(self) -> None:
        if not self._updating:
            self.instanceSelected.emit(self.selected_index())

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._updating or column != 0:
            return
        self.visibilityToggled.emit(int(item.data(0, INDEX_ROLE)), item.checkState(0) == Qt.CheckState.Checked)
