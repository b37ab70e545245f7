"""After "Use these weights": predict the project's images not reviewed yet, in the background.

A plain daemon thread loads the checkpoint and writes a new prediction run through its own
connection to the project store (``engine.predict_run``), so the window never waits; progress and
the result come back as queued signals. Cancel stops before the next image; what was predicted
so far stays in the run.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.errors import MaskScopeError
from engine.predict_run import images_not_done, predict_into_store


def names_to_predict(project) -> list[str]:
    """The project's images whose status is not 'done' (one query for the stored statuses)."""
    statuses = {name: s.status for name, s in project.summaries().items()}
    return images_not_done(project.image_names(), statuses)


class PredictRestJob(QObject):
    progress = Signal(int, int)  # images done, total
    finished = Signal(object)  # engine.predict_run.PredictRunResult
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, project, names: list[str], checkpoint: str, device: str | None = None) -> None:
        if self.running:
            raise RuntimeError("a prediction run is already going")
        project.flush()  # the worker's connection sees every edit committed so far
        db, folder = project.db_path, project.folder
        self._cancel = threading.Event()
        cancel = self._cancel

        def work() -> None:
            try:
                from engine.models import load_segmenter

                segmenter = load_segmenter(checkpoint, device=device)
                result = predict_into_store(
                    db, folder, names, segmenter, f"{segmenter.architecture} ({Path(checkpoint).name})", checkpoint,
                    settings={"score_thresh": getattr(segmenter, "score_thresh", None), "after_training": True},
                    progress=self.progress.emit, cancel=cancel.is_set,
                )  # fmt: skip
            except MaskScopeError as exc:
                self.failed.emit(str(exc))
            except Exception as exc:  # noqa: BLE001 - shown to the user; the thread must not die silently
                self.failed.emit(f"{type(exc).__name__}: {exc}")
            else:
                self.finished.emit(result)

        self._thread = threading.Thread(target=work, name="predict-rest", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (app exit, tests); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running
