"""The instance list dock: class, score, area and a visibility checkbox per instance.

A QStandardItemModel, filled once per prediction: painting and sorting (on numeric sort-role
values) then run entirely in C++. A Python table model would be called back a thousand times per
repaint (every role of every visible cell), which measured 20-60 ms per frame. Rows are sorted by
score (highest first) unless the user clicks another column; rows below the score threshold are
hidden. Selection is synced with the canvas by the window.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QBrush, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QTreeView, QWidget

from app.icons import swatch

COLUMNS = ("#", "Class", "Score", "Area (px)")
COL_INDEX, COL_CLASS, COL_SCORE, COL_AREA = range(4)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # numeric sort key; in column 0 it is the instance index


_REVIEW_TIPS = {"pending": "", "rejected": "rejected; tick to review it again", "accepted": "accepted: an annotation"}


class InstanceListDock(QDockWidget):
    instanceSelected = Signal(int)  # index into the prediction's instances; -1 for none
    visibilityToggled = Signal(int, bool)  # index, visible
    instanceActivated = Signal(int)  # double click: centre the canvas on it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Instances", parent)
        self.setObjectName("InstanceListDock")
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.model.setSortRole(SORT_ROLE)
        self.view = QTreeView(self)
        self.view.setModel(self.model)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
        self.view.header().setStretchLastSection(True)
        self.view.setToolTip("Predicted instances; untick to reject one (ticking a rejected one puts it back)")
        for col, width in ((COL_INDEX, 64), (COL_CLASS, 110), (COL_SCORE, 60)):
            self.view.setColumnWidth(col, width)
        self.setWidget(self.view)
        self._first: list[QStandardItem] = []  # column-0 item of each instance
        self._user_visible = np.zeros(0, bool)
        self._updating = False
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.model.itemChanged.connect(self._on_item_changed)
        self.view.doubleClicked.connect(self._on_double_click)

    def set_instances(
        self,
        class_names: list[str],
        scores: np.ndarray,
        areas: np.ndarray,
        colors: np.ndarray,
        user_visible: np.ndarray,
    ) -> None:
        """Fill the list; ``user_visible`` is the window's per-instance show/hide array (read, not copied)."""
        self._updating = True
        self.view.setSortingEnabled(False)  # one sort at the end, not one per row
        self.model.removeRows(0, self.model.rowCount())
        self._user_visible = user_visible
        self._first = []
        dpr = self.devicePixelRatioF()
        checked, unchecked = Qt.CheckState.Checked, Qt.CheckState.Unchecked
        rgbs = np.asarray(colors).reshape(-1, 3).tolist()
        # Few calls per row: this runs on the GUI thread when a result arrives. Editing is off at
        # the view, so the items keep their default flags; column 0's sort value is the index.
        for i, name in enumerate(class_names):
            score, area = float(scores[i]), int(areas[i])
            first = QStandardItem(swatch(tuple(rgbs[i]), dpr), str(i + 1))
            first.setData(i, SORT_ROLE)
            first.setCheckable(True)
            first.setCheckState(checked if user_visible[i] else unchecked)
            first.setTextAlignment(_RIGHT)
            cls = QStandardItem(name)
            cls.setData(name, SORT_ROLE)
            sc = QStandardItem(f"{score:.3f}")
            sc.setData(score, SORT_ROLE)
            sc.setTextAlignment(_RIGHT)
            ar = QStandardItem(f"{area:,}")
            ar.setData(area, SORT_ROLE)
            ar.setTextAlignment(_RIGHT)
            self.model.appendRow([first, cls, sc, ar])
            self._first.append(first)
        self.view.setSortingEnabled(True)  # sorts by the header's current column and order
        self._updating = False
        self._update_title()

    def set_visible_flags(self, visible: np.ndarray) -> None:
        """New check box states (the predictions still to review)."""
        self._user_visible = visible
        self.refresh_checks()

    def set_review_states(self, states: list[str]) -> None:
        """Reviewed predictions are listed dimmed, with their state ('accepted', 'rejected')."""
        dim = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        self._updating = True
        for i, first in enumerate(self._first[: len(states)]):
            cls = self.model.item(first.row(), COL_CLASS)
            name = cls.data(SORT_ROLE)
            state = states[i]
            cls.setText(name if state == "pending" else f"{name} ({state})")
            cls.setToolTip(_REVIEW_TIPS.get(state, state))
            for col in range(self.model.columnCount()):
                item = self.model.item(first.row(), col)
                item.setData(None if state == "pending" else QBrush(dim), Qt.ItemDataRole.ForegroundRole)
        self._updating = False

    def set_above_threshold(self, above: np.ndarray) -> None:
        """Hide rows whose score is below the threshold."""
        root = QModelIndex()
        for i, first in enumerate(self._first):
            self.view.setRowHidden(first.row(), root, not bool(above[i]))
        self._update_title()

    def refresh_checks(self) -> None:
        """Re-read the check boxes from the window's visibility array."""
        self._updating = True
        for i, first in enumerate(self._first):
            want = Qt.CheckState.Checked if self._user_visible[i] else Qt.CheckState.Unchecked
            if first.checkState() != want:
                first.setCheckState(want)
        self._updating = False

    def select(self, index: int) -> None:
        self._updating = True
        selection = self.view.selectionModel()
        if 0 <= index < len(self._first):
            model_index = self._first[index].index()
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            selection.setCurrentIndex(model_index, flags)
            self.view.scrollTo(model_index)
        else:
            selection.clearSelection()
        self._updating = False

    def selected_index(self) -> int:
        rows = self.view.selectionModel().selectedRows()
        return int(self.model.item(rows[0].row(), 0).data(SORT_ROLE)) if rows else -1

    def row_rect(self, index: int) -> QRect:
        """The on-screen rectangle of instance ``index``'s row (tests click it)."""
        return self.view.visualRect(self.model.index(self._first[index].row(), COL_CLASS))

    def item(self, index: int) -> QStandardItem:
        """The row's first item (number, colour, visibility check box) of instance ``index``."""
        return self._first[index]

    def is_listed(self, index: int) -> bool:
        return not self.view.isRowHidden(self._first[index].row(), QModelIndex())

    def is_checked(self, index: int) -> bool:
        return self._first[index].checkState() == Qt.CheckState.Checked

    def visible_row_count(self) -> int:
        return sum(self.is_listed(i) for i in range(len(self._first)))

    def _update_title(self) -> None:
        shown, total = self.visible_row_count(), len(self._first)
        self.setWindowTitle(f"Instances ({shown} of {total})" if shown != total else f"Instances ({total})")

    def _on_selection(self, *_args) -> None:
        if not self._updating:
            self.instanceSelected.emit(self.selected_index())

    def _on_item_changed(self, item: QStandardItem) -> None:
        if self._updating or item.column() != COL_INDEX:
            return
        self.visibilityToggled.emit(int(item.data(SORT_ROLE)), item.checkState() == Qt.CheckState.Checked)

    def _on_double_click(self, index: QModelIndex) -> None:
        self.instanceActivated.emit(int(self.model.item(index.row(), 0).data(SORT_ROLE)))
