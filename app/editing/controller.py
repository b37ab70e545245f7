"""The editing controller: annotations of the image on screen, the tools, undo, and never losing work.

State it owns: one undo stack per image (``History``), the brush/eraser/polygon tools, the class
picker above the instance list. It shows annotations through the window's one overlay stack
(``canvas.overlay``) and one instance list, and selects through the window's one selection
(``window.selection``; ``selected_id`` is the selected annotation's id). Opening project stores,
save/import/export and closing are ``ProjectFiles`` (``self.files``); stored predictions, runs
and the file list's review workflow are ``ReviewController`` (``self.review``).

Every change to an image's annotations, and every accept or reject of a stored prediction, goes
through ``History.push(SnapshotCommand)`` and comes back through ``apply_snapshot``, which writes
it through the store (``Project.commit``: instances and review states in one transaction, on the
writer thread) and updates the overlay (dirty rectangles only), the list, the prediction view and
the file list. Nothing else writes to ``ImageAnnotations``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QWheelEvent
from PySide6.QtWidgets import QLabel, QSizePolicy

from app import dialogs
from app.editing import prompts
from app.editing.actions import build_editing_actions
from app.editing.brush_tool import MAX_SIZE, MIN_SIZE, SIZE_STEP, BrushTool
from app.editing.class_picker import pick_class
from app.editing.class_row import NewClassRow
from app.editing.files import ProjectFiles
from app.editing.history import History, Reviews, Snapshot, SnapshotCommand
from app.editing.mask_ops import fill_holes
from app.editing.polygon_tool import PolygonTool
from app.editing.prompt_tool import PromptTool
from app.editing.prompting import PromptController
from app.editing.review import ReviewController
from app.editing.stroke import Point, Stroke
from app.image_loader import normalise_path
from app.selection import ItemKey, annotation_id, annotation_key
from engine.annotations import AnnotatedInstance, ImageAnnotations
from engine.errors import MaskScopeError
from engine.masks import CroppedMask
from engine.project import Project

if TYPE_CHECKING:
    from app.main_window import MainWindow
    from engine.prediction import Instance
    from engine.store.store import StoredPrediction

TOOLS = ("select", "brush", "eraser", "polygon", "box", "point")


class EditingController(QObject):
    annotationsChanged = Signal(str)  # image path whose annotations changed
    annotationSelected = Signal(int)  # instance id on the current image, -1 for none
    toolChanged = Signal(str)
    brushSizeChanged = Signal(float)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.settings = window.settings
        self.history = History(self)
        self.overlay = self.canvas.overlay  # the one overlay stack: annotations are drawn there
        self.list = window.instance_list  # the one instance list: annotations are listed there
        self.class_row = NewClassRow()
        self.status_label = QLabel()
        self.status_label.setEnabled(False)
        # Its width never widens the dock: a long line is cut at the dock's edge (the tooltip has it all).
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.list.add_header(self.class_row)
        self.list.add_footer(self.status_label)
        # Any: each tool kind has its own API beside the CanvasTool protocol (callers know which they hold).
        self.tools: dict[str, Any] = {"brush": BrushTool(self, eraser=False), "eraser": BrushTool(self, eraser=True)}
        self.tools["polygon"] = PolygonTool(self)
        self.prompts = PromptController(self)  # issue 11: the Box and Point tools ask the model
        self.tools["box"] = PromptTool(self.prompts, "box")
        self.tools["point"] = PromptTool(self.prompts, "point")
        self.tool_name = "select"
        self.brush_size = self.settings.get_float("editing/brush_size", 24.0)
        self.erase_others = self.settings.get_bool("editing/erase_others", False)
        self.current_class: str | None = None

        self._path: str | None = None  # image on screen whose annotations are shown
        self._project: Project | None = None
        self._name: str | None = None
        self._annotation_selected = -1  # last annotation id announced by annotationSelected
        self._stroke: Stroke | None = None
        self.files = ProjectFiles(self)
        self.review = ReviewController(self)
        self.actions = build_editing_actions(self)

        window.imageShown.connect(self._on_image_shown)
        window.imageFailed.connect(self._on_image_failed)
        window.selection.changed.connect(self._on_selection)
        self.canvas.zoomChanged.connect(self._on_zoom)
        self.list.relabelRequested.connect(lambda i: self.relabel(i))
        self.list.deleteRequested.connect(lambda i: self.delete(i))
        self.list.fillHolesRequested.connect(lambda i: self.fill_holes(i))
        self.list.acceptRequested.connect(lambda i: self.accept_prediction(i))
        self.class_row.currentClassChanged.connect(self.set_current_class)
        self.class_row.addClassRequested.connect(self.add_class)
        self.files.projectOpened.connect(lambda _p: self._refresh_classes())
        self.files.projectOpened.connect(self.review.project_opened)
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.timeout.connect(self.files.update_status)
        self.canvas.installEventFilter(self)
        self._viewport = self.canvas.viewport()  # kept: no C++ call in eventFilter while the window dies
        self._viewport.installEventFilter(self)
        self._update_actions()

    # ==============================================================================================
    # Public state
    # ==============================================================================================
    @property
    def project(self) -> Project | None:
        return self._project

    @property
    def current_path(self) -> str | None:
        return self._path

    @property
    def annotations(self) -> ImageAnnotations | None:
        """The current image's annotations (None while no image is shown)."""
        if self._project is None or self._name is None:
            return None
        return self._project.annotations(self._name)

    @property
    def image_size(self) -> tuple[int, int] | None:
        ann = self.annotations
        return ann.image_size if ann is not None else None

    @property
    def selected_id(self) -> int:
        """The selected annotation's id (-1: none, or a prediction is selected)."""
        return annotation_id(self.window.selection.key)

    def selected_annotation(self) -> AnnotatedInstance | None:
        ann, selected = self.annotations, self.selected_id
        return ann.find(selected) if ann is not None and selected > 0 else None

    @property
    def tool(self):
        return self.tools.get(self.tool_name)

    def status(self, text: str, ms: int = 6000) -> None:
        self.window.statusBar().showMessage(text, ms)

    # ==============================================================================================
    # Images and projects
    # ==============================================================================================
    def _on_image_shown(self, path: str) -> None:
        self._commit_stroke()  # a stroke still held when the image changes belongs to the old image
        path = normalise_path(path)
        try:
            project, name = self.files.project_for(path)
            ann = project.annotations(name)
        except MaskScopeError as exc:
            self._show_none()
            self.status(f"Annotations unavailable for {Path(path).name}: {exc}", 10000)
            return
        image = self.window.current_image
        if image is not None and tuple(image.shape[:2]) != ann.image_size:
            self._show_none()
            dialogs.show_error(
                self.window,
                "Annotations do not fit the image",
                f"{path} is {image.shape[1]}x{image.shape[0]} but its annotations in "
                f"{project.annotations_path} are for {ann.width}x{ann.height}. They are kept as they are; "
                "editing is off for this image.",
            )
            return
        self._project, self._name, self._path = project, name, path
        self._deselect_annotation()
        self.overlay.set_annotation_image(ann.image_size, ann.instances)
        self.list.set_annotations(ann.instances, self.overlay.rgb)
        self.history.activate(path)
        if self.tool_name == "polygon":
            self.tools["polygon"].cancel()
            self.tools["polygon"].refresh()
        self._refresh_classes()
        self._update_actions()
        self.files.update_status()
        self.review.image_shown(project)
        self.review.load(path)  # the active run's stored predictions, without running the model

    def _on_image_failed(self, path: str, _message: str) -> None:
        self._commit_stroke()
        self._show_none()
        try:
            self.files.project_for(normalise_path(path))  # still open the folder's project: file marks, recovery
        except MaskScopeError:
            pass

    def detach_project(self) -> None:
        """Show no annotations and forget the project (its store is being closed)."""
        self._show_none()
        self._project = None
        self._refresh_classes()
        self.files.update_status()

    def _show_none(self) -> None:
        self._path = self._name = None
        self._deselect_annotation()
        self.overlay.clear_annotations()
        self.list.set_annotations([], self.overlay.rgb)
        self.history.activate(None)
        if self.tool_name == "polygon":
            self.tools["polygon"].cancel()
            self.tools["polygon"].refresh()
        self._update_actions()
        self.files.update_status()

    # ==============================================================================================
    # Applying edits (the only place that writes ImageAnnotations)
    # ==============================================================================================
    def apply_snapshot(self, key: str, snapshot: Snapshot, select: int | None, reviews: Reviews = ()) -> None:
        self._cancel_stroke()
        found = self.files.registry.find(key)
        if found is None:
            return
        project, name = found
        project.commit(name, snapshot, reviews)  # one transaction, committed by the writer thread
        ann = project.annotations(name)
        self.review.refresh_file(key)
        if reviews and key == self._path:
            self.window.refresh_prediction_view()
        if key == self._path:
            self.overlay.set_annotations(ann.instances)
            self.list.set_annotations(ann.instances, self.overlay.rgb)
            keep = self.selected_id if select is None else select  # -1: drop a selected annotation
            if keep > 0 and ann.find(keep) is not None:
                self.window.select_key(annotation_key(keep))
            else:
                self._deselect_annotation()  # a selected prediction stays (until it is reviewed)
            self.overlay.set_selected(self.window.selection.key)  # its outline and label were rebuilt
            if self.tool_name == "polygon":
                self.tools["polygon"].refresh()
        self._refresh_classes()
        self._update_actions()
        self._status_timer.start(300)  # the footer asks the store: not on every stroke
        self.annotationsChanged.emit(key)

    def _push(
        self,
        text: str,
        after: Snapshot,
        select_after: int | None = None,
        reviews_after: Reviews = (),
        reviews_before: Reviews = (),
    ) -> bool:
        """Record and apply an edit of the current image; False when nothing would change."""
        ann = self.annotations
        if ann is None or self._path is None:
            return False
        before = ann.snapshot()
        same = len(before) == len(after) and all(a is b for a, b in zip(before, after, strict=True))
        if same and tuple(reviews_after) == tuple(reviews_before):
            return False
        command = SnapshotCommand(
            self, self._path, text, before, tuple(after), select_after, self.selected_id, reviews_after, reviews_before
        )
        self.history.push(self._path, command)
        return True

    # ==============================================================================================
    # Selection
    # ==============================================================================================
    def select(self, instance_id: int) -> None:
        """Select annotation ``instance_id`` (the one selection; -1 or an unknown id: none)."""
        ann = self.annotations
        if ann is None or ann.find(instance_id) is None:
            self.window.select_key(None)
        else:
            self.window.select_key(annotation_key(instance_id))

    def _deselect_annotation(self) -> None:
        """Drop the selection when it is an annotation (a selected prediction stays)."""
        if self.selected_id > 0:
            self.window.select_key(None)

    def _on_selection(self, key: ItemKey | None) -> None:
        instance_id = annotation_id(key)
        if instance_id == self._annotation_selected:
            return
        self._annotation_selected = instance_id
        if self.tool_name == "polygon":
            tool = self.tools["polygon"]
            tool.active_vertex = None
            tool.refresh()
        inst = self.selected_annotation()
        if inst is not None:
            self.status(f"Annotation #{inst.id}: {inst.category}, {inst.area:,} px ({inst.source})", 6000)
        self._update_actions()
        self.annotationSelected.emit(instance_id)

    # ==============================================================================================
    # Predictions
    # ==============================================================================================
    def _shown_prediction(self):
        """The prediction of the image whose annotations are shown (None while another one loads)."""
        window = self.window
        if self._path is None or window.current_image is None or window.current_image_path != self._path:
            return None
        return window.current_prediction

    def _reviewable(self, index: int) -> tuple[object, object] | str:
        """(prediction, stored prediction) of shown prediction ``index``, or why it cannot be reviewed."""
        pred = self._shown_prediction()
        if pred is None or not 0 <= index < len(pred.instances):
            return "Select a predicted instance (click it)."
        stored = self.review.stored(self._path, wait=True)
        pred = self._shown_prediction()  # storing it may have replaced it
        if pred is None or stored is None or len(stored) != len(pred.instances) or index >= len(stored):
            return "This prediction is not in the project store; run the model again."
        return pred, stored[index]

    def accept_prediction(self, index: int | None = None) -> bool:
        """Add prediction ``index`` (default: the selected one) to the annotations; one undo step."""
        if index is None and self.prompts.answer is not None:
            return self.prompts.accept()  # a prompt candidate on screen is what Accept means
        index = self.window.selected_instance if index is None else index
        found = self._reviewable(index)
        if isinstance(found, str):
            self.status(found + " Accept all takes every shown one.")
            return False
        pred, stored = found
        if stored.review != "pending" or stored.score < self.window.score_threshold:
            why = stored.review if stored.review != "pending" else "below the score threshold"
            self.status(f"Prediction #{index + 1} is not shown ({why}); nothing to accept.")
            return False
        if not pred.instances[index].mask.bits.any():
            self.status(f"Prediction #{index + 1} has an empty mask; nothing to accept.")
            return False
        return self._accept([index], "Accept Prediction")

    def accept_all_predictions(self) -> bool:
        """Accept every shown prediction (pending review, score at or above the threshold)."""
        stored = self.review.stored(self._path, wait=True)
        pred = self._shown_prediction()
        if pred is None or stored is None or len(stored) != len(pred.instances):
            self.status("No prediction on this image: run the model first (Ctrl+R).")
            return False
        thr = self.window.score_threshold
        indices = [
            i
            for i, p in enumerate(stored)
            if p.review == "pending" and p.score >= thr and pred.instances[i].mask.bits.any()
        ]
        if not indices:
            self.status("No shown prediction to accept (lower the score threshold or review rejected ones again).")
            return False
        return self._accept(indices, f"Accept {len(indices)} Predictions")

    def _accept(self, indices: list[int], text: str) -> bool:
        pred = self._shown_prediction()
        stored = self.review.stored(self._path)
        if pred is None or stored is None:
            return False
        items = [(stored[i], pred.instances[i], pred.class_name(pred.instances[i])) for i in indices]
        return self.accept_stored(items, text, tuple(pred.image_size))

    def accept_stored(
        self, items: list[tuple[StoredPrediction, Instance, str]], text: str, size: tuple[int, int] | None = None
    ) -> bool:
        """Annotations from stored predictions of any run (``(stored, instance, class name)``), their
        review states set to accepted: one undo step. Predictions and prompts both come this way."""
        ann, project = self.annotations, self._project
        if ann is None or project is None or not items:
            return False
        sizes = {tuple(size)} if size is not None else {tuple(inst.mask.image_size) for _, inst, _ in items}
        if sizes != {tuple(ann.image_size)}:
            dialogs.show_error(self.window, "Cannot accept", "The prediction is for another image size.")
            return False
        after = list(ann.snapshot())
        next_id = ann.next_id()
        for p, inst, category in items:
            project.classes.ensure(category)
            after.append(
                AnnotatedInstance(
                    next_id, category, inst.mask, score=float(inst.score), source="prediction", prediction_id=p.id
                )
            )
            next_id += 1
        # The accepted prediction leaves the prediction view: it is an annotation now.
        ok = self._push(
            text,
            tuple(after),
            next_id - 1,
            reviews_after=tuple((p.id, "accepted") for p, _, _ in items),
            reviews_before=tuple((p.id, p.review) for p, _, _ in items),
        )
        if ok:
            self.status(f"Accepted {len(items)} predicted instance(s) as annotations (Ctrl+Z undoes).")
        return ok

    def reject_prediction(self, index: int | None = None) -> bool:
        """Reject prediction ``index`` (default: the selected one): stored, undoable."""
        index = self.window.selected_instance if index is None else index
        return self.set_prediction_reviews([index], "rejected")

    def set_prediction_reviews(self, indices: list[int], state: str) -> bool:
        """Reject shown predictions, or put rejected ones back to review; one undo step."""
        stored = self.review.stored(self._path, wait=True)
        pred = self._shown_prediction()
        ann = self.annotations
        if pred is None or stored is None or ann is None or len(stored) != len(pred.instances):
            self.status("Select a predicted instance to reject." if state == "rejected" else "No prediction here.")
            return False
        indices = [i for i in indices if 0 <= i < len(stored)]
        if any(stored[i].review == "accepted" for i in indices):
            self.status("An accepted prediction is an annotation now: undo the accept or delete the annotation.")
        changes = [i for i in indices if stored[i].review not in ("accepted", state)]
        if not changes:
            if not indices:
                self.status("Select a predicted instance to reject.")
            return False
        if state == "rejected":
            text = f"Reject Prediction #{changes[0] + 1}" if len(changes) == 1 else f"Reject {len(changes)} Predictions"
        else:
            text = f"Review {len(changes)} Rejected Prediction(s) Again"
        return self._push(
            text,
            ann.snapshot(),
            None,
            reviews_after=tuple((stored[i].id, state) for i in changes),
            reviews_before=tuple((stored[i].id, stored[i].review) for i in changes),
        )

    # ==============================================================================================
    # Instance edits
    # ==============================================================================================
    def delete(self, instance_id: int | None = None) -> bool:
        ann = self.annotations
        instance_id = self.selected_id if instance_id is None else instance_id
        if ann is None or ann.find(instance_id) is None:
            self.status("Select an annotation to delete.")
            return False
        after = tuple(i for i in ann.snapshot() if i.id != instance_id)
        return self._push(f"Delete #{instance_id}", after, -1)

    def relabel(self, instance_id: int | None = None, category: str | None = None) -> bool:
        """Give an instance another class (asked with the class picker when ``category`` is None)."""
        ann, project = self.annotations, self._project
        instance_id = self.selected_id if instance_id is None else instance_id
        inst = ann.find(instance_id) if ann is not None else None
        if inst is None or project is None:
            self.status("Select an annotation to relabel.")
            return False
        if category is None:
            category = pick_class(self.window, project.classes.names, inst.category, f"Class of #{inst.id}")
            if category is None:
                return False
        if category == inst.category:
            return False
        project.classes.ensure(category)
        after = tuple(i.with_category(category) if i.id == instance_id else i for i in ann.snapshot())
        return self._push(f"Relabel #{instance_id} as {category}", after, instance_id)

    def fill_holes(self, instance_id: int | None = None) -> bool:
        ann = self.annotations
        instance_id = self.selected_id if instance_id is None else instance_id
        inst = ann.find(instance_id) if ann is not None else None
        if inst is None:
            self.status("Select an annotation to fill its holes.")
            return False
        filled = fill_holes(inst.mask)
        if filled.added == 0:
            self.status(f"#{inst.id} has no holes.")
            return False
        after = tuple(i.with_mask(filled.mask) if i.id == instance_id else i for i in ann.snapshot())
        self.status(f"Filled {filled.added:,} px of holes in #{inst.id}.")
        return self._push(f"Fill Holes #{instance_id}", after, instance_id)

    def new_instance(self, category: str | None = None) -> bool:
        """Choose the class of the next instance; the next stroke or polygon creates it."""
        project = self._project
        if project is None or self._path is None:
            self.status("Open an image first.")
            return False
        if category is None:
            category = pick_class(self.window, project.classes.names, self.current_class, "New instance of class")
            if category is None:
                return False
        project.classes.ensure(category)
        self.set_current_class(category)
        self.select(-1)
        if self.tool_name not in ("brush", "polygon"):
            self.set_tool("brush")
        self.status(f"Paint or draw a polygon to create a new \u201c{category}\u201d instance.", 10000)
        return True

    def add_class(self, name: str | None = None) -> bool:
        project = self._project
        if project is None:
            self.status("Open an image folder first: classes belong to its project.")
            return False
        if name is None:
            name = prompts.ask_text(self.window, "Add class", "Name of the new class:")
            if not name:
                return False
        if name in project.classes:
            self.set_current_class(name)
            return False
        project.classes.ensure(name)
        self.set_current_class(name)
        self.files.update_status()
        return True

    def set_current_class(self, name: str) -> None:
        """The class of new instances (added to the project's class list when new)."""
        if not name:
            return
        if self._project is not None:
            self._project.classes.ensure(name)
        if name != self.current_class:
            self.current_class = name
            self._refresh_classes()

    def _refresh_classes(self) -> None:
        project = self._project
        names = project.classes.names if project is not None else []
        if self.current_class not in names:
            self.current_class = None  # never silently the first class: the picker asks (issue 10)
        self.class_row.set_classes(names, self.current_class)

    def _class_for_new(self) -> str | None:
        if self.current_class is None and self._project is not None:
            chosen = pick_class(self.window, self._project.classes.names, None, "Class of the new instance")
            if chosen is None:
                return None
            self._project.classes.ensure(chosen)
            self.set_current_class(chosen)
        return self.current_class

    # ==============================================================================================
    # Brush strokes
    # ==============================================================================================
    def begin_stroke(self, mode: str, point: Point) -> bool:
        ann = self.annotations
        if ann is None:
            return False
        target = self.selected_id if ann.find(self.selected_id) is not None else None
        new_instance = None
        if mode == "brush" and target is None:
            category = self._class_for_new()
            if category is None:
                return False
            empty = CroppedMask(0, 0, np.zeros((0, 0), bool), ann.image_size)
            new_instance = AnnotatedInstance(ann.next_id(), category, empty, source="manual")
        self._stroke = Stroke(
            ann.snapshot(),
            ann.image_size,
            mode,
            self.brush_size / 2.0,
            target,
            new_instance,
            erase_others=self.erase_others and mode == "brush",
        )
        rect = self._stroke.press(point)
        self.overlay.set_overrides(self._stroke.display_masks())
        self.overlay.refresh_rect(rect)
        return True

    def extend_stroke(self, point: Point) -> None:
        stroke = self._stroke
        if stroke is None:
            return
        rect = stroke.move(point)
        self.overlay.set_overrides(stroke.display_masks())
        self.overlay.refresh_rect(rect)

    def end_stroke(self) -> bool:
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            return False
        result = stroke.result()
        self.overlay.clear_overrides()
        changed = stroke.changed(result)
        if changed:
            select = stroke.target_id if any(i.id == stroke.target_id for i in result) else -1
            text = "Brush Stroke" if stroke.mode == "brush" else "Erase"
            changed = self._push(text, result, select)  # recomposites where instances changed
        if not changed:
            self.overlay.refresh_rect(stroke.dirty)  # the working copies are gone: show the model again
        return changed

    @property
    def busy(self) -> bool:
        """A stroke or a vertex drag is in progress."""
        return self._stroke is not None or self.tools["polygon"].dragging

    def commit_pending(self) -> None:
        """Finish what the mouse is doing (closing the window keeps a held stroke)."""
        self._commit_stroke()

    def refresh_current(self) -> None:
        """Re-read the current image's annotations into the overlay and the list (after an import)."""
        ann = self.annotations
        if ann is None:
            return
        self.overlay.set_annotations(ann.instances)
        self.list.set_annotations(ann.instances, self.overlay.rgb)
        if self.selected_id > 0 and ann.find(self.selected_id) is None:
            self._deselect_annotation()
        self.overlay.set_selected(self.window.selection.key)
        self._refresh_classes()

    def _commit_stroke(self) -> None:
        if self._stroke is not None:
            self.end_stroke()
            for name in ("brush", "eraser"):
                self.tools[name].reset()

    def _cancel_stroke(self) -> None:
        """Drop a stroke in progress (an undo or redo while the button is held undoes the stroke)."""
        if self._stroke is not None:
            dirty = self._stroke.dirty
            self._stroke = None
            self.overlay.clear_overrides()
            self.overlay.refresh_rect(dirty)
            for name in ("brush", "eraser"):
                self.tools[name].reset()

    @property
    def stroke(self) -> Stroke | None:
        return self._stroke

    def set_brush_size(self, size: float) -> None:
        size = float(min(max(round(size), MIN_SIZE), MAX_SIZE))  # whole pixels, as the spin box shows
        if abs(size - self.brush_size) < 1e-9:
            return
        self.brush_size = size
        self.settings.set("editing/brush_size", size)
        for name in ("brush", "eraser"):
            self.tools[name].update_cursor_size()
        self.brushSizeChanged.emit(size)
        self.status(f"Brush size {size:.0f} px", 2000)

    def grow_brush(self) -> None:
        self.set_brush_size(max(round(self.brush_size * SIZE_STEP), self.brush_size + 1))

    def shrink_brush(self) -> None:
        self.set_brush_size(min(round(self.brush_size / SIZE_STEP), self.brush_size - 1))

    def set_erase_others(self, on: bool) -> None:
        self.erase_others = bool(on)
        self.settings.set("editing/erase_others", self.erase_others)
        action = self.actions.erase_others if hasattr(self, "actions") else None
        if action is not None and action.isChecked() != self.erase_others:
            action.setChecked(self.erase_others)

    # ==============================================================================================
    # Polygons
    # ==============================================================================================
    def add_polygon_instance(self, polygons: list[list[float]]) -> bool:
        ann = self.annotations
        if ann is None:
            return False
        category = self._class_for_new()
        if category is None:
            return False
        inst = AnnotatedInstance.from_polygons(ann.next_id(), category, polygons, ann.image_size)
        if inst.is_empty:
            self.status("That polygon covers no pixel centre; nothing was added.")
            return False
        return self._push(f"Add Polygon ({category})", ann.snapshot() + (inst,), inst.id)

    def set_polygons(self, polygons: list[list[tuple[float, float]]], text: str) -> bool:
        ann, inst = self.annotations, self.selected_annotation()
        if ann is None or inst is None:
            return False
        flat = [[v for p in poly for v in p] for poly in polygons]
        new = inst.with_polygons(flat)
        if new.is_empty:
            self.status("The polygon would cover no pixel; change undone.")
            self.tools["polygon"].refresh()
            return False
        after = tuple(new if i.id == inst.id else i for i in ann.snapshot())
        return self._push(f"{text} #{inst.id}", after, inst.id)

    # ==============================================================================================
    # Tools
    # ==============================================================================================
    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}; one of {TOOLS}")
        if name == self.tool_name:
            self._sync_tool_actions()
            return
        old = self.tools.get(self.tool_name)
        if old is not None:
            old.deactivate()
        self.tool_name = name
        tool = self.tools.get(name)
        self.canvas.set_tool(tool)
        if tool is not None:
            tool.activate()
        self._sync_tool_actions()
        hints = {
            "select": "Select: click an annotation or a prediction.",
            "brush": "Brush: paint the selected annotation (a new one when none is selected). [ ] change the size.",
            "eraser": "Eraser: erase from the selected annotation (from all when none is selected).",
            "polygon": "Polygon: click points, click the first point or press Enter to close; drag vertices to edit.",
        }
        self.status(hints.get(name) or self.prompts.hint(name), 8000)
        self.toolChanged.emit(name)

    def _sync_tool_actions(self) -> None:
        action = self.actions.tool_actions.get(self.tool_name)
        if action is not None and not action.isChecked():
            action.setChecked(True)

    def _on_zoom(self, _percent: float) -> None:
        for name in ("brush", "eraser"):
            self.tools[name].update_cursor_size()
        if self.tool_name == "polygon":
            self.tools["polygon"].refresh()

    # ==============================================================================================
    # Events: keys for the polygon tool, the brush cursor leaving the canvas
    # ==============================================================================================
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        etype = event.type()
        if watched is self.canvas and etype in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return self._tool_key(event, etype)
        if watched is self._viewport:
            if isinstance(event, QWheelEvent) and self.tool_name == "point" and self.prompts.wheel(event):
                return True  # the wheel cycles a click's candidates
            self._viewport_event(event, etype)
        return False

    def _tool_key(self, event: QKeyEvent, etype: QEvent.Type) -> bool:
        tool = self.tools.get(self.tool_name)
        if isinstance(tool, PromptTool):
            return self.prompts.key_event(event, etype)
        if not isinstance(tool, PolygonTool) or event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return False
        if not tool.wants_key(event.key()):
            return False
        event.accept()
        if etype == QEvent.Type.KeyPress:
            tool.key(event.key())
        return True  # ShortcutOverride accepted: the key comes to us instead of a window shortcut

    def _viewport_event(self, event: QEvent, etype: QEvent.Type) -> None:
        # Clicks select through the canvas (``instanceClicked``: the one hit test of both kinds).
        if etype == QEvent.Type.Leave:
            for name in ("brush", "eraser"):
                self.tools[name].cursor.hide()

    # ==============================================================================================
    # Status
    # ==============================================================================================
    def _update_actions(self) -> None:
        if not hasattr(self, "actions"):
            return
        self.actions.update_enabled()
