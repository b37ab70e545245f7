"""COCO export off the GUI thread, with progress and cancel.

The GUI thread takes a consistent copy first (``ImageAnnotations.copy()`` shares the immutable
instances, so this is cheap); the worker encodes masks and writes the file atomically while the
user keeps editing.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from app.jobs import JobThread
from engine.annotations import ClassList
from engine.coco_io import ExportCancelled, export_coco
from engine.errors import MaskScopeError
from engine.project import Project


class ExportJob(QObject):
    progress = Signal(int, int)  # images done, total
    finished = Signal(object)  # engine.coco_io.ExportStats
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: JobThread | None = None
        self._cancel = threading.Event()
        self.running = False

    def start(self, project: Project, path: str, segmentation: str) -> None:
        if self.running:
            raise RuntimeError("an export is already running")
        classes = ClassList(project.classes.categories)
        images = [entry.copy() for entry in project.annotated_images()]
        for img in images:  # a class used by an instance must be in the exported categories
            for name in sorted(img.categories() - set(classes.names)):
                classes.ensure(name)
        info, licenses = project.info, project.licenses
        self._cancel.clear()
        self.running = True
        if self._thread is None:
            self._thread = JobThread("maskscope-export")

        def job() -> None:
            try:
                stats = export_coco(
                    path,
                    images,
                    classes,
                    segmentation,
                    info=info,
                    licenses=licenses,
                    progress=lambda done, total: self._emit(self.progress, done, total),
                    cancel=self._cancel.is_set,
                )
            except ExportCancelled:
                self._done(self.cancelled)
            except MaskScopeError as exc:
                self._done(self.failed, str(exc))
            except Exception as exc:  # an unexpected bug still ends as a message, never a hung job
                self._done(self.failed, f"Export to {path} failed: {type(exc).__name__}: {exc}")
            else:
                self._done(self.finished, stats)

        self._thread.submit(job)

    def cancel(self) -> None:
        self._cancel.set()

    def _done(self, signal, *args) -> None:
        self.running = False
        self._emit(signal, *args)

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the receiver is gone (window closed while exporting)
            pass

    def shutdown(self) -> None:
        if self._thread is not None:
            self._cancel.set()
            self._thread.stop(timeout=2.0)
            self._thread = None
