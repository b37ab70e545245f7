"""Start the Qt application and show the main window."""

from __future__ import annotations

import sys


def run_app(argv: list[str]) -> int:
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = QMainWindow()
    window.setWindowTitle("MaskScope")
    window.setCentralWidget(QLabel("MaskScope"))
    window.resize(1200, 800)
    window.show()
    return app.exec()
