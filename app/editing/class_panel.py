"""The "Classes" dock: the project's classes with colour swatch, COCO id, instance count and an
"unused" flag, and buttons for add, rename, merge into, delete, colour and "keep when unused".

Only widgets and signals; ``app.editing.class_ops.ClassManager`` fills it and runs the operations
as undo steps. ``install_class_panel(window)`` adds the dock, a "Class:" picker on the Annotate
toolbar and the manager to a window (calling it again returns the same manager).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
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

from app.icons import swatch

if TYPE_CHECKING:
    from app.editing.class_ops import ClassManager
    from app.main_window import MainWindow

NAME_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("Class", "ID", "Instances", "")
NO_COLOUR_RGB = (200, 200, 200)  # swatch of a class without a colour (its instances get their own)


class _ClassManagerHost(Protocol):
    class_manager: ClassManager  # the attribute install_class_panel adds to the window


class ClassPanel(QDockWidget):
    """Only widgets and signals; ``ClassManager`` fills it and acts on it."""

    addRequested = Signal()
    renameRequested = Signal(str)
    mergeRequested = Signal(str)
    deleteRequested = Signal(str)
    recolourRequested = Signal(str)
    keepToggled = Signal(str, bool)
    useRequested = Signal(str)  # make it the class of new instances

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Classes", parent)
        self.setObjectName("ClassDock")
        body = QWidget(self)
        self.tree = QTreeWidget(body)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setToolTip("The project's classes. Double click: use for new instances.")
        self.tree.header().setStretchLastSection(True)
        self.buttons: dict[str, QToolButton] = {}
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        for key, text, tip in (
            ("add", "Add\u2026", "Add a class"),
            ("rename", "Rename\u2026", "Rename the class (its COCO id and instances stay)"),
            ("merge", "Merge into\u2026", "Move its instances to another class and remove it"),
            ("delete", "Delete\u2026", "Remove the class (with its instances, after asking, if it has any)"),
            ("recolour", "Colour\u2026", "Draw the class's instances in a colour of your choice"),
        ):
            button = QToolButton(body)
            button.setText(text)
            button.setToolTip(tip)
            row.addWidget(button)
            self.buttons[key] = button
        row.addStretch(1)
        self.keep_box = QCheckBox("Keep when unused", body)
        self.keep_box.setToolTip("Keep this class in exports and training even while no instance uses it")
        self.summary = QLabel(body)
        self.summary.setEnabled(False)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        layout.addWidget(self.keep_box)
        layout.addWidget(self.summary)
        self.setWidget(body)
        self._updating = False

        self.buttons["add"].clicked.connect(self.addRequested.emit)
        for key, signal in (
            ("rename", self.renameRequested),
            ("merge", self.mergeRequested),
            ("delete", self.deleteRequested),
            ("recolour", self.recolourRequested),
        ):
            self.buttons[key].clicked.connect(lambda _c=False, s=signal: self._emit_selected(s))
        self.keep_box.toggled.connect(self._on_keep)
        self.tree.itemSelectionChanged.connect(self._sync_buttons)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self.useRequested.emit(item.data(0, NAME_ROLE)))
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self._sync_buttons()

    # --- content -------------------------------------------------------------------------------------
    def set_classes(self, rows: list[tuple], current: str | None) -> None:
        """``rows``: (name, coco id, instance count, colour '#rrggbb' or '', keep) per class."""
        selected = self.selected_name()
        self._updating = True
        self.tree.clear()
        dpr = self.devicePixelRatioF()
        unused = 0
        for name, cid, count, colour, keep in rows:
            item = QTreeWidgetItem()
            item.setData(0, NAME_ROLE, name)
            item.setText(0, name)
            rgb = NO_COLOUR_RGB
            if colour:
                qc = QColor(colour)
                rgb = (qc.red(), qc.green(), qc.blue())
            item.setIcon(0, swatch(rgb, dpr))
            item.setToolTip(0, colour or "no colour of its own: each instance gets its own colour")
            item.setText(1, str(cid))
            item.setText(2, f"{count:,}")
            for col in (1, 2):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if count == 0:
                unused += 1
                item.setText(3, "unused, kept" if keep else "unused")
                item.setToolTip(
                    3,
                    "Kept in exports and training although unused"
                    if keep
                    else "No instance uses it: left out of exports and training (tick 'Keep when unused' to keep it)",
                )
                font = item.font(3)
                font.setItalic(True)
                item.setFont(3, font)
                if not keep:
                    item.setForeground(0, QColor(128, 128, 128))
            elif keep:
                item.setText(3, "kept")
            if name == current:
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
                item.setToolTip(0, f"{item.toolTip(0)}\nnew instances get this class")
            self.tree.addTopLevelItem(item)
        for col in range(3):
            self.tree.resizeColumnToContents(col)
        self._updating = False
        self.select(selected)
        n = len(rows)
        self.summary.setText(f"{n} class{'es' if n != 1 else ''}" + (f", {unused} unused" if unused else ""))
        self.setWindowTitle(f"Classes ({n})" if n else "Classes")
        self._sync_buttons()

    def select(self, name: str | None) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None and item.data(0, NAME_ROLE) == name:
                self.tree.setCurrentItem(item)
                return

    def selected_name(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, NAME_ROLE) if items else None

    def row_texts(self) -> dict[str, list[str]]:
        """Column texts by class name (for tests and the screenshot check)."""
        out = {}
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None:  # always, for i < topLevelItemCount()
                out[item.data(0, NAME_ROLE)] = [item.text(c) for c in range(len(COLUMNS))]
        return out

    # --- internals -------------------------------------------------------------------------------------
    def _emit_selected(self, signal) -> None:
        name = self.selected_name()
        if name is not None:
            signal.emit(name)

    def _on_keep(self, on: bool) -> None:
        name = self.selected_name()
        if not self._updating and name is not None:
            self.keepToggled.emit(name, on)

    def _sync_buttons(self) -> None:
        name = self.selected_name()
        for key in ("rename", "merge", "delete", "recolour"):
            self.buttons[key].setEnabled(name is not None)
        self.buttons["merge"].setEnabled(name is not None and self.tree.topLevelItemCount() > 1)
        self.keep_box.setEnabled(name is not None)
        item = self.tree.currentItem()
        self._updating = True
        self.keep_box.setChecked(bool(item is not None and item.text(3) in ("kept", "unused, kept")))
        self._updating = False

    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is None:
            return
        name = item.data(0, NAME_ROLE)
        menu = QMenu(self)
        menu.addAction("Use for New Instances", lambda: self.useRequested.emit(name))
        menu.addSeparator()
        menu.addAction("Rename\u2026", lambda: self.renameRequested.emit(name))
        merge = menu.addAction("Merge into\u2026", lambda: self.mergeRequested.emit(name))
        merge.setEnabled(self.tree.topLevelItemCount() > 1)
        menu.addAction("Colour\u2026", lambda: self.recolourRequested.emit(name))
        menu.addSeparator()
        menu.addAction("Delete\u2026", lambda: self.deleteRequested.emit(name))
        menu.exec(self.tree.viewport().mapToGlobal(pos))


def install_class_panel(window: MainWindow) -> ClassManager:
    """Add the Classes dock and the toolbar class picker to a window with editing installed."""
    existing = getattr(window, "class_manager", None)
    if existing is not None:
        return existing
    from app.editing import install_editing
    from app.editing.class_ops import ClassManager

    manager = ClassManager(window, install_editing(window))
    cast(_ClassManagerHost, window).class_manager = manager
    return manager
