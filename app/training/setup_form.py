"""The settings of a training run: data, model, starting weights, schedule, freezing, device, output.

``values()`` checks the choices and returns them as a ``RunSettings`` (or raises ``ValueError``
with a message for the dock); nothing here touches files beyond asking for paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from app import dialogs
from app.model_catalog import ModelChoice
from app.settings import AppSettings
from app.training.options import (
    ARCHITECTURES,
    CONFIGS,
    DEFAULT_FREEZE,
    DEFAULT_LR,
    DEMO_FILES,
    DEVICES,
    FREEZE_CHOICES,
    OPTIMIZERS,
    StartingWeights,
    weights_for_file,
    weights_for_model,
)

SOURCE_PROJECT, SOURCE_COCO = "project", "coco"
START_CURRENT, START_DEMO, START_PRETRAINED = "current", "demo", "pretrained"
START_RANDOM, START_FILE = "random", "file"


@dataclass
class RunSettings:
    source: str  # SOURCE_PROJECT or SOURCE_COCO
    coco: str  # COCO JSON (SOURCE_COCO)
    images: str  # its image folder; "" = beside the JSON
    start: StartingWeights
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    freeze: int
    val_fraction: float
    device: str
    runs_dir: str


def _path_row(edit: QLineEdit, browse) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(2)
    lay.addWidget(edit, 1)
    button = QToolButton()
    button.setText("\u2026")
    button.setToolTip("Browse")
    button.clicked.connect(browse)
    lay.addWidget(button)
    return row


class TrainingForm(QWidget):
    changed = Signal()

    def __init__(self, settings: AppSettings, default_runs_dir: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._project_folder: str | None = None
        self._project_images = 0
        self._current: ModelChoice | None = None
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.source = QComboBox()
        self.source.setToolTip("Annotated images to train on")
        self.coco_edit = QLineEdit()
        self.coco_edit.setPlaceholderText("COCO instances JSON")
        self.images_edit = QLineEdit()
        self.images_edit.setPlaceholderText("image folder (default: beside the JSON)")
        self.coco_row = _path_row(self.coco_edit, self._browse_coco)
        self.images_row = _path_row(self.images_edit, self._browse_images)
        form.addRow("Data", self.source)
        form.addRow("Annotations", self.coco_row)
        form.addRow("Images", self.images_row)

        self.start = QComboBox()
        self.start.setToolTip("Weights training starts from")
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText(".safetensors or .pth")
        self.file_row = _path_row(self.file_edit, self._browse_weights)
        self.arch = QComboBox()
        for key, label in ARCHITECTURES.items():
            self.arch.addItem(label, key)
        self.config = QComboBox()
        form.addRow("Start from", self.start)
        form.addRow("Weights file", self.file_row)
        form.addRow("Model", self.arch)
        form.addRow("Config", self.config)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(10)
        self.batch = QSpinBox()
        self.batch.setRange(1, 64)
        self.batch.setValue(2)
        self.optimizer = QComboBox()
        for key, label in OPTIMIZERS:
            self.optimizer.addItem(label, key)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(0.0005)
        self.lr.setToolTip("Base learning rate (after a short warm-up, cosine decay to zero)")
        self.freeze = QComboBox()
        for label, value in FREEZE_CHOICES:
            self.freeze.addItem(label, value)
        self.freeze.setToolTip("Backbone stages kept fixed, from the input side")
        self.val = QSpinBox()
        self.val.setRange(0, 50)
        self.val.setValue(20)
        self.val.setSuffix(" %")
        self.val.setToolTip("Images held out to measure AP before and after training (0: none)")
        self.device = QComboBox()
        for key, label in DEVICES:
            self.device.addItem(label, key)
        self.runs_edit = QLineEdit(default_runs_dir)
        self.runs_edit.setToolTip("Each run gets its own folder here: checkpoints, log, job")
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch)
        form.addRow("Optimizer", self.optimizer)
        form.addRow("Learning rate", self.lr)
        form.addRow("Freeze", self.freeze)
        form.addRow("Validation", self.val)
        form.addRow("Device", self.device)
        form.addRow("Save runs in", _path_row(self.runs_edit, self._browse_runs))
        self._form = form

        self._fill_start()
        self._fill_configs()
        self._restore()
        self.source.currentIndexChanged.connect(self._sync)
        self.start.currentIndexChanged.connect(self._on_start_changed)
        self.arch.currentIndexChanged.connect(self._on_arch_changed)
        self.optimizer.currentIndexChanged.connect(self._default_lr)
        self.file_edit.editingFinished.connect(self._sync)
        for w in (self.config, self.freeze, self.device):
            w.currentIndexChanged.connect(self.changed)
        self.refresh_project(None)
        self._sync()

    # --- choices that depend on the window ------------------------------------------------------
    def refresh_project(self, folder: str | None, images: int = 0) -> None:
        """Offer the project of the image on screen (``folder``), if any, as the data source."""
        new_project = bool(folder) and folder != self._project_folder
        self._project_folder = folder
        self._project_images = images
        # A project just opened is the default data; the user's choice stands for the same project.
        keep = SOURCE_PROJECT if new_project else self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        if folder:
            self.source.addItem(f"Current project: {Path(folder).name} ({images} annotated)", SOURCE_PROJECT)
            self.source.setItemData(0, folder, Qt.ItemDataRole.ToolTipRole)
        self.source.addItem("COCO annotations file", SOURCE_COCO)
        index = self.source.findData(keep) if keep else -1
        if index < 0:
            saved = self.settings.get_str("training/source", SOURCE_PROJECT)
            index = max(self.source.findData(saved), 0)
        self.source.setCurrentIndex(index)
        self.source.blockSignals(False)
        self._sync()

    def refresh_current_model(self, choice: ModelChoice | None) -> None:
        """Name the model in use in the 'Current model' entry (checked again when a run starts)."""
        self._current = choice
        resolved = weights_for_model(choice)
        index = self.start.findData(START_CURRENT)
        if resolved is not None:
            self.start.setItemText(index, f"Current model: {resolved.label}")
            tip = resolved.weights or "the config's published weights"
        else:
            self.start.setItemText(index, "Current model (none with a weight file)")
            tip = "The model in use was not loaded from a file; choose another starting point."
        self.start.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        self._sync()

    @property
    def project_folder(self) -> str | None:
        return self._project_folder

    # --- values -----------------------------------------------------------------------------------
    def starting_weights(self) -> StartingWeights:
        kind = self.start.currentData()
        arch, config = self.arch.currentData(), self.config.currentData()
        if kind == START_CURRENT:
            resolved = weights_for_model(self._current)
            if resolved is None:
                raise ValueError("The model in use has no weight file to start from; choose another starting point.")
            return resolved
        if kind == START_DEMO:
            path = DEMO_FILES.get(arch)
            if path is None or not path.is_file():
                raise ValueError(f"No demo {ARCHITECTURES[arch]} model is installed ({path}).")
            return StartingWeights(None, None, str(path), f"demo {ARCHITECTURES[arch]}")
        if kind == START_FILE:
            file_name = self.file_edit.text().strip()
            if not file_name:
                raise ValueError("Choose the weights file to start from.")
            if not Path(file_name).is_file():
                raise ValueError(f"{file_name} does not exist.")
            return weights_for_file(file_name, arch, config)
        if kind == START_PRETRAINED:
            option = next(c for c in CONFIGS[arch] if c.name == config)
            if not option.pretrained:
                raise ValueError(
                    f"{config} has no published weights; start from the demo model, a file, or random initialisation."
                )
            return StartingWeights(arch, config, None, f"{config} (published weights)")
        return StartingWeights(arch, config, "random", "random initialisation")

    def values(self) -> RunSettings:
        """The chosen settings; ``ValueError`` with a user-facing message when something is missing."""
        source = self.source.currentData()
        coco = self.coco_edit.text().strip()
        images = self.images_edit.text().strip()
        if source == SOURCE_COCO:
            if not coco:
                raise ValueError("Choose the COCO annotations file to train on.")
            if not Path(coco).is_file():
                raise ValueError(f"{coco} does not exist.")
            if images and not Path(images).is_dir():
                raise ValueError(f"Image folder {images} does not exist.")
        elif not self._project_folder:
            raise ValueError("Open an annotated image folder first, or train on a COCO annotations file.")
        elif not self._project_images:
            raise ValueError(
                f"{Path(self._project_folder).name} has no annotated images yet: annotate some (or accept "
                "predictions) first, or train on a COCO annotations file."
            )
        runs = self.runs_edit.text().strip()
        if not runs:
            raise ValueError("Choose a folder for the training runs.")
        return RunSettings(
            source=source,
            coco=coco,
            images=images,
            start=self.starting_weights(),
            epochs=self.epochs.value(),
            batch_size=self.batch.value(),
            optimizer=self.optimizer.currentData(),
            lr=float(self.lr.value()),
            freeze=int(self.freeze.currentData()),
            val_fraction=self.val.value() / 100.0,
            device=self.device.currentData(),
            runs_dir=runs,
        )

    def set_coco(self, json_path: str, images: str = "") -> None:
        self.source.setCurrentIndex(self.source.findData(SOURCE_COCO))
        self.coco_edit.setText(json_path)
        self.images_edit.setText(images)

    def set_weights_file(self, path: str) -> None:
        self.file_edit.setText(path)
        self.start.setCurrentIndex(self.start.findData(START_FILE))

    def remember(self) -> None:
        s = self.settings
        s.set("training/source", self.source.currentData())
        s.set("training/coco", self.coco_edit.text())
        s.set("training/images", self.images_edit.text())
        s.set("training/start", self.start.currentData())
        s.set("training/weights_file", self.file_edit.text())
        s.set("training/architecture", self.arch.currentData())
        s.set("training/config", self.config.currentData())
        s.set("training/epochs", self.epochs.value())
        s.set("training/batch_size", self.batch.value())
        s.set("training/optimizer", self.optimizer.currentData())
        s.set("training/lr", self.lr.value())
        s.set("training/freeze", self.freeze.currentData())
        s.set("training/val_percent", self.val.value())
        s.set("training/device", self.device.currentData())
        s.set("training/runs_dir", self.runs_edit.text())

    # --- internals ----------------------------------------------------------------------------------
    def _fill_start(self) -> None:
        self.start.addItem("Current model", START_CURRENT)
        self.start.addItem("Demo model", START_DEMO)
        self.start.addItem("Published (COCO) weights", START_PRETRAINED)
        self.start.addItem("Random initialisation", START_RANDOM)
        self.start.addItem("Weights file\u2026", START_FILE)

    def _fill_configs(self) -> None:
        keep = self.config.currentData()
        self.config.blockSignals(True)
        self.config.clear()
        for option in CONFIGS[self.arch.currentData()]:
            self.config.addItem(option.label, option.name)
            self.config.setItemData(self.config.count() - 1, option.name, Qt.ItemDataRole.ToolTipRole)
        index = self.config.findData(keep)
        self.config.setCurrentIndex(max(index, 0))
        self.config.blockSignals(False)

    def _restore(self) -> None:
        s = self.settings
        self._select(self.arch, s.get_str("training/architecture", "maskrcnn"))
        self._fill_configs()
        self._select(self.config, s.get_str("training/config", ""))
        self._select(self.optimizer, s.get_str("training/optimizer", "sgd"))
        default_lr = DEFAULT_LR[(self.arch.currentData(), self.optimizer.currentData())]
        self.lr.setValue(s.get_float("training/lr", default_lr))
        self.epochs.setValue(int(s.get_float("training/epochs", 10)))
        self.batch.setValue(int(s.get_float("training/batch_size", 2)))
        self._select(self.freeze, int(s.get_float("training/freeze", DEFAULT_FREEZE)))
        self.val.setValue(int(s.get_float("training/val_percent", 20)))
        self._select(self.device, s.get_str("training/device", s.get_str("model/device", "auto")))
        self.coco_edit.setText(s.get_str("training/coco", ""))
        self.images_edit.setText(s.get_str("training/images", ""))
        self.file_edit.setText(s.get_str("training/weights_file", ""))
        runs = s.get_str("training/runs_dir", "")
        if runs:
            self.runs_edit.setText(runs)
        self._select(self.start, s.get_str("training/start", START_CURRENT))
        self._demo_availability()

    @staticmethod
    def _select(combo: QComboBox, data) -> None:
        index = combo.findData(data)
        if index >= 0:
            combo.setCurrentIndex(index)

    def _demo_availability(self) -> None:
        model = cast(QStandardItemModel, self.start.model())  # a QComboBox's own model
        item = model.item(self.start.findData(START_DEMO))
        path = DEMO_FILES.get(self.arch.currentData())
        ok = path is not None and path.is_file()
        item.setEnabled(ok)
        item.setToolTip(str(path) if ok else f"No demo model installed ({path})")

    def _on_start_changed(self) -> None:
        if self.start.currentData() == START_RANDOM:
            self._select(self.freeze, 0)  # freezing random layers only hurts
        self._sync()

    def _on_arch_changed(self) -> None:
        self._fill_configs()
        self._default_lr()
        self._demo_availability()
        self._sync()

    def _default_lr(self) -> None:
        self.lr.setValue(DEFAULT_LR[(self.arch.currentData(), self.optimizer.currentData())])
        self.changed.emit()

    def _sync(self) -> None:
        """Show the rows that apply; the model rows follow the starting weights where those say
        what model they are (our checkpoints, the demo model, the model in use)."""
        coco = self.source.currentData() == SOURCE_COCO
        self._form.setRowVisible(self.coco_row, coco)
        self._form.setRowVisible(self.images_row, coco)
        kind = self.start.currentData()
        self._form.setRowVisible(self.file_row, kind == START_FILE)
        arch_fixed = config_fixed = False
        if kind == START_CURRENT:
            resolved = weights_for_model(self._current)
            if resolved is not None:
                if resolved.architecture:
                    self._select(self.arch, resolved.architecture)
                    self._select(self.config, resolved.config)
                arch_fixed = config_fixed = True
        elif kind == START_FILE:
            arch_fixed = config_fixed = self.file_edit.text().strip().endswith(".safetensors")
        elif kind == START_DEMO:
            config_fixed = True  # the architecture picks which demo model
        self.arch.setEnabled(not arch_fixed)
        self.config.setEnabled(not config_fixed)
        tip = "Given by the starting weights" if config_fixed else "Network size and input resolution"
        self.config.setToolTip(tip)
        self.changed.emit()

    # --- browsing -------------------------------------------------------------------------------------
    def _browse_coco(self) -> None:
        start = self.coco_edit.text() or str(Path.home())
        path = dialogs.get_open_file(self, "COCO annotations to train on", start, "COCO JSON (*.json);;All files (*)")
        if path:
            self.coco_edit.setText(path)
            if not self.images_edit.text():
                folder = Path(path).parent / "images"
                self.images_edit.setText(str(folder if folder.is_dir() else Path(path).parent))
            self._sync()

    def _browse_images(self) -> None:
        start = self.images_edit.text() or str(Path.home())
        folder = dialogs.get_folder(self, "Image folder of the annotations", start)
        if folder:
            self.images_edit.setText(folder)

    def _browse_weights(self) -> None:
        path = dialogs.get_open_file(
            self,
            "Starting weights",
            self.file_edit.text() or str(Path.home()),
            "Model weights (*.safetensors *.pth *.pt);;All files (*)",
        )
        if path:
            self.file_edit.setText(path)
            self._sync()

    def _browse_runs(self) -> None:
        folder = dialogs.get_folder(self, "Folder for training runs", self.runs_edit.text() or str(Path.home()))
        if folder:
            self.runs_edit.setText(folder)
