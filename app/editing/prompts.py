"""Every question the editing tools ask the user goes through these functions (tests replace them)."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

EXPORT_FILTERS = {
    "COCO JSON, masks as RLE (*.json)": "rle",
    "COCO JSON, masks as polygons where possible (*.json)": "polygons",
}


def get_save_path(parent: QWidget | None, caption: str, start: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, caption, start, "COCO JSON (*.json);;All files (*)")
    return path or None


def get_export_target(parent: QWidget | None, start: str) -> tuple[str, str] | None:
    """(path, 'rle' | 'polygons'): the file type chosen in the save dialog picks the mask format."""
    path, chosen = QFileDialog.getSaveFileName(parent, "Export COCO", start, ";;".join(EXPORT_FILTERS))
    if not path:
        return None
    return path, EXPORT_FILTERS.get(chosen, "rle")


def get_import_path(parent: QWidget | None, start: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(
        parent, "Import COCO or labelme annotations", start, "COCO or labelme JSON (*.json);;All files (*)"
    )
    return path or None


def get_import_folder(parent: QWidget | None, start: str) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, "Import a folder of labelme files", start)
    return path or None


def ask_text(parent: QWidget | None, title: str, label: str, text: str = "") -> str | None:
    value, ok = QInputDialog.getText(parent, title, label, text=text)
    value = value.strip()
    return value if ok and value else None


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text)
    return answer == QMessageBox.StandardButton.Yes


def ask_colour(parent: QWidget | None, title: str, current: str = "") -> str | None:
    """A colour as '#rrggbb', or None when cancelled."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QColorDialog

    colour = QColorDialog.getColor(QColor(current) if current else QColor(255, 160, 0), parent, title)
    return colour.name() if colour.isValid() else None
