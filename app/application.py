"""Start the Qt application and show the main window.

``python main.py`` opens a bundled sample image with the demo model and runs it once;
``python main.py IMAGE|FOLDER ...`` opens those instead.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer

from app.model_catalog import DEMO_KEY
from resources import SAMPLES, resource_path


def sample_images() -> list[Path]:
    return sorted(p for p in resource_path(SAMPLES).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def create_application(argv: list[str] | None = None):
    """The QApplication, created once with MaskScope's names and high-DPI policy."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        # Fractional scale factors (125 %, 150 %) render at their true size instead of rounding.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(sys.argv[:1])
    assert isinstance(app, QApplication), "a widget app needs a QApplication, not a QCoreApplication"
    app.setOrganizationName("MaskScope")
    app.setApplicationName("MaskScope")
    app.setApplicationDisplayName("MaskScope")
    from app.icons import app_icon

    app.setWindowIcon(app_icon())
    return app


def _install_excepthook(window) -> None:
    """An unexpected error in a slot shows a dialog instead of vanishing into the terminal."""
    from app import dialogs

    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        previous(exc_type, exc, tb)
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        dialogs.show_error(
            window,
            "Unexpected error",
            f"{exc_type.__name__}: {exc}\n\nMaskScope keeps running; please report this with the details.",
            details,
        )

    sys.excepthook = hook


def launch(argv: list[str]):
    """Create the application and show the window; returns (app, window) without entering the loop.

    Only Qt and the light parts of the app are imported before ``show()``: torch is imported by the
    inference worker's first job (the model load queued below), pyqtgraph when a plot is first shown.
    """
    app = create_application(argv)
    from app.main_window import MainWindow

    window = MainWindow()
    _install_excepthook(window)
    window.show()
    if argv:
        window.open_paths(argv)
    else:
        samples = sample_images()
        if samples:
            window.open_image(str(samples[0]))
            window.request_auto_run(str(samples[0]))  # the demo segments something at once
    # After the image request (its decoding starts at once) and after the window's first paint:
    # importing torch holds the GIL for long stretches, even in the worker thread.
    _after_first_paint(window, lambda: window.models.choose(DEMO_KEY))
    return app, window


class _FirstPaint(QObject):
    """Calls ``callback`` once, from the event loop, after ``widget``'s first paint (or ``timeout_ms``)."""

    def __init__(self, widget, callback, timeout_ms: int = 1000) -> None:
        super().__init__(widget)
        self._callback = callback
        self._done = False
        widget.installEventFilter(self)
        QTimer.singleShot(timeout_ms, self._fire)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and not self._done:
            QTimer.singleShot(0, self._fire)  # once this paint has been delivered
        return False

    def _fire(self) -> None:
        if not self._done:
            self._done = True
            self._callback()


def _after_first_paint(widget, callback) -> None:
    _FirstPaint(widget, callback)


def run_app(argv: list[str]) -> int:
    app, _window = launch(argv)
    return app.exec()
