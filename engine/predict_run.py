"""Predict images of a project into a new prediction run of its store, from any thread.

What the app runs after "Use these weights" on the images not reviewed yet: the work happens on a
background thread with its own connection to ``<folder>/.maskscope/project.db`` (a store is used
by one thread), so the window never waits; each image's predictions are one transaction, so a
cancel or a crash keeps every image finished so far. The run records the model, the weights file
and its SHA-256, and the class names its labels index (``RunRow.class_names``), and becomes the
project's active run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.errors import MaskScopeError
from engine.store.store import STATUSES, ProjectStore

DONE = STATUSES[-1]  # 'done': reviewed by the user; never predicted again behind their back


class Predictor(Protocol):
    class_names: list[str]

    def predict(self, image): ...


@dataclass
class PredictRunResult:
    run_id: int
    total: int
    done: int = 0
    cancelled: bool = False
    failed: list[tuple[str, str]] = field(default_factory=list)  # (image, why)

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "finished"
        text = f"prediction run #{self.run_id} {state}: {self.done} of {self.total} images predicted"
        if self.failed:
            text += f"; {len(self.failed)} could not be read ({self.failed[0][0]}: {self.failed[0][1]})"
        return text


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def images_not_done(names: Sequence[str], statuses: dict[str, str]) -> list[str]:
    """``names`` whose review status (``statuses``, by name; missing: 'new') is not 'done'."""
    return [n for n in names if statuses.get(n, STATUSES[0]) != DONE]


def predict_into_store(
    db_path: str | Path,
    folder: str | Path,
    names: Sequence[str],
    segmenter: Predictor,
    model: str,
    weights: str | Path = "",
    settings: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PredictRunResult:
    """Add a prediction run and predict ``names`` (relative to ``folder``) into it, image by image."""
    from engine.imageio import load_image

    folder = Path(folder)
    store = ProjectStore(db_path)
    try:
        run_settings = {"class_names": list(segmenter.class_names), "images": len(names), **(settings or {})}
        digest = file_sha256(weights) if weights and Path(weights).is_file() else ""
        run_id = store.add_run(model, run_settings, str(weights), digest)
        store.set_meta("active_run", run_id)
        result = PredictRunResult(run_id, len(names))
        for k, name in enumerate(names):
            if cancel is not None and cancel():
                result.cancelled = True
                break
            try:
                image = load_image(folder / name).rgb
                prediction = segmenter.predict(image)
                store.add_predictions(run_id, name, prediction)
            except MaskScopeError as exc:  # unreadable image, or a size that no longer matches
                result.failed.append((name, str(exc)))
            else:
                result.done += 1
            if progress is not None:
                progress(k + 1, len(names))
        return result
    finally:
        store.close()
