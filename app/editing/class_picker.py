"""A class picker with type-to-search: typing filters the list, Enter takes the best match.

Classes whose name starts with the typed text come first, then those containing it. Text that
names no class offers "New class ..." so the project's class list grows from the same place.
"""

from __future__ import annotations

from typing import cast

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.annotations import IGNORE

NAME_ROLE = Qt.ItemDataRole.UserRole + 1


def rank_classes(names: list[str], text: str) -> list[str]:
    """Names matching ``text`` (case-insensitive): exact, then prefix, then substring matches."""
    needle = text.strip().casefold()
    if not needle:
        return list(names)
    exact = [n for n in names if n.casefold() == needle]
    prefix = [n for n in names if n.casefold().startswith(needle) and n not in exact]
    inner = [n for n in names if needle in n.casefold() and n not in exact and n not in prefix]
    return exact + prefix + inner


class ClassPickerDialog(QDialog):
    def __init__(
        self,
        parent: QWidget | None,
        names: list[str],
        current: str | None = None,
        title: str = "Choose class",
        allow_new: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("ClassPickerDialog")
        self._names = [n for n in names if n != IGNORE]  # an ignore region, never a class
        self._allow_new = allow_new
        self._chosen: str | None = None
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Type to search or to name a new class")
        self.filter_edit.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        hint = QLabel("Enter picks the highlighted class; \u2191\u2193 move.", self)
        hint.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.list)
        layout.addWidget(hint)
        layout.addWidget(buttons)
        buttons.accepted.connect(self._accept_current)
        buttons.rejected.connect(self.reject)
        self.filter_edit.textChanged.connect(self._refilter)
        self.filter_edit.returnPressed.connect(self._accept_current)
        self.filter_edit.installEventFilter(self)
        self.list.itemActivated.connect(lambda _item: self._accept_current())
        self._refilter("")
        if current in self._names:
            self._select_name(current)
        self.resize(320, 380)
        self.filter_edit.setFocus()

    # --- results -----------------------------------------------------------------------------
    @property
    def chosen(self) -> str | None:
        return self._chosen

    def visible_names(self) -> list[str]:
        return [self.list.item(i).data(NAME_ROLE) for i in range(self.list.count())]

    # --- internals -----------------------------------------------------------------------------
    def _refilter(self, text: str) -> None:
        self.list.clear()
        matches = rank_classes(self._names, text)
        for name in matches:
            item = QListWidgetItem(name)
            item.setData(NAME_ROLE, name)
            self.list.addItem(item)
        typed = text.strip()
        if self._allow_new and typed and typed not in self._names and typed != IGNORE:
            item = QListWidgetItem(f"New class \u201c{typed}\u201d")
            item.setData(NAME_ROLE, typed)
            item.setToolTip("Add this class to the project's class list")
            font = item.font()
            font.setItalic(True)
            item.setFont(font)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _select_name(self, name: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(NAME_ROLE) == name:
                self.list.setCurrentRow(i)
                return

    def _accept_current(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        self._chosen = item.data(NAME_ROLE)
        self.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        # Up/Down in the search field move the highlight in the list.
        if watched is self.filter_edit and event.type() == QEvent.Type.KeyPress:
            key = cast(QKeyEvent, event).key()  # a KeyPress event is a QKeyEvent
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.list.count():
                step = -1 if key == Qt.Key.Key_Up else 1
                row = min(max(self.list.currentRow() + step, 0), self.list.count() - 1)
                self.list.setCurrentRow(row)
                return True
        return super().eventFilter(watched, event)


def pick_class(
    parent: QWidget | None,
    names: list[str],
    current: str | None = None,
    title: str = "Choose class",
    allow_new: bool = True,
) -> str | None:
    """Ask for a class name (an existing one or, with ``allow_new``, a new one); None if cancelled."""
    dialog = ClassPickerDialog(parent, names, current, title, allow_new)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.chosen
    finally:
        dialog.deleteLater()
