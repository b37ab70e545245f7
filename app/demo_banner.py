"""A non-blocking banner over the canvas while a built-in demo model's result is shown: it says the
demo only knows five generated shapes and points to Model > Manage models for real ones.

``install_demo_banner(window)`` is the whole wiring: it follows the window's prediction signal and the
model controller, and shows the banner only for a demo model's prediction of the current image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from app.model_catalog import DEMO_KEY, DEMO_WEIGHTS, ModelChoice

if TYPE_CHECKING:
    from app.main_window import MainWindow

DEMO_SHAPES = ("circle", "square", "triangle", "star", "ring")
MANAGE_MODELS = "Model > Manage models\u2026"
MARGIN = 8  # pixels between the banner and the canvas edges


def is_demo_choice(choice: ModelChoice | None) -> bool:
    """True for the built-in demo models (the default entry and any demo_*.safetensors we ship)."""
    if choice is None:
        return False
    if choice.key == DEMO_KEY:
        return True
    weights = Path(choice.weights) if choice.weights else None
    return weights is not None and weights.parent == DEMO_WEIGHTS.parent and weights.name.startswith("demo_")


def banner_text() -> str:
    shapes = ", ".join(DEMO_SHAPES)
    return (
        f"<b>Demo model:</b> it only knows five generated shapes ({shapes}), so it will not recognise "
        f"people, cars or anything else in your photos. For real objects choose a COCO model in "
        f"<a href='manage'>{MANAGE_MODELS}</a>"
    )


class DemoBanner(QFrame):
    """The banner itself: a rich-text line, a link to the model manager and a close button.

    It floats at the top of its parent (the canvas) and takes no part in the parent's layout, so the
    image under it stays usable; once closed it stays hidden for the session.
    """

    manageModelsRequested = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("demoBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        # Fixed light colours with dark text: readable on any image and in either theme.
        self.setStyleSheet(
            "#demoBanner { background: #fff4ce; border: 1px solid #c8a600; border-radius: 4px; }"
            "#demoBanner QLabel { color: #3b2f00; } #demoBanner QToolButton { color: #3b2f00; border: none; }"
        )
        self.label = QLabel(banner_text())
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.label.linkActivated.connect(lambda _link: self.manageModelsRequested.emit())
        self.close_button = QToolButton()
        self.close_button.setText("\u2715")
        self.close_button.setToolTip("Hide this note")
        self.close_button.setAccessibleName("Hide demo model note")
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.closed_by_user = False
        parent.installEventFilter(self)  # follow the parent's size
        self.hide()

    def show_banner(self) -> None:
        self._place()
        self.show()
        self.raise_()

    def dismiss(self) -> None:
        self.closed_by_user = True
        self.hide()
        self.dismissed.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is None:  # detached from its host: nothing to fit
            return
        width = max(120, parent.width() - 2 * MARGIN)
        self.setFixedWidth(width)
        self.adjustSize()
        self.move(MARGIN, MARGIN)


def open_model_manager(window: MainWindow) -> None:
    """Model > Manage models..., as the menu entry does."""
    window.models.open_manager()


def install_demo_banner(window: MainWindow) -> DemoBanner:
    """Put the banner on ``window``'s canvas and show it whenever a demo model's result is shown."""
    banner = DemoBanner(window.canvas)

    def refresh(*_args) -> None:
        demo = window.current_prediction is not None and is_demo_choice(window.models.active)
        if demo and not banner.closed_by_user:
            banner.show_banner()
        else:
            banner.hide()

    banner.manageModelsRequested.connect(lambda: open_model_manager(window))
    window.predictionChanged.connect(refresh)
    window.imageShown.connect(refresh)
    window.models.modelReady.connect(refresh)
    return banner
