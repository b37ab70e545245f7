"""The model chooser: toolbar combobox + Model menu, device choice, and load status.

Models load in the inference worker; a failed load keeps the previous model active and explains
what to do in a dialog. The chooser lists only models that can load: built-in models whose files
are installed (Model > Manage models... installs the others) and weight files that loaded; a file
that fails to load is taken off the list, with a message that says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QComboBox, QMenu, QWidget

from app import dialogs
from app.inference import InferenceWorker
from app.model_catalog import (
    BUILTIN_CHOICES,
    DEMO_KEY,
    MANAGE_MODELS,
    LoadRequest,
    ModelChoice,
    builtin_choices,
    choice_by_key,
    choice_for_file,
    demo_is_placeholder,
    guess_file_model,
    is_installed,
    menu_advice,
    weights_help,
)
from app.settings import AppSettings

if TYPE_CHECKING:
    from app.model_manager import ModelManagerDialog  # imported when first opened, to start light

LOAD_WEIGHTS_TEXT = "Load weights\u2026"
MANAGE_MODELS_TEXT = "Manage models\u2026"
CUDA_CHECKING = "Checking for a CUDA GPU: PyTorch is still loading."
DEVICES = (("auto", "Automatic (CUDA when available)"), ("cpu", "CPU"), ("cuda", "CUDA GPU"))
FILE_KINDS = [(c.label, c.architecture, c.config) for c in BUILTIN_CHOICES if c.key != DEMO_KEY]


class ModelController(QObject):
    modelReady = Signal(object)  # the Segmenter now in use
    statusChanged = Signal()  # load state, model or device changed

    def __init__(self, worker: InferenceWorker, settings: AppSettings, window: QWidget) -> None:
        super().__init__(window)
        self.worker = worker
        self.settings = settings
        self.window = window
        self.requested: ModelChoice | None = None  # loading, or loaded
        self.active: ModelChoice | None = None  # loaded and in use
        self.segmenter: object | None = None
        self.loading = False
        self.cuda_available = False
        self.cuda_reason = CUDA_CHECKING  # why the CUDA entry is disabled
        self._failed: set[str] = set()  # built-in models whose file failed to load (until reinstalled)
        self._manager: ModelManagerDialog | None = None  # the Manage models dialog, made when first opened
        self.device = settings.get_str("model/device", "auto")
        self._file_choices: list[ModelChoice] = []

        self.combo = QComboBox()
        self.combo.setToolTip("Model used for Run (Ctrl+R)")
        self.combo.setMinimumContentsLength(32)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.activated.connect(self._on_combo)

        self.menu_group = QActionGroup(self)
        self.menu_group.setExclusive(True)
        self.device_group = QActionGroup(self)
        self.device_group.setExclusive(True)
        self.device_actions: dict[str, QAction] = {}

        for path in self._remembered_files():
            self._add_file_choice(path)
        self._rebuild_combo()

        worker.modelLoaded.connect(self._on_loaded)
        worker.modelFailed.connect(self._on_failed)
        worker.torchReady.connect(self._on_torch_ready)

    # --- menus -------------------------------------------------------------------------------------
    def fill_menu(self, menu: QMenu) -> None:
        """Model choices, Load weights..., and the Device submenu."""
        self._menu = menu
        self._rebuild_menu()

    def _rebuild_menu(self) -> None:
        menu = getattr(self, "_menu", None)
        if menu is None:
            return
        for action in self.menu_group.actions():
            self.menu_group.removeAction(action)
        menu.clear()
        for choice in self.choices():
            action = menu.addAction(self._display_label(choice))
            action.setCheckable(True)
            action.setChecked(self.requested is not None and choice.key == self.requested.key)
            action.setData(choice.key)
            self.menu_group.addAction(action)
            action.triggered.connect(lambda _c=False, c=choice: self.choose(c))
        menu.addSeparator()
        load = menu.addAction(LOAD_WEIGHTS_TEXT)
        load.setToolTip("Load a .pth (torchvision Mask R-CNN or official YOLACT) or a MaskScope .safetensors file")
        load.triggered.connect(self.ask_weights_file)
        manage = menu.addAction(MANAGE_MODELS_TEXT)
        manage.setToolTip("Download or install models: COCO Mask R-CNN, official YOLACT files")
        manage.triggered.connect(self.open_manager)
        device_menu = menu.addMenu("Device")
        device_menu.setToolTipsVisible(True)  # the disabled CUDA entry says why
        self.device_actions = {}
        for action in self.device_group.actions():
            self.device_group.removeAction(action)
        for key, label in DEVICES:
            action = device_menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(key == self.device)
            self.device_group.addAction(action)
            action.triggered.connect(lambda _c=False, k=key: self.set_device(k))
            self.device_actions[key] = action
        self._update_cuda_action()
        self.extra_menu_start = menu.addSeparator()

    # --- choices -----------------------------------------------------------------------------------
    def choices(self) -> list[ModelChoice]:
        """What the chooser lists: installed built-in models that did not fail, and loaded files."""
        builtin = [c for c in builtin_choices() if c.key not in self._failed and is_installed(c)]
        return [*builtin, *self._file_choices]

    def refresh(self) -> None:
        """Rebuild the chooser and the menu (a model was installed or removed)."""
        self._rebuild_combo()
        self._rebuild_menu()

    def open_manager(self) -> None:
        """Model > Manage models...: one dialog, kept while the window lives."""
        from app.model_manager import ModelManagerDialog

        if self._manager is None:
            self._manager = ModelManagerDialog(self.window)
            self._manager.installed.connect(self._on_installed)
            self._manager.useRequested.connect(self.choose)
        self._manager.refresh()
        self._manager.show()
        self._manager.raise_()
        self._manager.activateWindow()

    def _on_installed(self, key: str) -> None:
        self._failed.discard(key)
        self.refresh()

    def _display_label(self, choice: ModelChoice) -> str:
        if choice.key == DEMO_KEY and demo_is_placeholder():
            return "Demo model (untrained placeholder)"
        return choice.label

    def _rebuild_combo(self) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for choice in self.choices():
            self.combo.addItem(self._display_label(choice), choice.key)
            self.combo.setItemData(self.combo.count() - 1, _choice_tooltip(choice), Qt.ItemDataRole.ToolTipRole)
        self.combo.insertSeparator(self.combo.count())
        self.combo.addItem(LOAD_WEIGHTS_TEXT, "__load__")
        self.combo.addItem(MANAGE_MODELS_TEXT, "__manage__")
        self._sync_combo()
        self.combo.blockSignals(False)

    def _sync_combo(self) -> None:
        shown = self.requested or self.active
        if shown is not None:
            index = self.combo.findData(shown.key)
            if index >= 0:
                self.combo.blockSignals(True)
                self.combo.setCurrentIndex(index)
                self.combo.blockSignals(False)
        for action in self.menu_group.actions():
            action.setChecked(shown is not None and action.data() == shown.key)

    def _on_combo(self, index: int) -> None:
        key = self.combo.itemData(index)
        if key == "__load__":
            self._sync_combo()  # stay on the current model unless a file gets picked
            self.ask_weights_file()
            return
        if key == "__manage__":
            self._sync_combo()
            self.open_manager()
            return
        choice = next((c for c in self.choices() if c.key == key), None)
        if choice is not None:
            self.choose(choice)

    # --- loading -------------------------------------------------------------------------------------
    def choose(self, choice: ModelChoice | str) -> None:
        """Load ``choice`` (or a built-in key) in the worker; the current model stays until it is ready."""
        if isinstance(choice, str):
            found = choice_by_key(choice) or next((c for c in self._file_choices if c.key == choice), None)
            if found is None:
                raise KeyError(choice)
            choice = found
        self.requested = choice
        self.loading = True
        self._sync_combo()
        self.worker.load_model(LoadRequest(choice, self.device))
        self.statusChanged.emit()

    def use_segmenter(self, segmenter: object, label: str) -> None:
        """Use a segmenter built elsewhere (tests; a freshly fine-tuned model)."""
        arch = getattr(segmenter, "architecture", "") or "custom"
        choice = ModelChoice(f"custom:{label}", label, arch, getattr(segmenter, "config_name", None), None)
        if all(c.key != choice.key for c in self._file_choices):
            self._file_choices.append(choice)
            self._rebuild_combo()
            self._rebuild_menu()
        self.requested = choice
        self.loading = True
        self._sync_combo()
        self.worker.set_segmenter(choice, segmenter)
        self.statusChanged.emit()

    def ask_weights_file(self) -> None:
        start = self.settings.get_str("model/last_weights_dir", str(Path.home()))
        path = dialogs.get_open_file(
            self.window,
            "Load model weights",
            start,
            "Model weights (*.safetensors *.pth *.pt);;All files (*)",
        )
        if path:
            self.load_weights_file(path)

    def load_weights_file(self, path: str, architecture: str | None = None, config: str | None = None) -> None:
        """Load a user's weight file; for a ``.pth`` ask which model it is for unless given."""
        path = str(Path(path).resolve())
        self.settings.set("model/last_weights_dir", str(Path(path).parent))
        if path.endswith(".safetensors"):
            architecture, config = architecture or "checkpoint", config
        elif architecture is None:
            guess_arch, guess_config = guess_file_model(path)
            guess = next(
                (i for i, (_, a, c) in enumerate(FILE_KINDS) if (a, c) == (guess_arch, guess_config)),
                0,
            )
            answer = dialogs.ask_model_kind(self.window, Path(path).name, FILE_KINDS, guess)
            if answer is None:
                return
            architecture, config = answer
        # Listed in the chooser only once it has loaded (see _on_loaded).
        self.choose(choice_for_file(path, architecture, config))

    def set_device(self, device: str) -> None:
        if device == self.device:
            return
        self.device = device
        self.settings.set("model/device", device)
        for key, action in self.device_actions.items():
            action.setChecked(key == device)
        target = self.requested or self.active
        if target is not None:
            self.choose(target)  # rebuild on the new device
        self.statusChanged.emit()

    def _on_loaded(self, choice: ModelChoice, segmenter: object) -> None:
        self.active = choice
        self.segmenter = segmenter
        if self.requested is not None and self.requested.key == choice.key:
            self.loading = False
        if choice.weights and choice.key.startswith("file:"):
            self._remember_file(choice)
            if all(c.key != choice.key for c in self._file_choices):
                self._file_choices.append(choice)
                self.refresh()
        self._sync_combo()
        self.statusChanged.emit()
        self.modelReady.emit(segmenter)

    def _on_failed(self, choice: ModelChoice | None, message: str) -> None:
        if choice is not None and self.requested is not None and choice.key == self.requested.key:
            self.requested = self.active  # keep what works
            self.loading = False
            self._sync_combo()
        removed = self._drop_failed(choice, message) if choice is not None else ""
        self.statusChanged.emit()
        what = self._display_label(choice) if choice is not None else "the model"
        help_text = weights_help(choice) if choice is not None else ""
        kept = f"\n\nStill using: {self._display_label(self.active)}." if self.active is not None else ""
        dialogs.show_error(
            self.window,
            "Could not load model",
            f"Loading {what} failed.\n\n{menu_advice(message)}\n\n{help_text}{removed}{kept}",
        )

    def _drop_failed(self, choice: ModelChoice, message: str) -> str:
        """Take a model whose weights failed off the chooser; returns the sentence that says so."""
        if "CUDA" in message or "out of memory" in message:
            return ""  # the device failed, not the file: the model stays listed
        if choice.key.startswith("file:"):
            listed = any(c.key == choice.key for c in self._file_choices)
            self._file_choices = [c for c in self._file_choices if c.key != choice.key]
            self._forget_file(choice.weights)
            self.refresh()
            return "\n\nThe file was removed from the model chooser." if listed else ""
        if choice.key == DEMO_KEY or choice.key.startswith("custom:"):
            return ""
        listed = any(c.key == choice.key for c in self.choices())
        self._failed.add(choice.key)
        self.refresh()
        if not listed:
            return ""
        return f"\n\nIt was removed from the model chooser until it is installed again ({MANAGE_MODELS})."

    def _on_torch_ready(self, cuda: bool) -> None:
        self.cuda_available = cuda
        self.cuda_reason = ""
        if not cuda:
            from engine.device import cuda_unavailable_reason  # torch is imported by now: no cost

            self.cuda_reason = cuda_unavailable_reason() or "CUDA is not available."
        self._update_cuda_action()
        if self.device == "cuda" and not cuda:
            self.device = "auto"
        self.statusChanged.emit()

    def _update_cuda_action(self) -> None:
        action = self.device_actions.get("cuda")
        if action is None:
            return
        label = dict(DEVICES)["cuda"]
        action.setEnabled(self.cuda_available)
        action.setText(label if self.cuda_available else f"{label} (unavailable)")
        tip = "Run models on the GPU" if self.cuda_available else self.cuda_reason
        action.setToolTip(tip)
        action.setStatusTip(tip)

    # --- status text -----------------------------------------------------------------------------
    def status_text(self) -> str:
        if self.loading and self.requested is not None:
            return f"Model: {self._display_label(self.requested)} (loading\u2026)"
        if self.active is None:
            return "Model: none"
        return f"Model: {self._display_label(self.active)}"

    def device_text(self) -> str:
        device = getattr(self.segmenter, "device", None) if self.segmenter is not None else None
        if device is not None:
            return str(device).upper()
        return {"auto": "Auto device", "cpu": "CPU", "cuda": "CUDA"}.get(self.device, self.device)

    @property
    def is_placeholder(self) -> bool:
        return self.active is not None and self.active.key == DEMO_KEY and demo_is_placeholder()

    # --- remembered weight files -------------------------------------------------------------------
    def _remembered_files(self) -> list[str]:
        value: Any = self.settings.store.value("model/files", [])  # QSettings gives back whatever was stored
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v and Path(str(v).split("|", 2)[-1]).is_file()]

    def _add_file_choice(self, entry: str) -> None:
        arch, config, path = entry.split("|", 2) if entry.count("|") >= 2 else ("checkpoint", "", entry)
        self._file_choices.append(choice_for_file(path, arch, config or None))

    def _forget_file(self, path: str | None) -> None:
        entries = [e for e in self._remembered_files() if e.split("|", 2)[-1] != path]
        self.settings.set("model/files", entries)

    def _remember_file(self, choice: ModelChoice) -> None:
        entry = f"{choice.architecture}|{choice.config or ''}|{choice.weights}"
        entries = [e for e in self._remembered_files() if e.split("|", 2)[-1] != choice.weights]
        self.settings.set("model/files", [entry, *entries][:8])


def _choice_tooltip(choice: ModelChoice) -> str:
    if choice.weights and choice.key.startswith("file:"):
        return f"{choice.architecture} {choice.config or ''}\n{choice.weights}"
    return f"{choice.architecture} {choice.config or ''}".strip()
