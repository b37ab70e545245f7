"""Prompts: the model's own heads segment a box the user drags or the object under a click.

- Requests run in the inference worker (``InferenceWorker.run_job``), where the segmenter and its
  per-image feature cache live, so the GUI never waits for the model; the cache is cleared there
  when another image is shown. Only the answer to the newest request for the image on screen is
  shown; an older one that arrives late is dropped.
- The answer is a pending candidate drawn by ``PromptItem`` (hatched cyan, dashed outline, labelled
  "prompt"). Enter accepts it, Esc discards it, Tab / Shift+Tab or the wheel cycle through the
  candidates of a click (``Segmenter.segment_point``, best first).
- Accepting goes through the same path as accepting a model prediction: the candidate is stored as
  a prediction of the project's "prompt" run (one per model and class list, kept beside the model
  runs) and accepted with ``EditingController.accept_stored`` (one undo step, review state
  "accepted", the annotation keeps the stored prediction's id as its provenance).
- A box prompt asks for ``trace_box``: while its candidate is shown, the RoI inspector (Mask R-CNN)
  and the prototype viewer (YOLACT) show the drawn box's one-instance prediction instead of the
  selected detection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QWheelEvent

from app.editing.prompt_tool import Z_PROMPT, PromptItem, hatched_argb
from app.overlay import mask_contours
from engine.errors import MaskScopeError, PromptError
from engine.prediction import Instance, Prediction

if TYPE_CHECKING:
    from app.editing.controller import EditingController
    from engine.project import Project

PROMPT_RUN = "prompt"  # model name of the stored runs that hold accepted prompt candidates
NO_MODEL = "No model is loaded: choose one in the Model menu; the {tool} tool asks the model for the mask."
LOADING = "The model is still loading; the {tool} tool works once it is ready."
HINTS = {
    "box": "Box: drag a box around an object; Enter accepts the mask, Esc discards, Shift+drag refines.",
    "point": "Point: click an object; Tab or the wheel cycles through candidates, Enter accepts, Esc discards.",
}


@dataclass
class Candidate:
    instance: Instance
    contours: list[np.ndarray]  # outline in image coordinates (computed in the worker)
    fill: np.ndarray  # hatched_argb of the mask (computed in the worker: showing it costs ~nothing)


@dataclass
class PromptAnswer:
    """What the worker answered for one request."""

    serial: int
    path: str
    kind: str  # "box" or "point"
    box: tuple[float, float, float, float] | None
    point: tuple[float, float] | None
    candidates: list[Candidate]
    class_names: list[str]
    prediction: Prediction | None  # box: trace_box's one-instance prediction with its trace
    seconds: float


def can_prompt(segmenter: Any) -> bool:
    """Whether the segmenter implements prompts (the base ``Segmenter`` refuses them)."""
    from engine.segmenter import Segmenter

    if not isinstance(segmenter, Segmenter):
        return callable(getattr(segmenter, "trace_box", None))
    return type(segmenter)._box_instance is not Segmenter._box_instance


class PromptController(QObject):
    candidateChanged = Signal()  # a candidate was shown, cycled, accepted or discarded
    _answered = Signal(object)  # from the worker: PromptAnswer
    _failed = Signal(int, str)  # from the worker: serial, message

    def __init__(self, controller: EditingController) -> None:
        super().__init__(controller)
        self.c = controller
        self.window = controller.window
        self.canvas = controller.canvas
        self.item = PromptItem()
        self.canvas.add_item(self.item, Z_PROMPT)
        self.answer: PromptAnswer | None = None
        self.index = 0  # the candidate shown
        self._serial = 0  # the newest request; older answers are dropped
        self._cached_path: str | None = None  # the image whose features the worker may hold
        self._answered.connect(self._on_answer)
        self._failed.connect(self._on_failed)
        self.window.imageShown.connect(self._on_image_changed)
        self.window.imageFailed.connect(lambda path, _m: self._on_image_changed(path))
        self.window.models.modelReady.connect(lambda _s: self._on_model_changed())

    # ==============================================================================================
    # State
    # ==============================================================================================
    @property
    def has_image(self) -> bool:
        return self.c.annotations is not None and self.window.current_image is not None

    @property
    def image_size(self) -> tuple[int, int] | None:
        return self.c.image_size

    @property
    def candidate(self) -> Candidate | None:
        if self.answer is None or not self.answer.candidates:
            return None
        return self.answer.candidates[self.index]

    def status(self, text: str, ms: int = 8000) -> None:
        self.c.status(text, ms)

    def hint(self, tool: str) -> str:
        """What the tool says when chosen: how to use it, or why it cannot work now."""
        problem = self._model_problem(tool)
        return problem if problem else HINTS[tool]

    def _model_problem(self, tool: str) -> str | None:
        models = self.window.models
        seg = models.segmenter
        if seg is None:
            return (LOADING if models.loading else NO_MODEL).format(tool=tool.capitalize())
        if not can_prompt(seg):
            describe = seg.describe() if hasattr(seg, "describe") else type(seg).__name__
            return f"{describe} cannot segment prompts; choose a Mask R-CNN or YOLACT model in the Model menu."
        return None

    # ==============================================================================================
    # Tools
    # ==============================================================================================
    def tool_activated(self, mode: str) -> None:
        if self.answer is not None and self.answer.kind != mode:
            self.discard(quiet=True)

    def tool_deactivated(self, mode: str) -> None:
        self.item.set_band(None)
        if self.answer is not None:
            self.discard(quiet=True)

    # ==============================================================================================
    # Requests (GUI thread) and the jobs (worker thread)
    # ==============================================================================================
    def request_box(self, box: tuple[float, float, float, float], refine: bool = False) -> bool:
        """Ask the model for the object in ``box`` (x1, y1, x2, y2 image pixels). ``refine``: keep the
        shown candidate's class (the new box replaces its box)."""
        label = None
        if refine and self.answer is not None and self.answer.kind == "box" and self.candidate is not None:
            label = int(self.candidate.instance.label)
        return self._request("box", box=tuple(float(v) for v in box), label=label)  # type: ignore[arg-type]

    def request_point(self, x: float, y: float) -> bool:
        """Ask the model for the candidates covering image point (x, y)."""
        return self._request("point", point=(float(x), float(y)))

    def _request(
        self,
        kind: str,
        box: tuple[float, float, float, float] | None = None,
        point: tuple[float, float] | None = None,
        label: int | None = None,
    ) -> bool:
        problem = self._model_problem(kind)
        if problem:
            self.status(problem, 10000)
            return False
        image, path = self.window.current_image, self.c.current_path
        if image is None or path is None or not self.has_image:
            self.status("Open an image first.")
            return False
        self._serial += 1
        serial = self._serial
        self._cached_path = path
        answered, failed = self._answered, self._failed

        def job(segmenter: Any) -> None:
            start = time.perf_counter()
            try:
                if segmenter is None:
                    raise PromptError(NO_MODEL.format(tool=kind.capitalize()))
                prediction = None
                if kind == "box":
                    prediction = segmenter.trace_box(image, box, label)
                    instances = list(prediction.instances)
                else:
                    assert point is not None
                    instances = segmenter.segment_point(image, point[0], point[1])
                candidates = [Candidate(i, mask_contours(i.mask), hatched_argb(i.mask.bits)) for i in instances]
                names = list(segmenter.class_names)
            except MaskScopeError as exc:
                _emit(failed, serial, str(exc))
                return
            except Exception as exc:  # a model error is reported, never kills the worker
                _emit(failed, serial, f"The {kind} prompt failed: {type(exc).__name__}: {exc}")
                return
            seconds = time.perf_counter() - start
            _emit(answered, PromptAnswer(serial, path, kind, box, point, candidates, names, prediction, seconds))

        self.window.worker.run_job(job)
        what = "box" if kind == "box" else "click"
        self.status(f"Asking the model about the {what}\u2026", 3000)
        return True

    def _on_answer(self, answer: PromptAnswer) -> None:
        if answer.serial != self._serial or answer.path != self.c.current_path:
            return  # a newer request is on its way, or the image changed
        if self.c.tool_name != answer.kind:
            return  # the tool was put away meanwhile
        if not answer.candidates:
            self.discard(quiet=True)
            x, y = answer.point or (0.0, 0.0)
            self.status(f"No object the model can segment covers ({x:.0f}, {y:.0f}); try the box tool.", 8000)
            return
        self.answer = answer
        self.index = 0
        self._show()

    def _on_failed(self, serial: int, message: str) -> None:
        if serial != self._serial:
            return
        self.item.set_band(None)
        self.status(message, 12000)

    # ==============================================================================================
    # The candidate
    # ==============================================================================================
    def _show(self) -> None:
        answer, cand = self.answer, self.candidate
        if answer is None or cand is None:
            return
        inst = cand.instance
        name = answer.class_names[inst.label] if 0 <= inst.label < len(answer.class_names) else f"class {inst.label}"
        n = len(answer.candidates)
        count = f"  {self.index + 1}/{n}" if n > 1 else ""
        label = f"prompt: {name} {inst.score:.2f}{count}"
        box = (
            QRectF(QPointF(answer.box[0], answer.box[1]), QPointF(answer.box[2], answer.box[3])) if answer.box else None
        )
        point = QPointF(*answer.point) if answer.point else None
        m = inst.mask
        self.item.set_candidate(cand.fill, int(m.x0), int(m.y0), cand.contours, label, box, point)
        self._inspect(answer.prediction)
        ms = answer.seconds * 1000
        if answer.kind == "box":
            more = "Enter accepts, Esc discards, Shift+drag refines"
        else:
            more = f"candidate {self.index + 1} of {n}: Tab or wheel for the next, Enter accepts, Esc discards"
        self.status(f"Prompt: {name} {inst.score:.2f}, {inst.area:,} px in {ms:.0f} ms ({more}).", 15000)
        self.candidateChanged.emit()

    def cycle(self, step: int = 1) -> bool:
        """Show the next (``step`` > 0) or previous candidate of a click."""
        if self.answer is None or len(self.answer.candidates) < 2:
            return False
        self.index = (self.index + step) % len(self.answer.candidates)
        self._show()
        return True

    def discard(self, quiet: bool = False) -> bool:
        """Drop the shown candidate (and ignore a request still on its way)."""
        had = self.answer is not None
        self._serial += 1
        self.answer = None
        self.index = 0
        self.item.clear()
        self._inspect(None)
        if had:
            if not quiet:
                self.status("Prompt discarded.", 3000)
            self.candidateChanged.emit()
        return had

    def accept(self) -> bool:
        """Make the shown candidate an annotation: stored as a prediction of the "prompt" run, then
        accepted like any prediction (one undo step)."""
        answer, cand = self.answer, self.candidate
        path = self.c.current_path
        if answer is None or cand is None or path is None:
            self.status("No prompt to accept: drag a box (B) or click an object (K) first.")
            return False
        if answer.path != path:
            self.discard(quiet=True)
            return False
        found = self.c.files.registry.find(path)
        if found is None:
            self.status("This image has no project to store the annotation in.")
            return False
        project, name = found
        inst = cand.instance
        if not inst.mask.bits.any():
            self.status("The prompt's mask is empty; nothing to accept.")
            return False
        try:
            run_id = self._prompt_run(project, answer.class_names)
            size: tuple[int, int] = self.c.image_size or inst.mask.image_size
            stored = project.add_predictions(run_id, name, Prediction(size, [inst], answer.class_names))
        except MaskScopeError as exc:
            self.status(f"The prompt could not be stored: {exc}", 12000)
            return False
        pending = [p for p in stored if p.review == "pending"]
        if not pending:
            self.status("The prompt could not be stored.", 12000)
            return False
        new = max(pending, key=lambda p: p.id)
        category = answer.class_names[inst.label]
        ok = self.c.accept_stored([(new, inst, category)], f"Accept Prompt ({category})")
        if ok:
            self.discard(quiet=True)
            self.status(f"Accepted the prompt as annotation #{self.c.selected_id} ({category}); Ctrl+Z undoes.", 8000)
        return ok

    def _prompt_run(self, project: Project, class_names: list[str]) -> int:
        """The project's run for prompts of this model (made once; the active run stays the reviewed one)."""
        choice = self.window.models.active
        label = choice.label if choice is not None else "model"
        for run in reversed(project.runs()):
            if run.model == PROMPT_RUN and run.settings.get("label") == label and run.class_names == class_names:
                return run.id
        reviewed = project.active_run
        settings = {
            "class_names": list(class_names),
            "label": label,
            "architecture": choice.architecture if choice is not None else "",
            "config": (choice.config or "") if choice is not None else "",
            "prompt": True,
        }
        weights = (choice.weights or "") if choice is not None else ""
        run_id = project.add_run(PROMPT_RUN, settings, weights if weights != "random" else "")
        if reviewed is not None:
            project.set_active_run(reviewed)  # add_run makes the new run active: keep reviewing the model's
        return run_id

    # ==============================================================================================
    # Inspectors
    # ==============================================================================================
    def _inspect(self, prediction: Prediction | None) -> None:
        for dock in getattr(self.window, "inspector_docks", None) or []:
            show = getattr(dock, "show_prompt", None)
            if show is not None:
                show(prediction)

    # ==============================================================================================
    # Keys and wheel (forwarded by the editing controller while a prompt tool is active)
    # ==============================================================================================
    def key_event(self, event: QKeyEvent, etype: QEvent.Type) -> bool:
        """Enter, Esc, Tab and Shift+Tab on the canvas; True when the key is ours."""
        key = event.key()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        shift = mods == Qt.KeyboardModifier.ShiftModifier
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not mods:
            action = self.accept if self.answer is not None else None
        elif key == Qt.Key.Key_Escape and not mods:
            action = self.discard if self.answer is not None else None
        elif key == Qt.Key.Key_Tab and not mods:
            action = (lambda: self.cycle(1)) if self.answer is not None else None
        elif key == Qt.Key.Key_Backtab or (key == Qt.Key.Key_Tab and shift):
            action = (lambda: self.cycle(-1)) if self.answer is not None else None
        else:
            action = None
        if action is None:
            return False
        event.accept()
        if etype == QEvent.Type.KeyPress:
            action()
        return True  # ShortcutOverride accepted: the key comes to the canvas, not a window shortcut

    def wheel(self, event: QWheelEvent) -> bool:
        """The wheel cycles through a click's candidates (Ctrl+wheel still zooms)."""
        if self.answer is None or len(self.answer.candidates) < 2:
            return False
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return False
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0:
            return False
        self.cycle(-1 if delta > 0 else 1)  # wheel down: the next (worse) candidate
        event.accept()
        return True

    # ==============================================================================================
    # Image and model changes
    # ==============================================================================================
    def _on_image_changed(self, path: str) -> None:
        self.discard(quiet=True)
        if self._cached_path is not None and self._cached_path != path:
            self._cached_path = None
            # The features of the last prompted image are freed in the worker, where they live.
            self.window.worker.run_job(
                lambda seg: seg.clear_prompt_cache() if hasattr(seg, "clear_prompt_cache") else None
            )

    def _on_model_changed(self) -> None:
        self._cached_path = None
        if self.discard(quiet=True):
            self.status("The model changed: the prompt was discarded.", 6000)


def _emit(signal: Any, *args: Any) -> None:
    try:
        signal.emit(*args)
    except RuntimeError:  # the window is gone
        pass
