"""After "Use these weights": predict the project's images not reviewed yet, in the background.

A daemon thread (``app.jobs.BackgroundTask``) loads the checkpoint and writes a new prediction run
through its own connection to the project store (``engine.predict_run``), so the window never
waits; progress and the result come back as queued signals. Cancel stops before the next image; what was predicted
so far stays in the run.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.jobs import BackgroundTask
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
        self._task = BackgroundTask(self, name="predict-rest")
        self._task.progress.connect(lambda done_total: self.progress.emit(*done_total))
        self._task.succeeded.connect(self.finished)
        self._task.failed.connect(self.failed)

    @property
    def running(self) -> bool:
        return self._task.running

    def start(self, project, names: list[str], checkpoint: str, device: str | None = None) -> None:
        if self.running:
            raise RuntimeError("a prediction run is already going")
        project.flush()  # the worker's connection sees every edit committed so far
        db, folder = project.db_path, project.folder

        def work(report, cancel):
            from engine.models import load_segmenter

            segmenter = load_segmenter(checkpoint, device=device)
            return predict_into_store(
                db, folder, names, segmenter, f"{segmenter.architecture} ({Path(checkpoint).name})", checkpoint,
                settings={"score_thresh": getattr(segmenter, "score_thresh", None), "after_training": True},
                progress=lambda done, total: report((done, total)), cancel=cancel.is_set,
            )  # fmt: skip

        self._task.start(work)

    def cancel(self) -> None:
        self._task.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (app exit, tests); True when it has."""
        return self._task.wait(timeout)
