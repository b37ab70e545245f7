"""The one instance list: the current image's predictions (with their review state) and annotations.

Model/view: ``InstanceListModel`` holds one row per item of the store's data for the image on
screen (the active run's predictions, then the annotations), each named by its selection key
(``app.selection``); ``InstanceFilterProxy`` filters it (All / Annotations / Pending predictions /
Reviewed, and predictions under the score threshold) and sorts it; one ``QTreeView`` shows it.

The model is a QStandardItemModel filled once per change of either part: painting and sorting (on
numeric sort-role values) then run in C++. A Python ``data()`` would be called back a thousand
times per repaint (every role of every visible cell), which measured 20-60 ms per frame; the proxy's
Python filter runs once per row only when the filter, the threshold or a row changes.

Pending predictions are listed in italics with a check box (untick: reject; tick a rejected one:
review it again); reviewed ones are dimmed with their state; annotations are plain rows with their
source. The selection is the window's one selection (``select(key)`` / ``itemSelected``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QFont, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMenu,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.icons import swatch
from app.selection import ANNOTATION, PREDICTION, ItemKey
from engine.annotations import AnnotatedInstance

COLUMNS = ("#", "Class", "Score", "Kind", "State", "Area (px)")
COL_INDEX, COL_CLASS, COL_SCORE, COL_KIND, COL_STATE, COL_AREA = range(len(COLUMNS))
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # numeric sort key
KEY_ROLE = Qt.ItemDataRole.UserRole + 3  # column 0: the row's selection key
STATE_ROLE = Qt.ItemDataRole.UserRole + 4  # column 0: pending / rejected / accepted / annotation
SCORE_ROLE = Qt.ItemDataRole.UserRole + 5  # column 0: the prediction's score (annotations: None)
ANNOTATION_SCORE_SORT = 2.0  # annotations sort above every score: what the user made is certain

FILTER_ALL, FILTER_ANNOTATIONS, FILTER_PENDING, FILTER_REVIEWED = "all", "annotations", "pending", "reviewed"
FILTERS = (
    (FILTER_ALL, "All"),
    (FILTER_ANNOTATIONS, "Annotations"),
    (FILTER_PENDING, "Pending predictions"),
    (FILTER_REVIEWED, "Reviewed predictions"),
)
_STATE_TEXT = {"pending": "pending", "rejected": "rejected", "accepted": "accepted"}
_STATE_TIPS = {
    "pending": "a prediction still to review: untick to reject it, A accepts it",
    "rejected": "rejected; tick to review it again",
    "accepted": "accepted: it is an annotation now",
}


def source_text(inst: AnnotatedInstance) -> str:
    if inst.source == "prediction" and inst.score is not None:
        return f"prediction {inst.score:.2f}"
    return inst.source


def _in_columns(first, kind, cls, score, area, state) -> list[QStandardItem]:
    row = [first] * len(COLUMNS)
    row[COL_KIND], row[COL_CLASS], row[COL_SCORE], row[COL_AREA], row[COL_STATE] = kind, cls, score, area, state
    return row


class InstanceListModel(QStandardItemModel):
    """Rows of both kinds, each part replaced on its own; ``row_item(key)`` finds a row."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setSortRole(SORT_ROLE)
        self._first: dict[ItemKey, QStandardItem] = {}  # key -> the row's column-0 item
        self._count = {PREDICTION: 0, ANNOTATION: 0}
        self._areas: dict[int, tuple[AnnotatedInstance, int]] = {}  # by id; valid while the object is the same
        self.italic = QFont()
        self.italic.setItalic(True)
        self.dim = QBrush()

    def row_item(self, key: ItemKey) -> QStandardItem | None:
        return self._first.get(key)

    def count(self, kind: str) -> int:
        return self._count[kind]

    def _replace(self, kind: str, rows: list[list[QStandardItem]]) -> None:
        for key in [k for k in self._first if k[0] == kind]:
            del self._first[key]
        # Source order: predictions first, then annotations (the view sorts; the proxy filters).
        start = 0 if kind == PREDICTION else self._count[PREDICTION]
        if self._count[kind]:
            self.removeRows(start, self._count[kind])
        for offset, row in enumerate(rows):
            self.insertRow(start + offset, row)
            self._first[row[0].data(KEY_ROLE)] = row[0]
        self._count[kind] = len(rows)

    def set_predictions(
        self,
        class_names: Sequence[str],
        scores: np.ndarray,
        areas: np.ndarray,
        colors: np.ndarray,
        states: Sequence[str],
        dpr: float = 1.0,
    ) -> None:
        rgbs = np.asarray(colors).reshape(-1, 3).tolist()
        rows = []
        for i, name in enumerate(class_names):
            score, area = float(scores[i]), int(areas[i])
            first = QStandardItem(swatch(tuple(rgbs[i]), dpr), str(i + 1))
            first.setData(i, SORT_ROLE)
            first.setData((PREDICTION, i), KEY_ROLE)
            first.setData(score, SCORE_ROLE)
            first.setCheckable(True)
            first.setTextAlignment(_RIGHT)
            kind = QStandardItem("prediction")
            kind.setData(0, SORT_ROLE)
            cls = QStandardItem(name)
            cls.setData(name, SORT_ROLE)
            sc = QStandardItem(f"{score:.3f}")
            sc.setData(score, SORT_ROLE)
            sc.setTextAlignment(_RIGHT)
            ar = QStandardItem(f"{area:,}")
            ar.setData(area, SORT_ROLE)
            ar.setTextAlignment(_RIGHT)
            state = QStandardItem()
            row = _in_columns(first, kind, cls, sc, ar, state)
            self._set_state(row, states[i] if i < len(states) else "pending")
            rows.append(row)
        self._replace(PREDICTION, rows)

    def set_review_states(self, states: Sequence[str]) -> None:
        """New review states of the predictions (index order), without rebuilding their rows."""
        for i, state in enumerate(states):
            first = self._first.get((PREDICTION, i))
            if first is not None and first.data(STATE_ROLE) != state:
                self._set_state([self.item(first.row(), c) for c in range(len(COLUMNS))], state)

    def _set_state(self, row: list[QStandardItem], state: str) -> None:
        row[0].setData(state, STATE_ROLE)
        row[0].setCheckState(Qt.CheckState.Checked if state == "pending" else Qt.CheckState.Unchecked)
        row[COL_STATE].setText(_STATE_TEXT.get(state, state))
        row[COL_STATE].setData(state, SORT_ROLE)
        tip = _STATE_TIPS.get(state, state)
        pending = state == "pending"
        for item in row:
            item.setToolTip(tip)
            # Pending predictions in italics; reviewed ones dimmed: neither looks like an annotation.
            item.setData(self.italic if pending else None, Qt.ItemDataRole.FontRole)
            item.setData(None if pending else self.dim, Qt.ItemDataRole.ForegroundRole)

    def set_annotations(
        self, instances: Sequence[AnnotatedInstance], rgb: Callable[[AnnotatedInstance], tuple], dpr: float = 1.0
    ) -> None:
        rows = []
        for inst in instances:
            first = QStandardItem(swatch(rgb(inst), dpr, radius=0), str(inst.id))
            first.setData(1_000_000 + inst.id, SORT_ROLE)  # after the predictions when sorted by number
            first.setData((ANNOTATION, inst.id), KEY_ROLE)
            first.setData("annotation", STATE_ROLE)
            first.setData(None, SCORE_ROLE)
            first.setTextAlignment(_RIGHT)
            kind = QStandardItem("annotation")
            kind.setData(1, SORT_ROLE)
            cls = QStandardItem(inst.category)
            cls.setData(inst.category, SORT_ROLE)
            sc = QStandardItem("")
            sc.setData(ANNOTATION_SCORE_SORT, SORT_ROLE)
            area = self._area(inst)
            ar = QStandardItem(f"{area:,}")
            ar.setData(area, SORT_ROLE)
            ar.setTextAlignment(_RIGHT)
            source = source_text(inst)
            state = QStandardItem(source)
            state.setData(source, SORT_ROLE)
            if inst.polygons:
                state.setToolTip("drawn as a polygon (kept as a polygon on export)")
            rows.append(_in_columns(first, kind, cls, sc, ar, state))
        self._replace(ANNOTATION, rows)

    def _area(self, inst: AnnotatedInstance) -> int:
        cached = self._areas.get(inst.id)
        if cached is None or cached[0] is not inst:
            cached = (inst, int(np.count_nonzero(inst.mask.bits)))
            self._areas[inst.id] = cached
        return cached[1]


class InstanceFilterProxy(QSortFilterProxyModel):
    """Which rows show: the chosen kind/state, and no prediction under the score threshold."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.mode = FILTER_ALL
        self.threshold = 0.0

    def set_mode(self, mode: str) -> None:
        if mode not in dict(FILTERS):
            raise ValueError(f"unknown filter {mode!r}; one of {[m for m, _ in FILTERS]}")
        self.beginFilterChange()
        self.mode = mode
        self.endFilterChange()

    def set_threshold(self, threshold: float) -> None:
        self.beginFilterChange()
        self.threshold = float(threshold)
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        first = self.sourceModel().index(source_row, 0, source_parent)
        state = first.data(STATE_ROLE)
        if state == "annotation":
            return self.mode in (FILTER_ALL, FILTER_ANNOTATIONS)
        score = first.data(SCORE_ROLE)
        if score is not None and score < self.threshold:
            return False
        if self.mode == FILTER_PENDING:
            return state == "pending"
        if self.mode == FILTER_REVIEWED:
            return state in ("accepted", "rejected")
        return self.mode == FILTER_ALL


class InstanceListDock(QDockWidget):
    itemSelected = Signal(object)  # the selected row's key, None for none
    visibilityToggled = Signal(int, bool)  # prediction index, ticked (pending) or not (rejected)
    itemActivated = Signal(object)  # double click: the row's key
    relabelRequested = Signal(int)  # annotation id
    deleteRequested = Signal(int)
    fillHolesRequested = Signal(int)
    acceptRequested = Signal(int)  # prediction index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Instances", parent)
        self.setObjectName("InstanceListDock")
        body = QWidget(self)
        self.model = InstanceListModel(self)
        self.model.dim = QBrush(self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        self.proxy = InstanceFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.filter_combo = QComboBox(body)
        for mode, text in FILTERS:
            self.filter_combo.addItem(text, mode)
        self.filter_combo.setToolTip("Which instances the list shows")
        # Sized by a short text, not its longest item, so the dock can stay narrow.
        self.filter_combo.setMinimumContentsLength(8)
        self.filter_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.view = QTreeView(body)
        self.view.setModel(self.proxy)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
        self.view.header().setStretchLastSection(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.setToolTip(
            "Predictions (italic: still to review; untick to reject) and annotations of this image; "
            "double click an annotation to relabel it"
        )
        for col, width in ((COL_INDEX, 62), (COL_CLASS, 80), (COL_SCORE, 48), (COL_KIND, 74), (COL_STATE, 64)):
            self.view.setColumnWidth(col, width)
        filter_row = QHBoxLayout()
        filter_row.setContentsMargins(0, 0, 0, 0)
        filter_row.addWidget(QLabel("Show:", body))
        filter_row.addWidget(self.filter_combo, 1)
        self._layout = QVBoxLayout(body)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.addLayout(filter_row)
        self._layout.addWidget(self.view, 1)
        self.setWidget(body)
        self._updating = False
        self._selected: ItemKey | None = None
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.model.itemChanged.connect(self._on_item_changed)
        self.view.doubleClicked.connect(self._on_double_click)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.filter_combo.currentIndexChanged.connect(lambda _i: self.set_filter(self.filter_combo.currentData()))
        self._update_title()

    # --- extension: rows of widgets above and below the list (the editing class picker, status) ---
    def add_header(self, widget: QWidget) -> None:
        self._layout.insertWidget(0, widget)

    def add_footer(self, widget: QWidget) -> None:
        self._layout.addWidget(widget)

    # --- content ---------------------------------------------------------------------------------
    def set_predictions(
        self, class_names: list[str], scores: np.ndarray, areas: np.ndarray, colors: np.ndarray, states: list[str]
    ) -> None:
        """The shown prediction's rows (index order); ``states``: each one's review state."""
        self._fill(lambda: self.model.set_predictions(class_names, scores, areas, colors, states, self._dpr()))

    def set_annotations(
        self, instances: Sequence[AnnotatedInstance], rgb: Callable[[AnnotatedInstance], tuple]
    ) -> None:
        self._fill(lambda: self.model.set_annotations(instances, rgb, self._dpr()))

    def _fill(self, replace: Callable[[], None]) -> None:
        self._updating = True
        self.view.setSortingEnabled(False)  # one sort at the end, not one per row
        replace()
        self.view.setSortingEnabled(True)  # sorts by the header's current column and order
        self._updating = False
        self._reselect()
        self._update_title()

    def set_review_states(self, states: list[str]) -> None:
        """Reviewed predictions are listed dimmed, with their state ('accepted', 'rejected')."""
        self._updating = True
        self.model.set_review_states(states)
        self._updating = False
        self._update_title()

    def set_threshold(self, threshold: float) -> None:
        """Hide prediction rows whose score is below the threshold."""
        if threshold != self.proxy.threshold:
            self._updating = True
            self.proxy.set_threshold(threshold)
            self._updating = False
            self._reselect()
            self._update_title()

    def set_filter(self, mode: str) -> None:
        """All / annotations / pending predictions / reviewed predictions (``FILTERS``)."""
        if mode != self.proxy.mode:
            self._updating = True
            self.proxy.set_mode(mode)
            self._updating = False
        i = self.filter_combo.findData(mode)
        if i != self.filter_combo.currentIndex():
            self.filter_combo.setCurrentIndex(i)
        self._reselect()
        self._update_title()

    # --- selection ------------------------------------------------------------------------------
    def select(self, key: ItemKey | None) -> None:
        """Show ``key`` selected (nothing when its row is filtered out); emits nothing."""
        self._selected = key
        self._reselect()

    def _reselect(self) -> None:
        self._updating = True
        selection = self.view.selectionModel()
        index = self._proxy_index(self._selected)
        if index.isValid():
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            selection.setCurrentIndex(index, flags)
            self.view.scrollTo(index)
        else:
            selection.clearSelection()
        self._updating = False

    def _proxy_index(self, key: ItemKey | None, column: int = 0) -> QModelIndex:
        first = self.model.row_item(key) if key is not None else None
        if first is None:
            return QModelIndex()
        return self.proxy.mapFromSource(self.model.index(first.row(), column))

    def selected_key(self) -> ItemKey | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].data(KEY_ROLE) if rows else None

    # --- queries (tests and the window) ----------------------------------------------------------
    def row_rect(self, key: ItemKey) -> QRect:
        """The on-screen rectangle of ``key``'s row (tests click it)."""
        return self.view.visualRect(self._proxy_index(key, COL_CLASS))

    def item(self, key: ItemKey) -> QStandardItem:
        """The row's first item (number, colour, check box of a prediction)."""
        first = self.model.row_item(key)
        if first is None:
            raise KeyError(f"no row for {key}")
        return first

    def text(self, key: ItemKey, column: int) -> str:
        return self.model.item(self.item(key).row(), column).text()

    def is_listed(self, key: ItemKey) -> bool:
        return self._proxy_index(key).isValid()

    def is_checked(self, key: ItemKey) -> bool:
        return self.item(key).checkState() == Qt.CheckState.Checked

    def visible_row_count(self) -> int:
        return self.proxy.rowCount()

    def listed_keys(self) -> list[ItemKey]:
        """Keys of the listed rows, in the view's order."""
        return [self.proxy.index(r, 0).data(KEY_ROLE) for r in range(self.proxy.rowCount())]

    def _dpr(self) -> float:
        return self.devicePixelRatioF()

    def _update_title(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.setWindowTitle(f"Instances ({shown} of {total})" if shown != total else f"Instances ({total})")

    # --- internals ---------------------------------------------------------------------------------
    def _on_selection(self, *_args) -> None:
        if not self._updating:
            self._selected = self.selected_key()
            self.itemSelected.emit(self._selected)

    def _on_item_changed(self, item: QStandardItem) -> None:
        if self._updating or item.column() != COL_INDEX:
            return
        key = item.data(KEY_ROLE)
        if key is not None and key[0] == PREDICTION and item.isCheckable():
            self.visibilityToggled.emit(key[1], item.checkState() == Qt.CheckState.Checked)

    def _on_double_click(self, index: QModelIndex) -> None:
        key = index.siblingAtColumn(0).data(KEY_ROLE)
        if key is not None:
            self.itemActivated.emit(key)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        key = index.siblingAtColumn(0).data(KEY_ROLE) if index.isValid() else None
        if key is None:
            return
        menu = QMenu(self)
        if key[0] == ANNOTATION:
            menu.addAction("Relabel\u2026", lambda: self.relabelRequested.emit(key[1]))
            menu.addAction("Fill Holes", lambda: self.fillHolesRequested.emit(key[1]))
            menu.addSeparator()
            menu.addAction("Delete", lambda: self.deleteRequested.emit(key[1]))
        else:
            state = index.siblingAtColumn(0).data(STATE_ROLE)
            accept = menu.addAction("Accept as Annotation", lambda: self.acceptRequested.emit(key[1]))
            accept.setEnabled(state == "pending")
            if state == "rejected":
                menu.addAction("Review Again", lambda: self.visibilityToggled.emit(key[1], True))
            elif state == "pending":
                menu.addAction("Reject", lambda: self.visibilityToggled.emit(key[1], False))
        menu.exec(self.view.viewport().mapToGlobal(pos))
