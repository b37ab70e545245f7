"""Small shared pieces of the inspector panels: monospace text, key/value tables, the message
banner shown when a model lacks the internals a panel needs, and the figure export dialog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStatusBar,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app import dialogs


def monospace_text(min_height: int = 80) -> QPlainTextEdit:
    text = QPlainTextEdit()
    text.setReadOnly(True)
    text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    text.setMinimumHeight(min_height)
    return text


def fill_table(table: QTableWidget, headers: list[str], rows: list[list[str]], bold_row: int = -1) -> None:
    table.clear()
    table.setColumnCount(len(headers))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(headers)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if r == bold_row:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            table.setItem(r, c, item)
    table.resizeColumnsToContents()


def small_table() -> QTableWidget:
    table = QTableWidget()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


class StatusBanner(QFrame):
    """Why a panel shows nothing (no trace, other model...), with a button when a re-run helps."""

    rerunRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("StatusBanner { background: rgba(255, 200, 0, 40); }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton("Run again with internals")
        self.button.setToolTip("Run the model on this image again, recording what the inspectors show")
        self.button.clicked.connect(self.rerunRequested.emit)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.message = ""
        self.hide()

    def show_message(self, text: str, rerun: bool = False) -> None:
        """Show ``text`` (hidden when empty); ``rerun`` adds the 'Run again' button."""
        self.message = text
        self.label.setText(text)
        self.button.setVisible(rerun)
        self.setVisible(bool(text))


DEFAULT_DPI = 300
FIGURE_FILTERS = {
    "PNG image (*.png)": ".png",
    "SVG vector image (*.svg)": ".svg",
    "PDF document (*.pdf)": ".pdf",
}


def ask_figure_path(parent: QWidget, default_name: str) -> Path | None:
    """A file name for the figure; its suffix (.png, .svg or .pdf) picks the format."""
    path, chosen = QFileDialog.getSaveFileName(
        parent, "Export figure (+ JSON of the numbers)", default_name, ";;".join(FIGURE_FILTERS)
    )
    if not path:
        return None
    p = Path(path)
    if p.suffix.lower() in FIGURE_FILTERS.values():
        return p
    return p.with_suffix(FIGURE_FILTERS.get(chosen, ".png"))


def ask_dpi(parent: QWidget) -> int | None:
    from PySide6.QtWidgets import QInputDialog

    dpi, ok = QInputDialog.getInt(parent, "PNG resolution", "Dots per inch:", DEFAULT_DPI, 30, 1200, 50)
    return dpi if ok else None


def ask_and_export_figure(
    parent: QWidget,
    default_name: str,
    export: Callable[[Path, float], tuple[Path, Path]],
    status_bar: QStatusBar,
) -> None:
    """Ask where (and, for PNG, at what DPI) to save a figure, write it with ``export`` and report
    the files (or the error)."""
    from engine.errors import MaskScopeError

    path = ask_figure_path(parent, default_name)
    if path is None:
        return
    dpi = ask_dpi(parent) if path.suffix.lower() == ".png" else DEFAULT_DPI
    if dpi is None:
        return
    try:
        figure, js = export(path, dpi)
    except MaskScopeError as exc:
        dialogs.show_error(parent, "Export failed", str(exc))
        return
    status_bar.showMessage(f"Saved {figure.name} and {js.name}", 6000)
