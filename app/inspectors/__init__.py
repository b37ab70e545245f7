"""See inside the models: the RoI inspector (Mask R-CNN) and the prototype viewer (YOLACT).

``install_inspectors(window)`` adds both as docks of the main window. They need predictions made
with ``trace=True`` (the model's internals); without one they say so and offer a re-run.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget

ROI_SHORTCUT = "Ctrl+Shift+I"
PROTOTYPE_SHORTCUT = "Ctrl+Shift+P"


def install_inspectors(
    window, area: Qt.DockWidgetArea = Qt.DockWidgetArea.BottomDockWidgetArea, visible: bool = False
) -> list[QDockWidget]:
    """Add the RoI inspector and the prototype viewer to ``window`` (tabbed together in ``area``).

    ``window`` provides ``add_dock``, ``canvas.add_item``, ``instanceSelected(int)``,
    ``predictionChanged``, ``current_prediction``, ``selected_instance``, ``run_current`` and
    ``statusBar``. The docks start hidden unless ``visible`` (View > Panels, or the shortcuts
    Ctrl+Shift+I / Ctrl+Shift+P, show them); they compute nothing while hidden.
    """
    # Imported here: only the docks need them. Their widgets (pyqtgraph) are built when first shown.
    from app.inspectors.prototype_dock import PrototypeViewerDock
    from app.inspectors.roi_dock import RoIInspectorDock

    roi = RoIInspectorDock(window)
    proto = PrototypeViewerDock(window)
    for dock, keys in ((roi, ROI_SHORTCUT), (proto, PROTOTYPE_SHORTCUT)):
        dock.toggleViewAction().setShortcut(QKeySequence(keys))
        window.add_dock(dock, area)
        if visible:
            dock.ensure_built()
        dock.setVisible(visible)
    window.tabifyDockWidget(roi, proto)
    roi.raise_()
    return [roi, proto]
