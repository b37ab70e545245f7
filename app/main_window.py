"""The main window: canvas, file list, instance list, overlay controls, model chooser, workers.

Extension points for other panels and tools: ``current_image_path``, ``current_image``,
``current_prediction``, the ``instanceSelected(int)`` and ``predictionChanged`` signals, the one
selection of predictions and annotations (``selection``, ``select_key``),
``add_dock(dock, area)`` (listed in View > Panels), ``canvas.add_item`` / ``canvas.set_tool``,
and ``set_file_state(path, ...)`` for per-file marks in the file list.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMenu, QProgressBar, QToolBar, QToolButton

from app import dialogs
from app.canvas import ImageCanvas
from app.dock_scroll import scroll_when_too_big
from app.file_list import FileListDock
from app.icons import app_icon
from app.image_loader import DisplayImage, ImageCache, ImageLoader, normalise_path
from app.inference import InferenceWorker, PredictionResult
from app.instance_list import InstanceListDock
from app.instance_overlay import PreparedOverlay, prepare_overlay
from app.model_controller import ModelController
from app.overlay_controls import OverlayControlsDock
from app.selection import PREDICTION, ItemKey, Selection, prediction_index, prediction_key
from app.settings import AppSettings
from app.window_actions import build_actions

APP_NAME = "MaskScope"


class MainWindow(QMainWindow):
    instanceSelected = Signal(int)  # selected prediction: index into current_prediction.instances; -1 for none
    predictionChanged = Signal()  # the prediction shown for the current image changed
    imageShown = Signal(str)  # a newly current image is on screen
    imageFailed = Signal(str, str)  # path, message: the file could not be opened
    predictionArrived = Signal(str)  # a prediction for this path was stored (and shown if current)
    folderRunFinished = Signal(int, int, bool)  # done, total, cancelled

    def __init__(self, settings: AppSettings | None = None, torch_threads: int | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks
            | QMainWindow.DockOption.AllowTabbedDocks
            | QMainWindow.DockOption.AllowNestedDocks
        )

        # --- state -----------------------------------------------------------------------------
        self.files: list[str] = []
        self._current_path: str | None = None
        self._display: DisplayImage | None = None  # the decoded current image, once loaded
        self.predictions: dict[str, object] = {}  # path -> engine Prediction
        self._prepared: dict[str, PreparedOverlay] = {}  # path -> outlines/areas (from the worker)
        self._prediction_model: dict[str, str] = {}  # path -> model key that made it
        self.selection = Selection(self)  # the one selection: a prediction or an annotation
        self._selected = -1  # prediction index last announced by instanceSelected
        self._explicit_open: str | None = None  # a file the user opened by name: errors get a dialog
        self._run_started: dict[str, float] = {}  # path -> time Run was asked, for the status bar
        self._folder_total = 0
        self._folder_errors: list[str] = []
        self._auto_run_pending: str | None = None

        # --- workers -----------------------------------------------------------------------------
        self.loader = ImageLoader(self)
        self.cache = ImageCache()
        self.worker = InferenceWorker(self, torch_threads=torch_threads)
        self.models = ModelController(self.worker, self.settings, self)

        # --- widgets ------------------------------------------------------------------------------
        self.canvas = ImageCanvas(self)
        self.setCentralWidget(self.canvas)
        self.file_list = FileListDock(self)
        self.instance_list = InstanceListDock(self)
        self.overlay_controls = OverlayControlsDock(self)
        self._panels: list[QDockWidget] = []
        for dock in (self.file_list, self.overlay_controls, self.instance_list):
            scroll_when_too_big(dock)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.file_list)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.overlay_controls)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.instance_list)
        self._panels += [self.file_list, self.overlay_controls, self.instance_list]
        self._docks_sized = False
        self._build_status_bar()
        self.actions_ = build_actions(self)
        for dock in self._panels:
            self._list_panel(dock)

        # --- connections ----------------------------------------------------------------------------
        self.loader.loaded.connect(self._on_image_loaded)
        self.loader.failed.connect(self._on_image_failed)
        self.worker.predictionReady.connect(self._on_prediction_ready)
        self.worker.predictionFailed.connect(self._on_prediction_failed)
        self.worker.progress.connect(self._on_progress)
        self.worker.folderFinished.connect(self._on_folder_finished)
        self.worker.busyChanged.connect(self._on_busy)
        self.models.statusChanged.connect(self._update_model_status)
        self.models.statusChanged.connect(self._maybe_auto_run)
        self.models.modelReady.connect(self._on_model_ready)
        self.file_list.fileActivated.connect(self.show_file)
        self.selection.changed.connect(self._on_selection_changed)
        self.instance_list.itemSelected.connect(self.select_key)
        self.instance_list.visibilityToggled.connect(self.set_instance_visible)
        self.instance_list.itemActivated.connect(self._center_on_item)
        self.canvas.instanceClicked.connect(self.select_key)
        self.canvas.instanceHovered.connect(self._on_hover)
        self.canvas.zoomChanged.connect(lambda pct: self.zoom_label.setText(f"{pct:.0f} %"))
        self.canvas.pixelHovered.connect(self._on_pixel_hovered)
        self.overlay_controls.opacityChanged.connect(self.set_opacity)
        self.overlay_controls.thresholdChanged.connect(self.set_score_threshold)

        # Panels built on the window's extension points (each package owns its docks and menus).
        from app.demo_banner import install_demo_banner
        from app.editing import install_editing
        from app.inspectors import install_inspectors
        from app.training import install_training

        self.editing = install_editing(self)
        from app.editing.class_panel import install_class_panel  # issue 10: the Classes dock

        install_class_panel(self)
        self.inspector_docks = install_inspectors(self)
        install_training(self)
        self.demo_banner = install_demo_banner(self)
        self._stack_toolbars()
        self._tab_rarely_used_panels()

        self._restore_settings()
        self._update_title()
        self._update_model_status()

    # ------------------------------------------------------------------------------------------------
    # Public API for panels and tools
    # ------------------------------------------------------------------------------------------------
    @property
    def current_image_path(self) -> str | None:
        return self._current_path

    @property
    def current_image(self) -> np.ndarray | None:
        """The current image as RGB uint8 (H, W, 3), or None while it loads or when it failed."""
        if self._display is not None and self._display.path == self._current_path:
            return self._display.rgb
        return None

    @property
    def current_prediction(self):
        return self.predictions.get(self._current_path) if self._current_path else None

    def _shown_prediction(self):
        """The current prediction when its image is on screen (not while the next image loads)."""
        return self.current_prediction if self.current_image is not None else None

    @property
    def selected_instance(self) -> int:
        """The selected prediction's index; -1 when none (nothing, or an annotation, is selected)."""
        return prediction_index(self.selection.key)

    @property
    def score_threshold(self) -> float:
        return self.overlay_controls.threshold

    def add_dock(self, dock: QDockWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> None:
        """Add a panel; it is listed in View > Panels."""
        if not dock.objectName():
            dock.setObjectName(type(dock).__name__)
        scroll_when_too_big(dock)
        self.addDockWidget(area, dock)
        self._panels.append(dock)
        self._list_panel(dock)

    def set_file_state(self, path: str, **marks) -> None:
        """Per-file marks in the file list (``predicted``, ``annotated``, ``error``)."""
        self.file_list.set_state(normalise_path(path), **marks)

    def set_prediction(
        self, path: str, prediction, prepared: PreparedOverlay | None = None, model_key: str = "", store: bool = True
    ) -> None:
        """Keep ``prediction`` for ``path`` and show it if ``path`` is current.

        ``store``: also store it in the image's project as part of a prediction run (what the
        model just made; False for predictions read back from the store). ``prepared`` (outlines,
        areas, mask layer) comes from the worker; without it, it is computed here.
        """
        path = normalise_path(path)
        review = getattr(getattr(self, "editing", None), "review", None)
        if store and review is not None:
            review.store(path, prediction, model_key)  # committed on the project's writer thread
        self.predictions[path] = prediction
        if prepared is not None and len(prepared.paths) == len(prediction.instances):
            if path != self._current_path:
                prepared.fill = None  # composited for display now; not kept for images not on screen
            self._prepared[path] = prepared
        else:
            self._prepared.pop(path, None)
        self._prediction_model[path] = model_key
        self.file_list.set_state(path, predicted=True, error=None)
        if path == self._current_path and self._display is not None:
            self._show_prediction()

    def forget_prediction(self, path: str) -> None:
        """Drop the prediction held for ``path`` (another stored run is reviewed now)."""
        path = normalise_path(path)
        self.predictions.pop(path, None)
        self._prepared.pop(path, None)
        self._prediction_model.pop(path, None)
        if path == self._current_path:
            self._show_prediction()

    def reorder_files(self, files: list[str]) -> None:
        """The same files in another order (the review order); the current image stays."""
        self._set_files(files)  # the file list keeps each path's marks
        self.file_list.set_current(self._current_path)

    # ------------------------------------------------------------------------------------------------
    # Opening files
    # ------------------------------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        """Open what the user dropped or passed on the command line: a folder, an image, or several."""
        paths = [p for p in paths if p]
        if not paths:
            return
        if len(paths) == 1:
            p = Path(paths[0])
            if p.is_dir():
                self.open_folder(str(p))
            else:
                self.open_image(str(p))
            return
        from engine.imageio import list_images

        files: list[str] = []
        for p in map(Path, paths):
            if p.is_dir():
                files += [str(f) for f in list_images(p)]
            else:
                files.append(str(p))
        self._set_files([normalise_path(f) for f in files])
        if self.files:
            self.show_file(self.files[0])

    def open_image(self, path: str) -> None:
        """Open one image; the file list shows the other images of its folder."""
        from engine.imageio import list_images

        path = normalise_path(path)
        if not Path(path).exists():
            dialogs.show_error(self, "Cannot open image", f"{path} does not exist.")
            return
        try:
            siblings = [normalise_path(f) for f in list_images(Path(path).parent)]
        except OSError:
            siblings = []
        self._set_files(siblings if path in siblings else [path])
        self._explicit_open = path  # joins Open Recent once it has opened (_on_image_loaded)
        self.show_file(path)

    def open_folder(self, folder: str) -> None:
        from engine.errors import MaskScopeError
        from engine.imageio import SUPPORTED_FORMATS_TEXT, list_images

        folder = normalise_path(folder)
        try:
            files = [normalise_path(f) for f in list_images(folder)]
        except (OSError, MaskScopeError) as exc:
            dialogs.show_error(self, "Cannot open folder", f"Could not list {folder}: {exc}")
            return
        self._set_files(files)
        if files:
            self.settings.add_recent(folder)  # only folders that had something to open
        if not files:
            self._show_nothing()
            self.statusBar().showMessage(f"No images in {folder} (looked for {SUPPORTED_FORMATS_TEXT}).", 8000)
            return
        self.show_file(files[0])

    def ask_open_image(self) -> None:
        from engine.imageio import image_file_filter

        start = str(Path(self._current_path).parent) if self._current_path else self._last_dir()
        path = dialogs.get_open_file(
            self,
            "Open image",
            start,
            image_file_filter(),
        )
        if path:
            self.settings.set("paths/last_dir", str(Path(path).parent))
            self.open_image(path)

    def ask_open_folder(self) -> None:
        folder = dialogs.get_folder(self, "Open folder", self._last_dir())
        if folder:
            self.settings.set("paths/last_dir", folder)
            self.open_folder(folder)

    def _last_dir(self) -> str:
        return self.settings.get_str("paths/last_dir", str(Path.home()))

    def _set_files(self, files: list[str]) -> None:
        self.files = files
        self.file_list.set_files(files)
        for path in files:
            if path in self.predictions:
                self.file_list.set_state(path, predicted=True)
        self._update_nav_actions()

    # ------------------------------------------------------------------------------------------------
    # Navigation and display
    # ------------------------------------------------------------------------------------------------
    def show_file(self, path: str) -> None:
        """Make ``path`` current: shown at once when cached, else when the loader has decoded it."""
        path = normalise_path(path)
        if path == self._current_path and self.current_image is not None:
            return
        self._current_path = path
        self.file_list.set_current(path)
        self._update_nav_actions()
        self._update_title()
        cached = self.cache.get(path)
        if cached is not None:
            self._display_image(cached)
        else:
            # The previous photo stays up until the new one is decoded (no flash), but its masks
            # go at once: they belong to another image.
            self._show_prediction()
            self.statusBar().showMessage(f"Loading {Path(path).name}\u2026")
            self.loader.request(path)

    def next_image(self) -> None:
        self._step(1)

    def previous_image(self) -> None:
        self._step(-1)

    def first_image(self) -> None:
        if self.files:
            self.show_file(self.files[0])

    def last_image(self) -> None:
        if self.files:
            self.show_file(self.files[-1])

    def _step(self, delta: int) -> None:
        if not self.files:
            return
        try:
            i = self.files.index(self._current_path)
        except ValueError:
            i = -1 if delta > 0 else len(self.files)
        j = min(max(i + delta, 0), len(self.files) - 1)
        if j != i:
            self.show_file(self.files[j])

    def _on_image_loaded(self, path: str, image: DisplayImage) -> None:
        self.cache.put(image)
        self.file_list.set_state(path, error=None)
        if path == self._current_path:
            self._display_image(image)

    def _on_image_failed(self, path: str, message: str) -> None:
        self.file_list.set_state(path, error=message)
        if path != self._current_path:
            return
        self._show_nothing(f"Cannot open {Path(path).name}")
        self.statusBar().showMessage(f"Cannot open {Path(path).name}: {message}", 15000)
        self.imageFailed.emit(path, message)
        if self._explicit_open == path:
            self._explicit_open = None
            dialogs.show_error(
                self,
                "Cannot open image",
                f"{message}\n\nThe file is marked in the file list; the other images stay available.",
            )

    def _display_image(self, image: DisplayImage) -> None:
        self._display = image
        if self._explicit_open is not None and self._explicit_open == image.path:
            self.settings.add_recent(image.path)  # Open Recent lists only files that opened
        self._explicit_open = None
        self.canvas.set_message("")
        self.canvas.set_image(image)
        h, w = image.size
        self.size_label.setText(f"{w} \u00d7 {h}")
        self.statusBar().clearMessage()
        self._show_prediction()
        self._update_title()
        self.imageShown.emit(image.path)
        self._maybe_auto_run()
        self._prefetch_neighbours()

    def _show_nothing(self, message: str = "") -> None:
        self._display = None
        self.canvas.set_image(None)
        self.canvas.set_message(message)
        self.size_label.setText("")
        self._show_prediction()

    def _prefetch_neighbours(self) -> None:
        # Decode the next image while the user looks at this one: stepping forward is instant.
        if self._current_path not in self.files:
            return
        i = self.files.index(self._current_path)
        for j in (i + 1,):
            if (
                0 <= j < len(self.files)
                and self.files[j] not in self.cache
                and not self.file_list.state(self.files[j]).error
            ):
                self.loader.request(self.files[j])

    # ------------------------------------------------------------------------------------------------
    # Prediction display, threshold, visibility and selection
    # ------------------------------------------------------------------------------------------------
    def _show_prediction(self) -> None:
        pred = self._shown_prediction()
        if self.selected_instance >= 0:
            self.select_key(None)
        if pred is None or self._display is None:
            self.canvas.overlay.clear_predictions()
            self.instance_list.set_predictions([], np.zeros(0), np.zeros(0), np.zeros((0, 3), np.uint8), [])
        else:
            path = self._current_path
            instances = pred.instances
            masks = [inst.mask for inst in instances]
            boxes = np.array([inst.box for inst in instances], np.float32).reshape(-1, 4)
            names = [pred.class_name(inst) for inst in instances]
            scores = np.array([inst.score for inst in instances], np.float32)
            prepared = self._prepared.get(path)
            if prepared is None:
                prepared = self._prepared[path] = prepare_overlay(masks, self._display.size, None)
            self.canvas.overlay.set_predictions(
                masks, boxes, names, scores, self._display.size, prepared, self._visible_mask()
            )
            prepared.fill = None  # used once; the overlay item holds the layer now
            self.instance_list.set_threshold(self.score_threshold)
            states = self._review_states(path, len(instances))
            self.instance_list.set_predictions(names, scores, prepared.areas, self.canvas.overlay.colors, states)
        self.canvas.setToolTip("")
        self._update_instance_actions()
        self.predictionChanged.emit()
        self.instanceSelected.emit(-1)

    def _scores(self) -> np.ndarray:
        pred = self._shown_prediction()
        if pred is None:
            return np.zeros(0, np.float32)
        return np.array([inst.score for inst in pred.instances], np.float32)

    def _pending(self, path: str | None, count: int) -> np.ndarray:
        """Which predictions of ``path`` are still to review: the store says (all without a project)."""
        review = getattr(getattr(self, "editing", None), "review", None)
        return review.pending(path, count) if review is not None else np.ones(count, bool)

    def _review_states(self, path: str | None, count: int) -> list[str]:
        review = getattr(getattr(self, "editing", None), "review", None)
        return review.states(path, count) if review is not None else ["pending"] * count

    def _visible_mask(self) -> np.ndarray:
        """Shown predictions: still pending review and at or above the score threshold."""
        scores = self._scores()
        return (scores >= self.score_threshold) & self._pending(self._current_path, len(scores))

    def refresh_prediction_view(self) -> None:
        """Re-read review states after they changed: overlay, list check boxes, selection."""
        pred = self._shown_prediction()
        if pred is None:
            return
        n = len(pred.instances)
        pending = self._pending(self._current_path, n)
        self.instance_list.set_review_states(self._review_states(self._current_path, n))
        self.canvas.overlay.set_visible(self._visible_mask())
        self._update_instance_actions()
        selected = self.selected_instance
        if 0 <= selected < n and not pending[selected]:
            self.select_key(None)  # it was just accepted or rejected

    def set_score_threshold(self, threshold: float) -> None:
        """Filter instances live: masks are recomposited, the list hides rows below it."""
        if abs(self.overlay_controls.threshold - threshold) > 1e-9:
            self.overlay_controls.threshold_slider.setValue(round(threshold * 100))
            return  # the slider's signal comes back here
        self.settings.set("overlay/threshold", threshold)
        if self._shown_prediction() is None:
            return
        visible = self._visible_mask()
        self.canvas.overlay.set_visible(visible)
        self.instance_list.set_threshold(threshold)
        selected = self.selected_instance
        if 0 <= selected < len(visible) and not visible[selected]:
            self.select_key(None)

    def set_opacity(self, opacity: float) -> None:
        """Fill opacity: only the mask layer's item opacity changes, nothing is recomposited."""
        if abs(self.overlay_controls.opacity - opacity) > 1e-9:
            self.overlay_controls.opacity_slider.setValue(round(opacity * 100))
            return
        self.canvas.overlay.set_opacity(opacity)
        self.settings.set("overlay/opacity", opacity)

    def set_instance_visible(self, index: int, visible: bool) -> None:
        """Unticking a prediction rejects it, ticking a rejected one puts it back to review (undoable)."""
        review = getattr(getattr(self, "editing", None), "set_prediction_reviews", None)
        if review is not None and self._shown_prediction() is not None:
            review([index], "pending" if visible else "rejected")
        self.refresh_prediction_view()

    def show_all_instances(self) -> None:
        """Put every rejected prediction of the image back to review."""
        pred = self._shown_prediction()
        review = getattr(getattr(self, "editing", None), "set_prediction_reviews", None)
        if pred is not None and review is not None:
            states = self._review_states(self._current_path, len(pred.instances))
            review([i for i, s in enumerate(states) if s == "rejected"], "pending")

    def hide_selected_instance(self) -> None:
        if self.selected_instance >= 0:
            self.set_instance_visible(self.selected_instance, False)

    def select_instance(self, index: int) -> None:
        """Select prediction ``index`` in the canvas and the list; -1 drops a selected prediction
        (a selected annotation stays)."""
        pred = self._shown_prediction()
        if pred is not None and 0 <= index < len(pred.instances):
            self.select_key(prediction_key(index))
        elif self.selected_instance >= 0:
            self.select_key(None)

    def select_key(self, key: ItemKey | None) -> None:
        """The one selection: a prediction, an annotation (``app.selection`` keys) or nothing."""
        if key is not None and key[0] == PREDICTION:
            pred = self._shown_prediction()
            if pred is None or not 0 <= key[1] < len(pred.instances):
                key = None
        self.selection.set(key)

    def _on_selection_changed(self, key: ItemKey | None) -> None:
        self.canvas.overlay.set_selected(key)
        self.instance_list.select(key)
        self._update_instance_actions()
        index = prediction_index(key)
        pred = self._shown_prediction()
        if index >= 0 and pred is not None:
            inst = pred.instances[index]
            self.statusBar().showMessage(
                f"Selected #{index + 1}: {pred.class_name(inst)}  score {inst.score:.3f}  area {inst.area:,} px", 8000
            )
        if index != self._selected:
            self._selected = index
            self.instanceSelected.emit(index)

    def _annotation(self, instance_id: int):
        ann = getattr(getattr(self, "editing", None), "annotations", None)
        return ann.find(instance_id) if ann is not None else None

    def _center_on_item(self, key: ItemKey) -> None:
        """Double click in the list: centre a prediction; relabel an annotation."""
        if key[0] != PREDICTION:
            relabel = getattr(getattr(self, "editing", None), "relabel", None)
            if relabel is not None:
                relabel(key[1])
            return
        pred = self._shown_prediction()
        if pred is None or not 0 <= key[1] < len(pred.instances):
            return
        x1, y1, x2, y2 = (float(v) for v in pred.instances[key[1]].box)
        self.canvas.centerOn((x1 + x2) / 2, (y1 + y2) / 2)

    def _on_hover(self, key: ItemKey | None) -> None:
        text, tip = "", ""
        index = prediction_index(key)
        pred = self._shown_prediction()
        if pred is not None and 0 <= index < len(pred.instances):
            inst = pred.instances[index]
            text = f"#{index + 1} {pred.class_name(inst)}  {inst.score:.2f}"
            tip = f"{text}\narea {inst.area:,} px"
        elif key is not None and key[0] != PREDICTION:
            found = self._annotation(key[1])
            if found is not None:
                text = f"annotation #{found.id} {found.category}"
                tip = f"{text}\narea {found.area:,} px ({found.source})"
        self.hover_label.setText(text)
        self.canvas.viewport().setToolTip(tip)

    def _on_pixel_hovered(self, x: int, y: int) -> None:
        self.position_label.setText(f"x {x}, y {y}" if x >= 0 else "")

    # ------------------------------------------------------------------------------------------------
    # Inference
    # ------------------------------------------------------------------------------------------------
    def run_current(self) -> None:
        """Run the chosen model on the current image in the worker thread."""
        path, image = self._current_path, self.current_image
        if path is None or image is None:
            self.statusBar().showMessage("Open an image first (Ctrl+O).", 5000)
            return
        if self.models.requested is None and self.models.active is None:
            dialogs.show_error(self, "No model", "Choose a model in the Model menu first.")
            return
        self._run_started[path] = time.perf_counter()
        self.statusBar().showMessage(f"Running on {Path(path).name}\u2026")
        # Single-image runs keep the model's internals for the RoI inspector / prototype viewer.
        self.worker.predict(path, image, self.score_threshold, trace=True)

    def run_folder(self) -> None:
        """Run on every image of the file list (skipping those the current model already did)."""
        if not self.files:
            self.statusBar().showMessage("Open a folder first (Ctrl+Shift+O).", 5000)
            return
        if self._folder_total:
            self.statusBar().showMessage("A folder run is in progress; cancel it first.", 5000)
            return
        model = self.models.requested or self.models.active
        key = model.key if model is not None else ""
        review = getattr(getattr(self, "editing", None), "review", None)
        if review is not None:  # a folder run is one stored run: resumed, or a new one
            todo = review.plan_folder_run(self.files, key)
        else:
            todo = [p for p in self.files if self._prediction_model.get(p) != key or p not in self.predictions]
        if not todo:
            self.statusBar().showMessage("Every image already has a prediction from this model.", 5000)
            return
        self._folder_total = len(todo)
        self._folder_errors = []
        self.progress_bar.setRange(0, len(todo))
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"%v / {len(todo)}")
        self.progress_bar.show()
        self.cancel_button.show()
        self.actions_.cancel.setEnabled(True)
        self.worker.predict_folder(todo, self.score_threshold)

    def cancel_folder_run(self) -> None:
        self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self.statusBar().showMessage("Cancelling after the current image\u2026")

    @property
    def folder_run_active(self) -> bool:
        return self.progress_bar.isVisible() or self._folder_total > 0

    def _on_prediction_ready(self, result: PredictionResult) -> None:
        pred = result.prediction
        if pred.trace is not None:
            # A trace holds the FPN features (~90 MB for a COCO R50): keep only the newest one.
            for other in self.predictions.values():
                if other is not pred and getattr(other, "trace", None) is not None:
                    other.trace = None
        key = self.models.active.key if self.models.active else ""
        self.set_prediction(result.path, pred, result.overlay, key)
        started = self._run_started.pop(result.path, None)
        total = time.perf_counter() - started if started is not None else result.seconds_total
        self.time_label.setText(f"{pred.seconds * 1000:.0f} ms")
        self.time_label.setToolTip(f"Model: {pred.seconds:.3f} s; request to result on screen: {total:.3f} s")
        if result.path == self._current_path and not self._folder_total:
            n, thr = len(pred.above(self.score_threshold)), self.score_threshold
            self.statusBar().showMessage(
                f"{len(pred.instances)} instances ({n} at score \u2265 {thr:.2f}) in {pred.seconds:.2f} s", 8000
            )
        self.predictionArrived.emit(result.path)

    def _on_prediction_failed(self, path: str, message: str) -> None:
        self._run_started.pop(path, None)
        if self._folder_total:
            self._folder_errors.append(path)
            self.file_list.set_state(path, error=message)
            self.statusBar().showMessage(f"{Path(path).name}: {message}", 8000)
            return
        self.statusBar().showMessage(f"Inference failed: {message}", 8000)
        dialogs.show_error(self, "Inference failed", message)

    def _on_progress(self, done: int, total: int, path: str) -> None:
        self.progress_bar.setValue(done)
        if path:
            self.statusBar().showMessage(f"Running on {Path(path).name} ({done + 1} of {total})\u2026")

    def _on_folder_finished(self, done: int, total: int, cancelled: bool) -> None:
        self._folder_total = 0
        self.progress_bar.hide()
        self.cancel_button.hide()
        self.cancel_button.setEnabled(True)
        self.actions_.cancel.setEnabled(False)
        errors = f", {len(self._folder_errors)} could not be read" if self._folder_errors else ""
        if cancelled:
            self.statusBar().showMessage(f"Cancelled after {done} of {total} images{errors}.", 10000)
        else:
            self.statusBar().showMessage(f"Ran on {total} images{errors}.", 10000)
        self.folderRunFinished.emit(done, total, cancelled)

    def _on_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy and not self.progress_bar.isVisible())

    def _on_model_ready(self, _segmenter: object) -> None:
        self._update_title()

    def use_segmenter(self, segmenter: object, label: str) -> None:
        """Use an already built segmenter (tests; a model that training just produced)."""
        self.models.use_segmenter(segmenter, label)

    # ------------------------------------------------------------------------------------------------
    # Window chrome
    # ------------------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # indeterminate: a model is loading or running
        self.busy_bar.setMaximumWidth(80)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setToolTip("The model is busy")
        self.busy_bar.hide()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(180)
        self.progress_bar.setToolTip("Folder run progress")
        self.progress_bar.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop the folder run after the current image")
        self.cancel_button.clicked.connect(self.cancel_folder_run)
        self.cancel_button.hide()
        self.hover_label = QLabel()
        self.position_label = QLabel()
        self.size_label = QLabel()
        self.size_label.setToolTip("Image size (width \u00d7 height)")
        self.zoom_label = QLabel()
        self.zoom_label.setToolTip("Zoom: 100 % shows one image pixel per screen pixel")
        self.model_label = QLabel()
        self.device_label = QLabel()
        self.device_label.setToolTip("Device the model runs on (Model \u25b8 Device)")
        self.time_label = QLabel("\u2013 ms")
        self.time_label.setToolTip("Time of the last model run")
        for w in (
            self.busy_bar,
            self.progress_bar,
            self.cancel_button,
            self.hover_label,
            self.position_label,
            self.size_label,
            self.zoom_label,
            self.model_label,
            self.device_label,
            self.time_label,
        ):
            bar.addPermanentWidget(w)

    def _list_panel(self, dock: QDockWidget) -> None:
        menu: QMenu = self.actions_.panels_menu
        action = dock.toggleViewAction()
        action.setText(dock.windowTitle().split(" (")[0])
        menu.addAction(action)

    def _update_title(self) -> None:
        parts = []
        if self._current_path:
            parts.append(Path(self._current_path).name)
        parts.append(APP_NAME)
        if self.models.is_placeholder:
            parts.append("demo model: untrained placeholder")
        self.setWindowTitle(" \u2014 ".join(parts))

    def _update_model_status(self) -> None:
        self.model_label.setText(self.models.status_text())
        seg = self.models.segmenter
        self.model_label.setToolTip(seg.describe() if seg is not None and hasattr(seg, "describe") else "")
        self.device_label.setText(self.models.device_text())
        self._update_title()

    def _update_nav_actions(self) -> None:
        a = self.actions_
        has = bool(self.files)
        i = self.files.index(self._current_path) if self._current_path in self.files else -1
        a.previous.setEnabled(has and i > 0)
        a.next.setEnabled(has and i < len(self.files) - 1)
        a.run_folder.setEnabled(has)

    def _update_instance_actions(self) -> None:
        a = self.actions_
        a.hide_selected.setEnabled(self.selected_instance >= 0)
        a.show_all.setEnabled(self._shown_prediction() is not None)

    def _stack_toolbars(self) -> None:
        """Each top toolbar on a row of its own: side by side they need ~1800 px, more than the window
        has on common screens (and at 200 % scaling), and Qt would hide the tail in an overflow menu."""
        top = [bar for bar in self.findChildren(QToolBar) if self.toolBarArea(bar) == Qt.ToolBarArea.TopToolBarArea]
        for bar in top[1:]:
            self.insertToolBarBreak(bar)

    def _tab_rarely_used_panels(self) -> None:
        """First-run layout: the Classes panel is a tab behind the annotations (or the instances), so
        the right column stacks three panels, not four, on a small screen. A saved layout wins."""
        classes = self.findChild(QDockWidget, "ClassDock")
        host = self.findChild(QDockWidget, "AnnotationDock") or self.instance_list
        if classes is not None and host is not classes and self.dockWidgetArea(classes) == self.dockWidgetArea(host):
            self.tabifyDockWidget(host, classes)
            host.raise_()

    # --- settings ------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.settings
        from app.theme import SETTINGS_KEY, apply_theme

        if s.get_str(SETTINGS_KEY, "system") != "system":
            apply_theme(s.get_str(SETTINGS_KEY, "system"))
        self.overlay_controls.set_values(s.get_float("overlay/opacity", 0.5), s.get_float("overlay/threshold", 0.5))
        self.canvas.overlay.set_opacity(self.overlay_controls.opacity)
        a, overlay = self.actions_, self.canvas.overlay
        for action, key, default, apply in (
            (a.show_outlines, "overlay/outlines", True, overlay.set_show_outlines),
            (a.show_boxes, "overlay/boxes", False, overlay.set_show_boxes),
            (a.show_labels, "overlay/labels", True, overlay.set_show_labels),
            (a.show_scores, "overlay/scores", True, overlay.set_show_scores),
        ):
            action.setChecked(s.get_bool(key, default))
            apply(action.isChecked())
        geometry = s.get_bytes("window/geometry")
        if geometry:
            self.restoreGeometry(QByteArray(geometry))
        else:
            screen = self.screen().availableGeometry() if self.screen() is not None else None
            w, h = (
                (1440, 900)
                if screen is None
                else (min(1440, screen.width() * 9 // 10), min(900, screen.height() * 9 // 10))
            )
            self.resize(w, h)
        state = s.get_bytes("window/state")
        if state:
            self.restoreState(QByteArray(state))

    def save_settings(self) -> None:
        s = self.settings
        s.set("window/geometry", self.saveGeometry())
        s.set("window/state", self.saveState())
        a = self.actions_
        s.set("overlay/outlines", a.show_outlines.isChecked())
        s.set("overlay/boxes", a.show_boxes.isChecked())
        s.set("overlay/labels", a.show_labels.isChecked())
        s.set("overlay/scores", a.show_scores.isChecked())
        s.set("overlay/opacity", self.overlay_controls.opacity)
        s.set("overlay/threshold", self.overlay_controls.threshold)
        s.sync()

    def shutdown(self) -> None:
        """Stop the background threads (the window can be closed or dropped safely afterwards)."""
        training = getattr(self, "training", None)
        if training is not None:
            training.shutdown()
        self.worker.shutdown()
        self.loader.shutdown()
        files = getattr(getattr(self, "editing", None), "files", None)
        if files is not None:
            files.shutdown()  # commits what is queued and closes the project stores

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._docks_sized and not self.settings.get_bytes("window/state"):
            # First run: dock sizes only take effect once the window has its real size.
            self._docks_sized = True
            controls_h = self.overlay_controls.widget().sizeHint().height() + 30
            self.resizeDocks([self.overlay_controls], [controls_h], Qt.Orientation.Vertical)
            # Wide enough for the overlay controls and the class buttons without a horizontal scroll
            # bar, but never more than a third of the window (1366x768, 200 % scaling).
            width = self.width()
            left, right = min(260, width * 21 // 100), min(390, width * 8 // 25)
            self.resizeDocks([self.file_list, self.instance_list], [left, right], Qt.Orientation.Horizontal)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

    # --- drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            # Open after the drop returns so a dialog never runs inside the drag-and-drop loop.
            QTimer.singleShot(0, lambda: self.open_paths(paths))

    def request_auto_run(self, path: str) -> None:
        """Run the model on ``path`` as soon as it is shown and a model is chosen (start-up demo)."""
        self._auto_run_pending = normalise_path(path)
        self._maybe_auto_run()

    def _maybe_auto_run(self) -> None:
        # The demo model is chosen after the first paint; a small image can be on screen before.
        path = self._auto_run_pending
        if path is None or self._display is None or self._display.path != path:
            return
        if self.models.requested is None and self.models.active is None:
            return  # models.statusChanged calls again once one is chosen
        self._auto_run_pending = None
        self.run_current()
