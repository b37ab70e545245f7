"""The overlay dock: fill opacity, score threshold, and what to draw (outlines, boxes, labels, scores)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QDockWidget, QFormLayout, QHBoxLayout, QLabel, QSlider, QWidget


def _slider(tooltip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setSingleStep(1)
    slider.setPageStep(10)
    slider.setToolTip(tooltip)
    return slider


class OverlayControlsDock(QDockWidget):
    opacityChanged = Signal(float)  # 0..1
    thresholdChanged = Signal(float)  # 0..1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Overlay", parent)
        self.setObjectName("OverlayDock")
        body = QWidget(self)
        form = QFormLayout(body)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.opacity_slider = _slider("Mask fill opacity (outlines stay opaque)")
        self.opacity_label = QLabel()
        self.threshold_slider = _slider("Hide instances scoring below this (filters live)")
        self.threshold_label = QLabel()
        for label in (self.opacity_label, self.threshold_label):
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance("100 %") + 4)
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.addRow("Opacity", _row(self.opacity_slider, self.opacity_label))
        form.addRow("Min. score", _row(self.threshold_slider, self.threshold_label))

        # The checkboxes mirror the View menu actions; the window connects both ways.
        self.outlines_box = QCheckBox("Outlines")
        self.boxes_box = QCheckBox("Boxes")
        self.labels_box = QCheckBox("Labels")
        self.scores_box = QCheckBox("Scores")
        toggles = QWidget()
        grid = QHBoxLayout(toggles)
        grid.setContentsMargins(0, 0, 0, 0)
        for box in (self.outlines_box, self.boxes_box, self.labels_box, self.scores_box):
            grid.addWidget(box)
        grid.addStretch(1)
        form.addRow("Show", toggles)
        self.setWidget(body)

        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self.threshold_slider.valueChanged.connect(self._on_threshold)

    def set_values(self, opacity: float, threshold: float) -> None:
        self.opacity_slider.setValue(round(opacity * 100))
        self.threshold_slider.setValue(round(threshold * 100))
        self._on_opacity(self.opacity_slider.value(), emit=False)
        self._on_threshold(self.threshold_slider.value(), emit=False)

    @property
    def opacity(self) -> float:
        return self.opacity_slider.value() / 100.0

    @property
    def threshold(self) -> float:
        return self.threshold_slider.value() / 100.0

    def _on_opacity(self, value: int, emit: bool = True) -> None:
        self.opacity_label.setText(f"{value} %")
        if emit:
            self.opacityChanged.emit(value / 100.0)

    def _on_threshold(self, value: int, emit: bool = True) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if emit:
            self.thresholdChanged.emit(value / 100.0)


def _row(slider: QSlider, label: QLabel) -> QWidget:
    w = QWidget()
    layout = QHBoxLayout(w)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(slider, 1)
    layout.addWidget(label)
    return w
