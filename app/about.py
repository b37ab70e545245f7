"""Help > About MaskScope: what is running, with the versions a bug report needs."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_text() -> str:
    """The device models run on; torch is asked only if a model already imported it (no slow import)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return "not chosen yet (no model loaded)"
    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def versions() -> dict[str, str]:
    return {
        "MaskScope": _version("maskscope"),
        "Python": platform.python_version(),
        "Qt": f"{qVersion()} (PySide6 {pyside_version})",
        "torch": _version("torch"),
        "torchvision": _version("torchvision"),
        "Device": device_text(),
        "System": platform.platform(terse=True),
    }


def about_html() -> str:
    rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in versions().items())
    return (
        "<p><b>MaskScope</b>: interactive instance segmentation with Mask R-CNN and YOLACT: run, inspect, "
        "correct, fine-tune, export COCO.</p>"
        f"<table cellspacing=4>{rows}</table>"
    )


def show_about(parent: QWidget | None) -> None:
    box = QMessageBox(QMessageBox.Icon.NoIcon, "About MaskScope", about_html(), QMessageBox.StandardButton.Ok, parent)
    box.setTextInteractionFlags(box.textInteractionFlags())
    box.exec()
