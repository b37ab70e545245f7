"""The "Annotations" dock: the current image's annotated instances and the class for new ones.

Rows: id (with the instance's colour), class, area and source (prediction score shown). The
selection is synced with the canvas by the controller. Double click or C relabels; the context
menu offers relabel, fill holes and delete.

The "New:" picker always shows the class the next new instance gets; with none chosen yet it says
so (and drawing asks), it never falls back to the first class. labelme's ``__ignore__`` is an
ignore region, not a class, so it is never offered.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.editing.layer import annotation_rgb
from app.icons import swatch
from engine.annotations import IGNORE, AnnotatedInstance

ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("#", "Class", "Area (px)", "Source")
NO_CLASS_TEXT = "choose a class\u2026"


class _Row(QTreeWidgetItem):
    def __lt__(self, other: QTreeWidgetItem) -> bool:
        col = self.treeWidget().sortColumn() if self.treeWidget() else 0
        a, b = self.data(col, SORT_ROLE), other.data(col, SORT_ROLE)
        if a is None or b is None:
            return super().__lt__(other)
        return a < b


def source_text(inst: AnnotatedInstance) -> str:
    if inst.source == "prediction" and inst.score is not None:
        return f"prediction {inst.score:.2f}"
    return inst.source


class AnnotationDock(QDockWidget):
    instanceSelected = Signal(int)  # instance id, -1 for none
    relabelRequested = Signal(int)
    deleteRequested = Signal(int)
    fillHolesRequested = Signal(int)
    currentClassChanged = Signal(str)
    addClassRequested = Signal()
    classesShown = Signal(list, str)  # class names offered, the current one ('' for none)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Annotations", parent)
        self.setObjectName("AnnotationDock")
        body = QWidget(self)
        self.class_combo = QComboBox(body)
        self.class_combo.setToolTip("Class of new instances (a brush stroke or polygon with nothing selected)")
        self.class_combo.setMinimumContentsLength(10)
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_combo.setPlaceholderText(NO_CLASS_TEXT)
        self.class_colours: dict[str, tuple[int, int, int]] = {}
        self.add_class_button = QToolButton(body)
        self.add_class_button.setText("+")
        self.add_class_button.setToolTip("Add a class to the project's class list")
        self.tree = QTreeWidget(body)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setToolTip("Annotated instances of this image (double click to relabel)")
        self.tree.header().setStretchLastSection(True)
        self.status = QLabel(body)
        self.status.setEnabled(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("New:", body))
        row.addWidget(self.class_combo, 1)
        row.addWidget(self.add_class_button)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.status)
        self.setWidget(body)
        self._rows: dict[int, _Row] = {}
        self._areas: dict[int, tuple[AnnotatedInstance, int]] = {}  # by id; valid while the object is the same
        self._updating = False
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.tree.itemDoubleClicked.connect(lambda item, _c: self.relabelRequested.emit(int(item.data(0, ID_ROLE))))
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.class_combo.currentTextChanged.connect(self._on_class_changed)
        self.add_class_button.clicked.connect(self.addClassRequested.emit)

    # --- content -----------------------------------------------------------------------------
    def set_instances(self, instances: Sequence[AnnotatedInstance], selected: int = -1) -> None:
        self._updating = True
        self.tree.setSortingEnabled(False)
        self.tree.clear()
        self._rows = {}
        dpr = self.devicePixelRatioF()
        for inst in instances:
            row = _Row()
            row.setData(0, ID_ROLE, inst.id)
            row.setText(0, str(inst.id))
            row.setData(0, SORT_ROLE, inst.id)
            rgb = self.class_colours.get(inst.category) or annotation_rgb(inst.id)
            row.setIcon(0, swatch(rgb, dpr, radius=0))
            row.setText(1, inst.category)
            row.setData(1, SORT_ROLE, inst.category)
            area = self._area(inst)
            row.setText(2, f"{area:,}")
            row.setData(2, SORT_ROLE, area)
            row.setText(3, source_text(inst))
            row.setData(3, SORT_ROLE, source_text(inst))
            for col in (0, 2):
                row.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if inst.polygons:
                row.setToolTip(3, "drawn as a polygon (kept as a polygon on export)")
            self._rows[inst.id] = row
        self.tree.addTopLevelItems(list(self._rows.values()))
        self.tree.setSortingEnabled(True)
        for col in range(3):
            self.tree.resizeColumnToContents(col)
        self._updating = False
        self.select(selected)
        self.setWindowTitle(f"Annotations ({len(instances)})" if instances else "Annotations")

    def _area(self, inst: AnnotatedInstance) -> int:
        cached = self._areas.get(inst.id)
        if cached is None or cached[0] is not inst:
            cached = (inst, int(np.count_nonzero(inst.mask.bits)))
            self._areas[inst.id] = cached
        return cached[1]

    def set_classes(self, names: list[str], current: str | None) -> None:
        """Offer ``names`` (never ``__ignore__``); show ``current``, or the placeholder for none."""
        names = [n for n in names if n != IGNORE]
        dpr = self.devicePixelRatioF()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for name in names:
            rgb = self.class_colours.get(name)
            if rgb is not None:
                self.class_combo.addItem(swatch(rgb, dpr), name)
            else:
                self.class_combo.addItem(name)
        self.class_combo.setCurrentIndex(names.index(current) if current in names else -1)
        self.class_combo.blockSignals(False)
        self.classesShown.emit(names, current if current in names else "")

    def current_class(self) -> str | None:
        """The class the picker shows (None: the placeholder, no class chosen)."""
        return self.class_combo.currentText() if self.class_combo.currentIndex() >= 0 else None

    def select(self, instance_id: int) -> None:
        self._updating = True
        self.tree.clearSelection()
        row = self._rows.get(instance_id)
        if row is not None:
            row.setSelected(True)
            self.tree.setCurrentItem(row)
            self.tree.scrollToItem(row)
        self._updating = False

    def selected_id(self) -> int:
        items = self.tree.selectedItems()
        return int(items[0].data(0, ID_ROLE)) if items else -1

    def row(self, instance_id: int) -> QTreeWidgetItem | None:
        return self._rows.get(instance_id)

    def row_count(self) -> int:
        return len(self._rows)

    # --- internals -------------------------------------------------------------------------------
    def _on_selection(self) -> None:
        if not self._updating:
            self.instanceSelected.emit(self.selected_id())

    def _on_class_changed(self, name: str) -> None:
        if name:
            self.currentClassChanged.emit(name)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is None:
            return
        inst_id = int(item.data(0, ID_ROLE))
        menu = QMenu(self)
        menu.addAction("Relabel\u2026", lambda: self.relabelRequested.emit(inst_id))
        menu.addAction("Fill Holes", lambda: self.fillHolesRequested.emit(inst_id))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.deleteRequested.emit(inst_id))
        menu.exec(self.tree.viewport().mapToGlobal(pos))
