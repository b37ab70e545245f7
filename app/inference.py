"""Model loading and inference in one background thread; results come back as Qt signals.

The segmenter lives in that thread only. Jobs run in submission order, so "load model, then run"
needs no extra synchronisation. Work that would otherwise land on the GUI thread when a result
arrives (mask outlines) is done here too, so showing a result costs the GUI almost nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.instance_overlay import PreparedOverlay, prepare_overlay
from app.jobs import JobThread
from app.model_catalog import LoadRequest, ModelChoice, build_segmenter

if TYPE_CHECKING:
    from engine.segmenter import Segmenter  # torch loads in the worker, not at import


def default_torch_threads() -> int:
    """All cores but one, so the GUI thread always finds a free core while a model runs.

    On a dual-core machine that would halve inference speed for little gain: the GUI thread needs
    almost no CPU, torch releases the GIL inside its ops, and the scheduler favours the sleeping GUI
    thread; bench/bench_gui_responsiveness.py measured stalls within target with 2 threads there.
    """
    cores = os.cpu_count() or 2
    return cores if cores <= 2 else cores - 1


@dataclass
class PredictionResult:
    """What a finished prediction hands to the GUI."""

    path: str
    prediction: object  # engine.segmenter.Prediction
    overlay: PreparedOverlay  # outlines, areas and the mask layer, computed here, not on the GUI thread
    seconds_total: float  # request to result, including image decoding and outlines
    job_id: int


class InferenceWorker(QObject):
    """Owns the segmenter and runs model loads and predictions in a background thread."""

    modelLoaded = Signal(object, object)  # ModelChoice, Segmenter
    modelFailed = Signal(object, str)  # ModelChoice, message
    predictionReady = Signal(object)  # PredictionResult
    predictionFailed = Signal(str, str)  # path, message
    progress = Signal(int, int, str)  # done, total, path being processed
    folderFinished = Signal(int, int, bool)  # done, total, cancelled
    busyChanged = Signal(bool)
    torchReady = Signal(bool)  # torch imported in the worker; True when CUDA is available

    def __init__(self, parent: QObject | None = None, torch_threads: int | None = None) -> None:
        super().__init__(parent)
        self._thread = JobThread("maskscope-inference")
        self._segmenter: Segmenter | None = None
        self._cancel_tokens: set[threading.Event] = set()
        self._torch_threads = torch_threads or default_torch_threads()
        self._job_counter = 0
        self._lock = threading.Lock()
        # torch is imported by the first job, not here: importing it while the window is being
        # built would compete with the GUI thread for the GIL and delay the first show.
        self._torch_configured = False

    # --- GUI-thread API ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._thread.busy

    def load_model(self, request: LoadRequest) -> None:
        self._submit(lambda: self._load(request))

    def predict(
        self, path: str, image: np.ndarray | None = None, threshold: float | None = None, trace: bool = False
    ) -> int:
        """Queue one prediction; ``image`` (RGB) saves decoding the file again. Returns the job id.

        ``threshold``: the GUI's score threshold, so the mask layer can be composited here already.
        ``trace``: also capture the model's internals for the inspectors.
        """
        job_id = self._next_id()
        self._submit(lambda: self._predict_one(path, image, job_id, threshold, trace))
        return job_id

    def predict_folder(self, paths: list[str], threshold: float | None = None) -> int:
        """Queue predictions for ``paths`` as one cancellable job with progress. Returns the job id."""
        job_id = self._next_id()
        token = threading.Event()
        with self._lock:
            self._cancel_tokens.add(token)
        self._submit(lambda: self._predict_many(list(paths), job_id, token, threshold))
        return job_id

    def cancel(self) -> None:
        """Stop folder runs after the image in progress."""
        with self._lock:
            for token in self._cancel_tokens:
                token.set()

    def set_segmenter(self, choice: ModelChoice, segmenter: object) -> None:
        """Use an already built segmenter (tests, or a model a training run just produced)."""

        def install() -> None:
            self._segmenter = cast("Segmenter", segmenter)  # any object with Segmenter.predict (tests: fakes)
            self._emit(self.modelLoaded, choice, segmenter)

        self._submit(install)

    def run_job(self, job: Callable[[object], None]) -> None:
        """Run ``job(segmenter)`` in the worker thread after what is queued (prompts: the segmenter's
        per-image feature cache lives in this thread). ``segmenter`` is None while no model is loaded;
        the job reports its own result and errors."""
        self._submit(lambda: job(self._segmenter))

    def shutdown(self) -> None:
        self.cancel()
        self._thread.stop(timeout=2.0)

    # --- worker thread -------------------------------------------------------------------------
    def _next_id(self) -> int:
        with self._lock:
            self._job_counter += 1
            return self._job_counter

    def _submit(self, job: Callable[[], None]) -> None:
        def wrapped() -> None:
            self._emit(self.busyChanged, True)
            if not self._torch_configured:  # only this thread reads or writes the flag
                self._torch_configured = True
                self._configure_torch()
            try:
                job()
            finally:
                self._emit(self.busyChanged, self._thread_has_more())

        self._thread.submit(wrapped)

    def _thread_has_more(self) -> bool:
        # Called from inside a job: queued jobs beyond this one mean the worker stays busy.
        return self._thread.pending() > 0

    def _configure_torch(self) -> None:
        import torch

        torch.set_num_threads(self._torch_threads)
        self._emit(self.torchReady, bool(torch.cuda.is_available()))

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # receiver gone: the window is closing
            pass

    def _load(self, request: LoadRequest) -> None:
        from engine.errors import MaskScopeError

        try:
            segmenter = build_segmenter(request)
        except MaskScopeError as exc:
            self._emit(self.modelFailed, request.choice, str(exc))
            return
        except Exception as exc:  # torch/torchvision errors on a malformed file still become a dialog
            self._emit(self.modelFailed, request.choice, f"{type(exc).__name__}: {exc}")
            return
        self._segmenter = segmenter
        self._emit(self.modelLoaded, request.choice, segmenter)

    def _run(
        self, path: str, image: np.ndarray | None, job_id: int, threshold: float | None, trace: bool = False
    ) -> PredictionResult:
        start = time.perf_counter()
        if self._segmenter is None:
            from engine.errors import WeightsError

            raise WeightsError("No model is loaded. Choose one in the Model menu first.")
        if image is None:
            from engine.imageio import load_image

            image = load_image(path).rgb
        prediction = self._segmenter.predict(image, trace=trace)
        masks = [inst.mask for inst in prediction.instances]
        visible = None
        if threshold is not None:
            visible = np.array([inst.score >= threshold for inst in prediction.instances], bool)
        overlay = prepare_overlay(masks, prediction.image_size, visible)
        return PredictionResult(path, prediction, overlay, time.perf_counter() - start, job_id)

    def _predict_one(
        self, path: str, image: np.ndarray | None, job_id: int, threshold: float | None, trace: bool = False
    ) -> None:
        from engine.errors import MaskScopeError

        try:
            result = self._run(path, image, job_id, threshold, trace)
        except MaskScopeError as exc:
            self._emit(self.predictionFailed, path, str(exc))
            return
        except Exception as exc:
            self._emit(self.predictionFailed, path, f"Inference failed on {path}: {type(exc).__name__}: {exc}")
            return
        self._emit(self.predictionReady, result)

    def _predict_many(self, paths: list[str], job_id: int, cancel: threading.Event, threshold: float | None) -> None:
        from engine.errors import MaskScopeError

        total = len(paths)
        done = 0
        for path in paths:
            if cancel.is_set():
                break
            self._emit(self.progress, done, total, path)
            try:
                self._emit(self.predictionReady, self._run(path, None, job_id, threshold))
            except MaskScopeError as exc:
                self._emit(self.predictionFailed, path, str(exc))
                if self._segmenter is None:
                    break  # nothing will work without a model
            except Exception as exc:
                self._emit(self.predictionFailed, path, f"Inference failed on {path}: {type(exc).__name__}: {exc}")
            done += 1
        self._emit(self.progress, done, total, "")
        with self._lock:
            self._cancel_tokens.discard(cancel)
        self._emit(self.folderFinished, done, total, done < total)
