"""Small shared pieces of the inspector panels: monospace text, key/value tables, the message
banner shown when a model lacks the internals a panel needs, and figure export."""

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


def ask_figure_path(parent: QWidget, default_name: str) -> Path | None:
    path, _ = QFileDialog.getSaveFileName(
        parent, "Export figure (PNG + JSON of the numbers)", default_name, "PNG image (*.png)"
    )
    if not path:
        return None
    p = Path(path)
    return p if p.suffix.lower() == ".png" else p.with_suffix(".png")


def save_png(widget: QWidget, path: Path) -> Path:
    """The widget as it is on screen (``QWidget.grab``) saved as a PNG."""
    from engine.errors import MaskScopeError

    pixmap = widget.grab()
    if pixmap.isNull() or not pixmap.save(str(path), "PNG"):
        raise MaskScopeError(f"Could not write the figure {path}: check the folder exists and is writable.")
    return path


def save_figure(widget: QWidget, png_path: str | Path, data: dict) -> tuple[Path, Path]:
    """Save ``widget`` as shown (PNG) and ``data``, its numbers, as JSON with the same stem."""
    from engine.inspect.figure_export import write_figure_json

    png_path = Path(png_path)
    save_png(widget, png_path)
    return png_path, write_figure_json(png_path.with_suffix(".json"), data)


def ask_and_export_figure(
    parent: QWidget, default_name: str, export: Callable[[Path], tuple[Path, Path]], status_bar: QStatusBar
) -> None:
    """Ask where to save a figure, write it with ``export`` and report the files (or the error)."""
    from engine.errors import MaskScopeError

    path = ask_figure_path(parent, default_name)
    if path is None:
        return
    try:
        png, js = export(path)
    except MaskScopeError as exc:
        dialogs.show_error(parent, "Export failed", str(exc))
        return
    status_bar.showMessage(f"Saved {png.name} and {js.name}", 6000)
