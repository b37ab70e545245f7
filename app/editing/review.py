"""Predictions kept in the project store, and the review workflow over the file list.

- Every prediction the model returns is stored as part of a prediction run
  (``Project.add_run``/``add_predictions``): one run per model per session, and a new one for
  each folder run. A re-run of an image in the same run keeps the predictions already reviewed
  (a re-predicted copy of a reviewed one is dropped, so a rejection stays a rejection).
- Opening an image shows the stored predictions of the project's active run, without running
  the model; ``set_active_run`` (the run picker in the file list) switches which run is reviewed.
- What is shown of a prediction is derived from the store: pending and at or above the score
  threshold. Accepting and rejecting change review states (``EditingController``, undoable).
- The file list shows per image: pending predictions, annotations, and the done mark; "Mark
  image done", "Next image needing review", and the review order by model uncertainty.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from app.image_loader import normalise_path
from app.model_catalog import MODEL_SCORE_THRESH
from engine.annotations import masks_equal
from engine.errors import MaskScopeError
from engine.prediction import Instance, Prediction
from engine.project import Project
from engine.store.store import ProjectStore, StoredPrediction

if TYPE_CHECKING:
    from app.editing.controller import EditingController

ORDER_FOLDER = "folder"
ORDER_UNCERTAINTY = "uncertainty"


def prediction_from_stored(stored: list[StoredPrediction], class_names: list[str], size: tuple[int, int]) -> Prediction:
    """The engine ``Prediction`` the window shows for stored predictions (same order)."""
    instances = [
        Instance(p.label, p.score, np.asarray(p.box, np.float32), p.mask()) for p in stored
    ]  # fmt: skip
    return Prediction(tuple(size), instances, list(class_names))


def _emit(signal, *args) -> None:
    try:
        signal.emit(*args)
    except RuntimeError:  # the window is gone
        pass


def _predicted_images(project: Project, run_id: int) -> set[str]:
    """Names of the images run ``run_id`` has predictions for (one indexed query)."""
    project.flush()
    rows = project.store.conn.execute(
        "SELECT DISTINCT i.name FROM predictions p JOIN images i ON i.id = p.image_id WHERE p.run_id = ?", (run_id,)
    ).fetchall()
    return {r[0] for r in rows}


def _store_job(name: str, run_id: int, prediction: Prediction):
    """The writer-thread job storing one image's predictions of a run; returns whether the stored
    list is the prediction's own instances in order (no reviewed ones of this run kept beside)."""

    def job(store: ProjectStore) -> bool:
        earlier = [(p.label, p.mask()) for p in store.predictions(name, run_id) if p.review != "pending"]
        # A re-predicted copy of a reviewed prediction is dropped: a rejection stays a rejection.
        fresh = [
            inst
            for inst in prediction.instances
            if not any(label == inst.label and masks_equal(mask, inst.mask) for label, mask in earlier)
        ]
        store.add_predictions(run_id, name, Prediction(prediction.image_size, fresh, prediction.class_names))
        # A prediction identical to an annotation accepted earlier (another run) is not pending again.
        loaded = store.load_annotations(name)
        accepted = [i for i in loaded[1] if i.source == "prediction"] if loaded is not None else []
        if accepted:
            same = [
                (p.id, "accepted")
                for p in store.predictions(name, run_id)
                if p.review == "pending" and any(masks_equal(a.mask, p.mask()) for a in accepted)
            ]
            if same:
                store.set_reviews(same)
        return not earlier

    return job


class ReviewController(QObject):
    _written = Signal(str)  # from the writer thread: the predictions of this path are committed
    predictionsStored = Signal(str)  # the window's prediction of this path is mapped to stored ones

    def __init__(self, controller: EditingController) -> None:
        super().__init__(controller)
        self._inflight: dict[str, tuple] = {}  # path -> (future, project, name, run, prediction, model key)
        self._written.connect(self._finish, Qt.ConnectionType.QueuedConnection)
        self.c = controller
        self.window = controller.window
        self._session_runs: dict[tuple[str, str], int | None] = {}  # (project folder, model key) -> run id
        self._predicted: dict[tuple[str, str], set[str]] = {}  # images a resumed run already has
        self._shown_run: dict[str, int] = {}  # image path -> run whose predictions the window holds
        self.order = ORDER_FOLDER
        self._folder_order: list[str] = []
        self._message_after_show: str | None = None  # said once the image is on screen
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.timeout.connect(self.refresh_all_files)
        fl = self.window.file_list
        fl.runChosen.connect(self.choose_run)
        fl.orderChosen.connect(self.set_order)
        self.window.overlay_controls.thresholdChanged.connect(lambda _t: self._summary_timer.start(300))

    # ==============================================================================================
    # Runs
    # ==============================================================================================
    def plan_folder_run(self, files: list[str], model_key: str) -> list[str]:
        """The images of ``files`` a folder run with ``model_key`` still has to predict.

        When a project's active run was made by that model, the folder run continues it (a
        cancelled or interrupted run resumes; images it already predicted are skipped); otherwise
        its predictions become a new run, kept beside the others."""
        self._session_runs.clear()
        todo: list[str] = []
        for path in files:
            try:
                project, name = self.c.files.project_for(path)
            except MaskScopeError:
                todo.append(path)  # the run reports what is wrong with it
                continue
            key = (str(project.folder), model_key)
            if key not in self._session_runs:
                run = next((r for r in project.runs() if r.id == project.active_run), None)
                if run is not None and run.model == (model_key or "model"):
                    self._session_runs[key] = run.id
                    self._predicted[key] = _predicted_images(project, run.id)
                else:
                    self._session_runs[key] = None  # a new run, made with the first prediction
                    self._predicted[key] = set()
            if name not in self._predicted[key]:
                todo.append(path)
        return todo

    def _run_for(self, project: Project, model_key: str, prediction: Prediction) -> int:
        key = (str(project.folder), model_key)
        run_id = self._session_runs.get(key)
        if run_id is None:
            choice = self.window.models.active or self.window.models.requested
            settings = {
                "class_names": list(prediction.class_names),
                "score_threshold": float(self.window.score_threshold),
                "model_score_threshold": MODEL_SCORE_THRESH,
                "label": choice.label if choice is not None else model_key,
                "architecture": choice.architecture if choice is not None else "",
                "config": (choice.config or "") if choice is not None else "",
                "device": self.window.models.device,
            }
            weights = (choice.weights or "") if choice is not None else ""
            run_id = project.add_run(model_key or "model", settings, weights if weights != "random" else "")
            self._session_runs[key] = run_id
            self._fill_run_picker(project)
        return run_id

    def choose_run(self, run_id: int) -> None:
        """Review another stored run of the current project."""
        project = self.c.project
        if project is None:
            return
        for path in list(self._inflight):  # what the model just made is stored first
            self._finish(path)
        if run_id == project.active_run:
            return
        project.set_active_run(run_id)
        for path in list(self.window.predictions):
            found = self.c.files.registry.find(path)
            if found is not None and found[0] is project:
                self._shown_run.pop(path, None)
                self.window.forget_prediction(path)
        self.load(self.window.current_image_path)
        self.refresh_all_files()
        run = next((r for r in project.runs() if r.id == run_id), None)
        if run is not None:
            self.c.status(f"Reviewing run {run.label()}", 8000)

    def _fill_run_picker(self, project: Project | None) -> None:
        if project is None:
            self.window.file_list.set_runs([], None)
            return
        runs = project.runs()
        items = [(r.id, f"#{r.id} {r.settings.get('label') or r.model} \u2013 {r.created}") for r in runs]
        self.window.file_list.set_runs(items, project.active_run)

    # ==============================================================================================
    # Storing and loading predictions
    # ==============================================================================================
    def store(self, path: str, prediction: Prediction, model_key: str) -> bool:
        """Store a prediction the model just made, on the project's writer thread (masks are
        encoded there, not here). Until it is committed the window shows it as all pending;
        ``stored(path, wait=True)`` waits for it when the user acts on it at once."""
        path = normalise_path(path)
        try:
            project, name = self.c.files.project_for(path)
            run_id = self._run_for(project, model_key, prediction)
        except MaskScopeError as exc:
            self.c.status(f"Predictions of {Path(path).name} not stored: {exc}", 10000)
            return False
        self._shown_run.pop(path, None)
        future = project.writer.submit(_store_job(name, run_id, prediction))
        self._inflight[path] = (future, project, name, run_id, prediction, model_key)
        future.add_done_callback(lambda _f, p=path: _emit(self._written, p))
        return True

    @property
    def writes_in_flight(self) -> int:
        """Predictions handed to a writer thread and not yet mapped to stored ones."""
        return len(self._inflight)

    def _finish(self, path: str) -> None:
        """A stored prediction is committed: map the window's instances to the stored ones."""
        item = self._inflight.pop(path, None)
        if item is None:
            return
        future, project, name, run_id, raw, model_key = item
        if project not in self.c.files.registry.projects:
            return  # closed meanwhile
        try:
            aligned = future.result()
        except Exception as exc:  # noqa: BLE001 - also reported by the writer's error dialog
            self.c.status(f"Predictions of {Path(path).name} not stored: {exc}", 10000)
            return
        stored = project.predictions(name, run_id, refresh=True)
        self._shown_run[path] = run_id
        if self.window.predictions.get(path) is raw:
            if not aligned or len(stored) != len(raw.instances):
                # Reviewed predictions of this run stay beside the new ones: show the stored list.
                shown = prediction_from_stored(stored, raw.class_names, raw.image_size)
                shown.seconds, shown.meta = raw.seconds, raw.meta
                self.window.set_prediction(path, shown, None, model_key, store=False)
            elif path == self.window.current_image_path:
                self.window.refresh_prediction_view()
        if self.c.project is project:
            self._fill_run_picker(project)
        self.refresh_file(path)
        self.predictionsStored.emit(path)

    def load(self, path: str | None) -> None:
        """Show the active run's stored predictions of ``path`` (on screen) without running the model."""
        if path is None:
            return
        path = normalise_path(path)
        found = self.c.files.registry.find(path)
        if found is None:
            return
        project, name = found
        run_id = project.active_run
        if run_id is None or self._shown_run.get(path) == run_id or path in self._inflight:
            return
        stored = project.predictions(name, run_id)
        if not stored:
            if path in self._shown_run:  # another run's prediction: not this run's
                self._shown_run.pop(path)
                self.window.forget_prediction(path)
            return
        run = next((r for r in project.runs() if r.id == run_id), None)
        names = run.class_names if run is not None else []
        prediction = prediction_from_stored(stored, names, stored[0].image_size)
        self._shown_run[path] = run_id
        self.window.set_prediction(path, prediction, None, run.model if run is not None else "", store=False)

    def stored(self, path: str | None, wait: bool = False) -> list[StoredPrediction] | None:
        """The stored predictions behind the window's prediction of ``path`` (same order), if any.
        ``wait``: when its store write is still in flight, wait for it (a few ms) instead of None."""
        if path is None:
            return None
        path = normalise_path(path)
        if wait and path in self._inflight:
            self._finish(path)
        run_id = self._shown_run.get(path)
        found = self.c.files.registry.find(path)
        if run_id is None or found is None:
            return None
        project, name = found
        return project.predictions(name, run_id)

    def pending(self, path: str | None, count: int) -> np.ndarray:
        """Which of the window's ``count`` predictions of ``path`` are still to review."""
        stored = self.stored(path)
        if stored is None or len(stored) != count:
            return np.ones(count, bool)
        return np.array([p.review == "pending" for p in stored], bool)

    def states(self, path: str | None, count: int) -> list[str]:
        stored = self.stored(path)
        if stored is None or len(stored) != count:
            return ["pending"] * count
        return [p.review for p in stored]

    # ==============================================================================================
    # The file list: status, done, next, order
    # ==============================================================================================
    def project_opened(self, project: Project) -> None:
        if project.closed:  # the window closed before this queued signal arrived
            return
        self.refresh_all_files(project)
        if project is self.c.project or self.c.project is None:
            self._fill_run_picker(project)

    def image_shown(self, project: Project) -> None:
        self._fill_run_picker(project)
        if self._message_after_show:
            self.c.status(self._message_after_show, 8000)
            self._message_after_show = None

    def refresh_all_files(self, project: Project | None = None) -> None:
        """Per-image counts and done marks for every listed image (one query per project)."""
        projects = [project] if project is not None else list(self.c.files.registry.projects)
        thr = self.window.score_threshold
        for proj in projects:
            if proj.closed:
                continue
            run_id = proj.active_run
            summaries = proj.summaries(run_id, thr)
            predicted = _predicted_images(proj, run_id) if run_id is not None else set()
            for path in self.window.files:
                try:
                    name = Path(path).relative_to(proj.folder).as_posix()
                except ValueError:
                    continue
                s = summaries.get(name)
                if s is None:
                    self.window.file_list.set_state(path, annotated=False, annotations=0, pending=0, done=False)
                    continue
                self.window.file_list.set_state(
                    path,
                    annotated=s.annotations > 0,
                    annotations=s.annotations,
                    pending=s.pending,
                    done=s.status == "done",
                    predicted=name in predicted or path in self.window.predictions,
                )

    def refresh_file(self, path: str) -> None:
        """Counts of one image from what is cached (after an edit: no query)."""
        found = self.c.files.registry.find(path)
        if found is None:
            return
        project, name = found
        entry = project.annotations(name, create=False)
        n = len(entry) if entry is not None else 0
        thr = self.window.score_threshold
        run_id = self._shown_run.get(normalise_path(path))  # cached predictions only: no query per edit
        pending = (
            None
            if run_id is None
            else sum(1 for p in project.predictions(name, run_id) if p.review == "pending" and p.score >= thr)
        )
        self.window.file_list.set_state(
            path, annotated=n > 0, annotations=n, pending=pending, done=project.status(name) == "done"
        )

    def toggle_done(self) -> bool:
        """Mark the current image done (reviewed), or back in review when it was."""
        project, path = self.c.project, self.c.current_path
        name = self.c._name
        if project is None or path is None or name is None:
            self.c.status("Open an image first.")
            return False
        done = project.status(name) != "done"
        project.set_done(name, done)
        self.refresh_file(path)
        self.c.status(f"{Path(path).name}: {'done' if done else 'back in review'}", 4000)
        self.c.files.update_status()
        return True

    def next_needing_review(self) -> bool:
        """Go to the next image (in the list's order, wrapping) not done and with pending predictions;
        when none has any, to the next one not done."""
        files = self.window.files
        if not files:
            self.c.status("Open a folder first.")
            return False
        current = self.window.current_image_path
        start = files.index(current) + 1 if current in files else 0
        ring = files[start:] + files[:start]
        fl = self.window.file_list
        candidates = [p for p in ring if p != current and not fl.state(p).done and not fl.state(p).error]
        target = next((p for p in candidates if fl.state(p).pending > 0), None)
        if target is None and candidates:
            target = candidates[0]
            self._message_after_show = "No image has predictions left to review; this is the next one not marked done."
        if target is None:
            self.c.status("Every image is marked done.", 8000)
            return False
        self.window.show_file(target)
        return True

    def set_order(self, order: str) -> None:
        """List images in folder order, or by model uncertainty (smallest score margin to the
        threshold among pending predictions first; images without any last)."""
        if order == self.order and order == ORDER_FOLDER:
            return
        files = list(self.window.files)
        if self.order == ORDER_FOLDER:
            self._folder_order = files
        self.order = order
        if order == ORDER_FOLDER:
            known = set(files)
            ordered = [p for p in self._folder_order if p in known] + [p for p in files if p not in self._folder_order]
        else:
            margins: dict[str, float] = {}
            thr = self.window.score_threshold
            for proj in self.c.files.registry.projects:
                for name, s in proj.summaries(proj.active_run, thr).items():
                    if s.min_margin is not None and s.status != "done":
                        margins[normalise_path(proj.folder / name)] = s.min_margin
            position = {p: i for i, p in enumerate(self._folder_order or files)}
            ordered = sorted(files, key=lambda p: (p not in margins, margins.get(p, 0.0), position.get(p, 0)))
        self.window.reorder_files(ordered)
        self.window.file_list.set_order(order)
