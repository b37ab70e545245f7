"""The "New:" row above the instance list: the class the next new instance gets, and a + button.

The picker always shows the class the next new instance gets; with none chosen yet it says so
(and drawing asks), it never falls back to the first class. labelme's ``__ignore__`` is an
ignore region, not a class, so it is never offered.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolButton, QWidget

from app.icons import swatch
from engine.annotations import IGNORE

NO_CLASS_TEXT = "choose a class\u2026"


class NewClassRow(QWidget):
    currentClassChanged = Signal(str)
    addClassRequested = Signal()
    classesShown = Signal(list, str)  # class names offered, the current one ('' for none)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_combo = QComboBox(self)
        self.class_combo.setToolTip("Class of new instances (a brush stroke or polygon with nothing selected)")
        self.class_combo.setMinimumContentsLength(10)
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_combo.setPlaceholderText(NO_CLASS_TEXT)
        self.class_colours: dict[str, tuple[int, int, int]] = {}
        self.add_class_button = QToolButton(self)
        self.add_class_button.setText("+")
        self.add_class_button.setToolTip("Add a class to the project's class list")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("New:", self))
        row.addWidget(self.class_combo, 1)
        row.addWidget(self.add_class_button)
        self.class_combo.currentTextChanged.connect(self._on_class_changed)
        self.add_class_button.clicked.connect(self.addClassRequested.emit)

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

    def _on_class_changed(self, name: str) -> None:
        if name:
            self.currentClassChanged.emit(name)
