"""The Training dock: run settings | progress, live loss curves and log | before/after AP table.

Only widgets; ``TrainingController`` fills them from the worker's messages.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.settings import AppSettings
from app.training.loss_plot import LossPlot
from app.training.metrics_table import MetricsTable
from app.training.options import format_duration
from app.training.setup_form import TrainingForm

LOG_LINES = 2000


class TrainingDock(QDockWidget):
    def __init__(self, settings: AppSettings, default_runs_dir: str, parent: QWidget | None = None) -> None:
        super().__init__("Training", parent)
        self.setObjectName("TrainingDock")
        self.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)

        # --- settings column ------------------------------------------------------------------------
        self.form = TrainingForm(settings, default_runs_dir)
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(330)
        self.start_button = QPushButton("Start training")
        self.start_button.setToolTip("Fine-tune in a separate process; you can keep browsing and editing")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current iteration and save the weights so far")
        self.cancel_button.setEnabled(False)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its last saved weights and optimizer state")
        self.resume_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addWidget(scroll, 1)
        left_lay.addLayout(buttons)

        # --- progress column --------------------------------------------------------------------------
        self.status_label = QLabel("Set up a run and press Start.")
        self.status_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.stats_label = QLabel("")
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("QLabel { color: #b00020; }")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        self.plot = LossPlot()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        self.log.setFont(mono)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plot, "Loss")
        self.tabs.addTab(self.log, "Log")
        middle = QWidget()
        mid_lay = QVBoxLayout(middle)
        mid_lay.setContentsMargins(0, 0, 0, 0)
        mid_lay.addWidget(self.status_label)
        mid_lay.addWidget(self.progress)
        mid_lay.addWidget(self.stats_label)
        mid_lay.addWidget(self.error_label)
        mid_lay.addWidget(self.tabs, 1)

        # --- results column ---------------------------------------------------------------------------
        self.results_label = QLabel("Validation AP (%)")
        self.results_label.setWordWrap(True)
        self.table = MetricsTable()
        self.use_button = QPushButton("Use these weights")
        self.use_button.setToolTip("Load the trained checkpoint as the current model")
        self.use_button.setEnabled(False)
        self.open_button = QPushButton("Open run folder")
        self.open_button.setEnabled(False)
        result_buttons = QHBoxLayout()
        result_buttons.addWidget(self.use_button, 1)
        result_buttons.addWidget(self.open_button)
        right = QWidget()
        right_lay = QVBoxLayout(right)
        right_lay.setContentsMargins(0, 0, 0, 0)
        right_lay.addWidget(self.results_label)
        right_lay.addWidget(self.table, 1)
        right_lay.addLayout(result_buttons)
        # Predicting the images not reviewed yet with the trained weights (after "Use these weights").
        self.predict_label = QLabel("")
        self.predict_label.setWordWrap(True)
        self.predict_progress = QProgressBar()
        self.predict_cancel = QPushButton("Stop")
        self.predict_cancel.setToolTip("Stop predicting after the current image (what is done stays)")
        predict_row = QHBoxLayout()
        predict_row.addWidget(self.predict_progress, 1)
        predict_row.addWidget(self.predict_cancel)
        right_lay.addWidget(self.predict_label)
        right_lay.addLayout(predict_row)
        self.show_predicting(False)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        for w in (left, middle, right):
            splitter.addWidget(w)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([360, 560, 300])
        self.splitter = splitter
        self.setWidget(splitter)

    # --- display helpers used by the controller ---------------------------------------------------------
    def set_running(self, running: bool) -> None:
        self.form.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.cancel_button.setText("Cancel")
        if running:
            self.use_button.setEnabled(False)
            self.resume_button.setEnabled(False)

    def show_predicting(self, running: bool, text: str = "") -> None:
        self.predict_label.setText(text)
        self.predict_label.setVisible(bool(text))
        self.predict_progress.setVisible(running)
        self.predict_cancel.setVisible(running)
        self.predict_cancel.setEnabled(running)

    def show_status(self, text: str) -> None:
        self.status_label.setText(text)

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def show_progress(self, iteration: int, total: int, epoch: int, epochs: int, eta_s: float | None) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(iteration, max(total, 1)))
        dot = "  \u00b7  "
        eta = format_duration(eta_s)
        self.progress.setFormat(f"%p %{dot}iteration {iteration}/{total}{dot}epoch {epoch}/{epochs}{dot}ETA {eta}")

    def append_log(self, text: str) -> None:
        text = text.rstrip("\n")
        if text:
            self.log.appendPlainText(text)
