"""Fine-tuning from the app: the Train menu, the Training dock, and the worker process behind them.

A run: the dock's settings become a ``TrainJob`` (engine.training.worker_main) written into a
fresh run folder; training on the current project names its folder, and the worker reads the
project store itself in one read transaction (every edit is committed there, so nothing is
serialised on the GUI thread, and edits made meanwhile do not change a run already going). The
run is recorded in the store (``Project.add_training_run`` / ``finish_training_run``).
``TrainingProcess`` starts the worker and turns its JSON lines into ``message`` signals, handled
here on the GUI thread without ever waiting. The window stays fully usable while it runs.
A cancelled or failed run can be resumed from its last checkpoint (same folder, optimizer state
restored). "Use these weights" hands the checkpoint to the model chooser, which loads it in the
inference worker like any other weight file, then offers to predict the project's images not
reviewed yet into a new prediction run, in the background (``PredictRestJob``).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject, QStandardPaths, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QMenu

from app.training.dock import TrainingDock
from app.training.options import format_ap
from app.training.predict_rest import PredictRestJob, names_to_predict
from app.training.process import TrainingProcess
from app.training.setup_form import SOURCE_PROJECT, RunSettings
from engine.errors import MaskScopeError
from engine.training.worker_main import TrainJob

if TYPE_CHECKING:
    from app.main_window import MainWindow
    from engine.project import Project

SHOW_SHORTCUT = "Ctrl+Shift+T"
TAIL_LINES = 12  # stderr lines quoted when the worker dies without a word


def default_runs_dir() -> str:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return str(Path(base or Path.home() / ".maskscope") / "training_runs")


class TrainingController(QObject):
    runStarted = Signal(str)  # run folder
    runFinished = Signal(str)  # "done", "cancelled" or "error"
    weightsRequested = Signal(str)  # checkpoint handed to the model chooser
    predictionRunAdded = Signal(int)  # a prediction run of the current project was written (its id)

    def __init__(self, window: MainWindow, kill_timeout_ms: int = 120_000) -> None:
        super().__init__(window)
        self.window = window
        self.worker_threads = max(1, (os.cpu_count() or 2) - 1)  # one core left for the GUI
        self.dock = TrainingDock(window.settings, default_runs_dir(), window)
        window.add_dock(self.dock, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.dock.hide()
        self.process = TrainingProcess(self, kill_timeout_ms)

        # state of the current / last run
        self.run_dir: Path | None = None
        self.checkpoint: str | None = None
        self.before: dict | None = None
        self.after: dict | None = None
        self.outcome: str | None = None  # None while running; "done", "cancelled", "error"
        self.setup_info: dict = {}
        self.last_progress: dict | None = None
        self._run_text = ""  # what the run is, for the status line
        self._results_text = ""
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._store_run: tuple[Project, int] | None = None  # (project, training run id in its store)
        self._job_path: Path | None = None
        self.predict_job = PredictRestJob(self)
        self._predict_project = None

        self._build_menu()
        d = self.dock
        d.start_button.clicked.connect(self.start)
        d.resume_button.clicked.connect(self.resume)
        d.cancel_button.clicked.connect(self.cancel)
        d.predict_cancel.clicked.connect(self.predict_job.cancel)
        self.predict_job.progress.connect(self._on_predict_progress)
        self.predict_job.finished.connect(self._on_predict_finished)
        self.predict_job.failed.connect(self._on_predict_failed)
        d.use_button.clicked.connect(self.use_weights)
        d.open_button.clicked.connect(self.open_run_folder)
        d.visibilityChanged.connect(self._on_dock_visibility)
        self.process.message.connect(self._on_message)
        self.process.logText.connect(self._on_log)
        self.process.finished.connect(self._on_finished)
        window.imageShown.connect(self._on_image_shown)
        window.models.statusChanged.connect(self._on_model_changed)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.refresh_sources()
        self._on_model_changed()

    # --- menu ---------------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        w = self.window
        menu = QMenu("&Train", w)
        bar = w.menuBar()
        help_menu = getattr(getattr(w, "actions_", None), "help_menu", None)
        if help_menu is not None:
            bar.insertMenu(help_menu.menuAction(), menu)
        else:
            bar.addMenu(menu)
        self.show_action = QAction("&Fine-tune on Annotations\u2026", w)
        self.show_action.setShortcut(QKeySequence(SHOW_SHORTCUT))
        self.show_action.setToolTip("Show the Training panel")
        self.show_action.triggered.connect(self.show_dock)
        self.start_action = QAction("&Start Training", w)
        self.start_action.triggered.connect(self.start)
        self.cancel_action = QAction("&Cancel Training", w)
        self.cancel_action.triggered.connect(self.cancel)
        self.cancel_action.setEnabled(False)
        self.use_action = QAction("&Use Trained Weights", w)
        self.use_action.triggered.connect(self.use_weights)
        self.use_action.setEnabled(False)
        self.resume_action = QAction("&Resume Last Run", w)
        self.resume_action.triggered.connect(self.resume)
        self.resume_action.setEnabled(False)
        menu.addActions([self.show_action, self.start_action, self.resume_action, self.cancel_action, self.use_action])
        w.addAction(self.show_action)  # the shortcut works with the menu bar hidden too
        self.menu = menu

    def show_dock(self) -> None:
        self.dock.show()
        self.dock.raise_()
        self.refresh_sources()

    # --- what the window offers ---------------------------------------------------------------------
    def current_project(self):
        """The project of the image on screen (the editing controller's), or None."""
        editing = getattr(self.window, "editing", None)
        return getattr(editing, "project", None) if editing is not None else None

    def _on_dock_visibility(self, visible: bool) -> None:
        if visible:
            self.refresh_sources()

    def _on_image_shown(self, _path: str) -> None:
        if self.dock.isVisible():  # the project source follows the image on screen
            self.refresh_sources()

    def refresh_sources(self) -> None:
        if self.running:
            return
        project = self.current_project()
        if project is None:
            self.dock.form.refresh_project(None)
            return
        try:  # one query on the store, never a walk over every image's masks
            count = sum(1 for summary in project.summaries().values() if summary.annotations)
        except (TypeError, AttributeError, MaskScopeError):
            count = 0
        self.dock.form.refresh_project(str(project.folder), count)

    def _on_model_changed(self) -> None:
        if not self.running:
            self.dock.form.refresh_current_model(self.window.models.active)

    @property
    def running(self) -> bool:
        return self.process.running

    # --- starting ------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start a run with the dock's settings; problems show in the dock. True when started."""
        if self.running:
            return False
        self.show_dock()
        self.dock.show_error("")
        try:
            settings = self.dock.form.values()
            job_path = self._prepare(settings)
        except (ValueError, MaskScopeError, OSError) as exc:
            self.dock.show_error(str(exc))
            self.dock.show_status("Not started.")
            return False
        self.dock.form.remember()
        self._launch(job_path, f"Starting the training process in {self.run_dir}\u2026")
        return True

    def _launch(self, job_path: Path, status: str) -> None:
        self._job_path = job_path
        self._reset_view()
        self.dock.set_running(True)
        self._set_actions()
        self.dock.show_status(status)
        self.process.start(job_path)
        self._set_actions()
        self.runStarted.emit(str(self.run_dir))

    # --- resuming ---------------------------------------------------------------------------------------
    def resumable_checkpoint(self) -> str | None:
        """The last run's checkpoint to continue from: it stopped early and saved a checkpoint (a
        checkpoint holds its position; the optimizer state beside it is used when present)."""
        if self.running or self.outcome not in ("cancelled", "error") or self._job_path is None:
            return None
        path = self.checkpoint
        if not path or not Path(path).is_file():
            return None
        return str(path)

    def resume(self) -> bool:
        """Continue the last run (same data source, settings and folder) from its last checkpoint."""
        checkpoint, job_file = self.resumable_checkpoint(), self._job_path
        if checkpoint is None or job_file is None:  # no checkpoint without a job file either
            self.dock.show_error("There is no stopped run with saved training state to resume.")
            return False
        self.show_dock()
        self.dock.show_error("")
        try:
            job = TrainJob.read(job_file)
            job.resume, job.eval_before = checkpoint, False
            project = self._project_of(job)
            if project is not None:
                project.flush()  # the worker reads what is committed
            job_path = job.write(Path(job.out_dir) / "job_resume.json")
        except (MaskScopeError, OSError) as exc:
            self.dock.show_error(str(exc))
            return False
        self._record_run(project, job, resumed_from=checkpoint)
        self._launch(job_path, f"Resuming {Path(job.out_dir).name} from {Path(checkpoint).name}\u2026")
        return True

    def _project_of(self, job: TrainJob):
        project = self.current_project()
        if job.project and project is not None and str(project.folder) == job.project:
            return project
        return None

    def _record_run(self, project, job: TrainJob, **extra) -> None:
        """Note the run in the project's store (training on the project only)."""
        self._store_run = None
        if project is None:
            return
        label = job.architecture or Path(str(job.weights or "")).name or "model"
        config = {"run_dir": job.out_dir, "weights": job.weights, "train": job.train, **extra}
        try:
            self._store_run = (project, project.add_training_run(label, config))
        except MaskScopeError as exc:
            self.dock.append_log(f"could not record the run in the project: {exc}")

    def _prepare(self, s: RunSettings) -> Path:
        """Create the run folder, the data snapshot (project source) and the job file."""
        project = None
        if s.source == SOURCE_PROJECT:
            project = self.current_project()
            if project is None:
                raise ValueError("The project is no longer open; open an annotated image folder again.")
            # Every edit is in the store; the worker reads it in one read transaction, so edits
            # made later do not change the data of a run already going.
            project.flush()
            coco, images, folder = None, None, str(project.folder)
        else:
            coco, images, folder = str(Path(s.coco)), s.images or None, None
        run_dir = _fresh_folder(Path(s.runs_dir) / time.strftime("run_%Y%m%d_%H%M%S"))
        start = s.start
        job = TrainJob(
            out_dir=str(run_dir),
            coco=coco,
            images=images,
            project=folder,
            architecture=start.architecture,
            config=start.config,
            weights=start.weights,
            device=s.device,
            train={
                "epochs": s.epochs,
                "batch_size": s.batch_size,
                "optimizer": s.optimizer,
                "lr": s.lr,
                "freeze": s.freeze,
                "val_fraction": s.val_fraction,
            },
            threads=self.worker_threads,
            eval_before=s.val_fraction > 0,
        )
        self.run_dir = run_dir
        path = job.write(run_dir / "job.json")
        self._record_run(project, job)
        return path

    def _reset_view(self) -> None:
        self.checkpoint = None
        self.before = self.after = None
        self.outcome = None
        self.setup_info = {}
        self.last_progress = None
        self._run_text = ""
        self._tail.clear()
        d = self.dock
        d.plot.clear()
        d.table.clear_metrics()
        d.log.clear()
        d.stats_label.setText("")
        d.progress.setRange(0, 0)  # busy until the first iteration
        d.progress.setFormat("preparing\u2026")
        d.results_label.setText("Validation AP (%)")
        d.use_button.setText("Use these weights")
        d.open_button.setEnabled(True)

    # --- cancelling ----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """First call: stop after the current iteration (weights saved). Second call: stop now."""
        if not self.running:
            return
        if not self.process.cancel_requested:
            self.process.cancel()
            self.dock.cancel_button.setText("Stop now")
            self.dock.cancel_button.setToolTip("Kill the training process at once (the iteration in progress is lost)")
            self.dock.show_status("Cancelling after the current iteration\u2026")
        else:
            self.dock.show_status("Stopping the training process\u2026")
            self.process.kill()

    def shutdown(self) -> None:
        """Stop a running worker (app exit): polite cancel, short wait, then kill."""
        self.process.shutdown()
        if self.predict_job.running:
            self.predict_job.cancel()
            self.predict_job.wait(5.0)

    # --- messages from the worker -----------------------------------------------------------------
    def _on_message(self, msg: dict) -> None:
        kind = msg.get("kind")
        d = self.dock
        if kind == "status":
            d.show_status(str(msg.get("message", "")))
            d.append_log(str(msg.get("message", "")))
        elif kind == "setup":
            self.setup_info = msg
            val = int(msg.get("val_images") or 0)
            self._run_text = (
                f"Training {msg.get('model')} on {msg.get('train_images')} images "
                f"({val} held out) on {str(msg.get('device', '')).upper()}"
            )
            d.show_status(self._run_text)
            self._results_text = (
                f"Validation AP (%) on {val} held-out image{'s' if val != 1 else ''}"
                if val
                else "No held-out images: AP is not measured (set Validation above 0 %)."
            )
            d.results_label.setText(self._results_text)
        elif kind == "start":
            d.show_progress(int(msg.get("iteration", 0)), int(msg.get("total_iterations", 0)), 1,
                            int(msg.get("epochs", 0)), None)  # fmt: skip
        elif kind == "progress":
            if self.last_progress is None:
                d.show_status(self._run_text)  # training proper has begun
            self._on_progress(msg)
        elif kind == "eval":
            if msg.get("stage") == "before":
                self.before = msg.get("metrics")
                d.table.set_before(self.before)
                self._run_text += f"; starting weights: mask AP {_ap(self.before, 'mask')}"
                d.show_status(self._run_text)
            else:
                self.after = msg.get("metrics")
                d.table.set_after(self.after)
                epochs = (self.last_progress or {}).get("epochs")
                of = f" of {epochs}" if epochs else ""
                d.results_label.setText(f"{self._results_text}  \u00b7  after epoch {msg.get('epoch')}{of}")
                mask, box = _ap(self.after, "mask"), _ap(self.after, "box")
                d.append_log(f"epoch {msg.get('epoch')}: mask AP {mask}, box AP {box}")
        elif kind == "checkpoint":
            self.checkpoint = msg.get("path")
            d.append_log(f"epoch {msg.get('epoch')}: saved {self.checkpoint}")
        elif kind == "done":
            self._on_done(msg)
        elif kind == "error":
            self.outcome = "error"
            d.show_error(str(msg.get("message", "Training failed.")))
            d.show_status("Training failed.")
            if msg.get("traceback"):
                d.append_log(str(msg["traceback"]))

    def _on_progress(self, msg: dict) -> None:
        d = self.dock
        self.last_progress = msg
        it, total = int(msg.get("iteration", 0)), int(msg.get("total_iterations", 0))
        epoch, epochs = int(msg.get("epoch", 0)) + 1, int(msg.get("epochs", 0))
        d.show_progress(it, total, epoch, epochs, msg.get("eta_s"))
        losses = {k: v for k, v in (msg.get("losses") or {}).items() if isinstance(v, int | float)}
        d.plot.add_point(it, losses, msg.get("loss"))
        loss, lr, speed = msg.get("loss"), msg.get("lr") or 0.0, msg.get("images_per_s") or 0.0
        loss_text = f"{loss:.4f}" if isinstance(loss, int | float) and math.isfinite(loss) else "?"
        d.stats_label.setText(f"loss {loss_text}  \u00b7  lr {lr:.2e}  \u00b7  {speed:.2f} images/s")
        if msg.get("skipped"):
            d.append_log(f"iteration {it}: {msg.get('message') or 'step skipped'}")

    def _on_done(self, msg: dict) -> None:
        d = self.dock
        cancelled = bool(msg.get("cancelled"))
        self.outcome = "cancelled" if cancelled else "done"
        if msg.get("checkpoint"):
            self.checkpoint = msg["checkpoint"]
        if msg.get("metrics") is not None:
            self.after = msg["metrics"]
            d.table.set_after(self.after)
            d.results_label.setText(self._results_text)
        d.append_log(str(msg.get("message", "")))
        if cancelled:
            saved = f" Weights so far: {Path(self.checkpoint).name}." if self.checkpoint else ""
            d.show_status(f"Cancelled after {msg.get('iterations', 0)} iterations.{saved}")
        else:
            speed = msg.get("images_per_s") or 0.0
            d.show_status(
                f"Finished: {msg.get('iterations', 0)} iterations ({speed:.2f} images/s). "
                f"Mask AP {_ap(self.before, 'mask')} \u2192 {_ap(self.after, 'mask')}."
            )
            total = d.progress.maximum()
            d.progress.setValue(total)
            d.progress.setFormat(f"done \u00b7 {total} iterations")

    def _on_log(self, text: str) -> None:
        self.dock.append_log(text)
        for line in text.splitlines():
            if line.strip():
                self._tail.append(line)

    def _on_finished(self, code: int, crashed: bool) -> None:
        d = self.dock
        if self.outcome is None:
            if self.process.killed:
                self.outcome = "cancelled"
                saved = f" Last saved weights: {Path(self.checkpoint).name}." if self.checkpoint else ""
                d.show_status(f"Stopped; the iteration in progress was lost.{saved}")
            else:
                self.outcome = "error"
                how = "crashed" if crashed else f"exited with code {code}"
                tail = "\n".join(self._tail)
                d.show_error(
                    f"The training process {how} without finishing."
                    + (f"\n\nLast output:\n{tail}" if tail else "")
                    + "\n\nMaskScope itself is unaffected; see the Log tab."
                )
                d.show_status("Training failed.")
        if d.progress.maximum() == 0:  # never got to an iteration: leave the busy state
            d.progress.setRange(0, 1)
            d.progress.setValue(0)
            d.progress.setFormat("")
        d.set_running(False)
        usable = bool(self.checkpoint) and Path(str(self.checkpoint)).is_file()
        d.use_button.setEnabled(usable)
        d.use_button.setText("Use these weights" if self.outcome == "done" else "Use the last saved weights")
        d.resume_button.setEnabled(self.resumable_checkpoint() is not None)
        self._finish_store_run()
        self._set_actions()
        self.runFinished.emit(self.outcome)

    def _finish_store_run(self) -> None:
        if self._store_run is None:
            return
        project, run_id = self._store_run
        self._store_run = None
        metrics = {"before": self.before, "after": self.after, "progress": self.last_progress}
        try:
            project.finish_training_run(run_id, self.outcome or "error", metrics, str(self.checkpoint or ""))
        except MaskScopeError as exc:
            self.dock.append_log(f"could not record the run's result in the project: {exc}")

    def _set_actions(self) -> None:
        running = self.running
        self.start_action.setEnabled(not running)
        self.cancel_action.setEnabled(running)
        self.use_action.setEnabled(self.dock.use_button.isEnabled())
        self.resume_action.setEnabled(self.dock.resume_button.isEnabled())

    # --- results ---------------------------------------------------------------------------------------
    def use_weights(self) -> bool:
        """Load the run's checkpoint as the current model (built in the inference worker)."""
        path = self.checkpoint
        if not path or not Path(path).is_file():
            self.dock.show_error("This run has no saved weights to use.")
            return False
        self.window.models.load_weights_file(path)
        self.dock.show_status(f"Loading {Path(path).name} as the current model\u2026")
        self.weightsRequested.emit(path)
        self.offer_predict_rest(path)
        return True

    # --- predicting what is not reviewed yet ---------------------------------------------------------
    def offer_predict_rest(self, checkpoint: str) -> bool:
        """Ask whether to predict the current project's images not marked done; start if yes."""
        project = self.current_project()
        if project is None or self.predict_job.running:
            return False
        try:
            names = names_to_predict(project)
        except (MaskScopeError, AttributeError):
            return False
        if not names:
            return False
        n = len(names)
        text = (
            f"Predict the {n} image{'s' if n != 1 else ''} of {project.folder.name} not marked done yet with "
            f"{Path(checkpoint).name}?\n\nThe predictions go into a new prediction run (the earlier runs stay), "
            "in the background; you can keep working and stop it at any time."
        )
        if not ask_predict_rest(self.window, text):
            return False
        return self.predict_rest(checkpoint, names)

    def predict_rest(self, checkpoint: str, names: list[str] | None = None) -> bool:
        project = self.current_project()
        if project is None or self.predict_job.running:
            return False
        names = names_to_predict(project) if names is None else names
        device = getattr(self.window.models, "device", None)
        device = None if device in (None, "", "auto") else str(device)
        self._predict_project = project
        self.dock.predict_progress.setRange(0, max(len(names), 1))
        self.dock.predict_progress.setValue(0)
        self.dock.show_predicting(True, f"Predicting {len(names)} images not reviewed yet\u2026")
        self.predict_job.start(project, names, checkpoint, device)
        return True

    def _on_predict_progress(self, done: int, total: int) -> None:
        self.dock.predict_progress.setRange(0, max(total, 1))
        self.dock.predict_progress.setValue(done)

    def _on_predict_finished(self, result) -> None:
        self.dock.show_predicting(False, f"Done: {result.summary()}.")
        self._predict_project = None
        self.window.statusBar().showMessage(result.summary(), 10000)
        self.predictionRunAdded.emit(result.run_id)

    def _on_predict_failed(self, message: str) -> None:
        self._predict_project = None
        self.dock.show_predicting(False, "")
        self.dock.show_error(f"Predicting the remaining images failed: {message}")

    def open_run_folder(self) -> None:
        if self.run_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir)))


def _ap(metrics: dict | None, kind: str) -> str:
    if not metrics:
        return "\u2013"
    return format_ap((metrics.get(kind) or {}).get("AP"))


def _fresh_folder(path: Path) -> Path:
    """``path``, or ``path_2``, ``path_3``... if it exists; created."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}_{n}")
    candidate.mkdir(parents=True)
    return candidate


def ask_predict_rest(parent, text: str) -> bool:
    """Yes/No: predict the images not reviewed yet (tests replace this)."""
    from PySide6.QtWidgets import QMessageBox

    answer = QMessageBox.question(parent, "Predict the remaining images", text)
    return answer == QMessageBox.StandardButton.Yes
