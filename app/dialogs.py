"""Every message box goes through these functions, so tests can replace them and never block."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget | None, title: str, message: str, details: str | None = None) -> None:
    """A modal error box: ``message`` says what went wrong and what to do about it."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


def show_info(parent: QWidget | None, title: str, message: str) -> None:
    QMessageBox.information(parent, title, message)


def get_open_file(parent: QWidget | None, caption: str, folder: str, file_filter: str) -> str | None:
    from PySide6.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(parent, caption, folder, file_filter)
    return path or None


def get_folder(parent: QWidget | None, caption: str, folder: str) -> str | None:
    from PySide6.QtWidgets import QFileDialog

    path = QFileDialog.getExistingDirectory(parent, caption, folder)
    return path or None


def ask_model_kind(
    parent: QWidget | None, file_name: str, options: list[tuple[str, str, str | None]], guess: int
) -> tuple[str, str | None] | None:
    """Ask which (architecture, config) a ``.pth`` file is for. ``options``: (label, arch, config)."""
    from PySide6.QtWidgets import QInputDialog

    labels = [label for label, _, _ in options]
    label, ok = QInputDialog.getItem(
        parent, "Which model is this?", f"{file_name} holds weights for:", labels, guess, False
    )
    if not ok:
        return None
    _, arch, config = options[labels.index(label)]
    return arch, config
