"""What the RoI inspector and the prototype viewer docks share: following the window, working only
while shown, and a status banner above the dock's body, with an Export button for the figure."""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QPushButton, QVBoxLayout, QWidget

from app.dock_scroll import scrolling
from app.inspectors.widgets import StatusBanner


class InspectorDock(QDockWidget):
    """Base of the inspector docks.

    Follows the window's selected instance (``instanceSelected``) and prediction
    (``predictionChanged``). A hidden dock computes nothing: it marks itself dirty and refreshes
    when it is shown again. Subclasses build their widgets in ``_build`` (into a body handed to
    ``_set_body``) and implement ``refresh``, ``_sync_canvas`` and ``_ask_export``. The widgets are
    built when the dock is first shown (``ensure_built``): their plots import pyqtgraph, which would
    otherwise delay the window's first appearance.
    """

    def __init__(self, title: str, object_name: str, window) -> None:
        super().__init__(title, window)
        self.setObjectName(object_name)
        self.window_ = window
        self.status = None  # the engine's availability verdict for the current prediction
        self._index = -1  # the window's selected instance
        self._dirty = True  # the window changed while the dock was hidden
        self._prompt = None  # a box prompt's one-instance prediction, shown instead while set
        self._built = False
        self.banner = StatusBanner()
        self.banner.rerunRequested.connect(lambda: self.window_.run_current())
        self.export_button = QPushButton("Export\u2026")
        self.export_button.setToolTip(
            "Save a composed figure of this view (PNG, SVG or PDF) and its numbers as JSON next to it"
        )
        self.export_button.clicked.connect(self._ask_export)
        window.instanceSelected.connect(self._on_selection)
        window.predictionChanged.connect(self._on_prediction)
        self.visibilityChanged.connect(self._on_visibility)

    def _set_body(self, body: QWidget) -> None:
        """The dock's content: the banner (why nothing is shown, when so) above ``body``."""
        self.body = body
        self.content = QWidget()
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(body, 1)
        self.setWidget(scrolling(self.content, self))  # scrolls on a small screen

    def ensure_built(self) -> None:
        """Build the dock's widgets now if they are not built yet."""
        if not self._built:
            self._built = True
            self._build()

    def _build(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Recompute for the window's current prediction and selection (only while visible)."""
        raise NotImplementedError

    def _sync_canvas(self, visible: bool) -> None:
        """Show or hide what the dock draws on the canvas as the dock is shown or hidden."""
        raise NotImplementedError

    def _ask_export(self) -> None:
        raise NotImplementedError

    def shown_prediction(self):
        """What the dock explains: a box prompt's prediction while one is shown, else the window's."""
        return self._prompt if self._prompt is not None else self.window_.current_prediction

    @property
    def prompt_shown(self) -> bool:
        return self._prompt is not None

    def show_prompt(self, prediction) -> None:
        """Explain a box prompt's one-instance ``Prediction`` (``Segmenter.trace_box``) until it is
        accepted or discarded (None: follow the window's selection again)."""
        if prediction is None and self._prompt is None:
            return
        self._prompt = prediction
        self._index = 0 if prediction is not None else self.window_.selected_instance
        self.refresh()

    def _on_selection(self, index: int) -> None:
        if self._prompt is not None:
            return  # the prompt stays explained until it is accepted or discarded
        self._index = index
        self.refresh()

    def _on_prediction(self) -> None:
        if self._prompt is not None:
            return
        self._index = self.window_.selected_instance
        self.refresh()

    def _on_visibility(self, visible: bool) -> None:
        if visible:
            self.ensure_built()
        if visible and self._dirty:
            self.refresh()
        self._sync_canvas(visible)
