"""COCO export off the GUI thread, with progress and cancel.

The GUI thread waits for the store's writer (every edit so far committed) and picks the exported
classes; the worker reads the store on its own read-only connection, in one read transaction (a
consistent snapshot while the user keeps editing), and writes the file atomically.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.jobs import JobThread
from engine.coco_io import ExportCancelled, dumps
from engine.errors import MaskScopeError
from engine.fileio import atomic_write_text
from engine.project import Project
from engine.store.export import build_coco_from_store
from engine.store.store import ProjectStore


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
        project.flush()
        classes = project.exported_classes()
        db_path = project.db_path
        self._cancel.clear()
        self.running = True
        if self._thread is None:
            self._thread = JobThread("maskscope-export")

        def job() -> None:
            try:
                start = time.perf_counter()
                store = ProjectStore(db_path, readonly=True)
                try:  # one read transaction inside: a consistent snapshot
                    coco, stats = build_coco_from_store(
                        store,
                        classes,
                        segmentation,
                        progress=lambda done, total: self._emit(self.progress, done, total),
                        cancel=self._cancel.is_set,
                    )
                finally:
                    store.close()
                atomic_write_text(Path(path), dumps(coco))
                stats.seconds = time.perf_counter() - start
                stats.path = Path(path)
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
