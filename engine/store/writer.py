"""Writes to the project database, in order, either at once or on a background thread.

The GUI hands each edit to a ``BackgroundWriter`` and goes on: encoding masks and committing run
on the writer's own thread and connection, so the event loop never waits on the disk. A job is a
function of the writer's ``ProjectStore``; jobs run one at a time, in submission order, each in its
own transaction (a batch of jobs shares one). ``flush()`` waits until everything submitted is
committed. A job that fails is reported to ``on_error`` and the jobs after it still run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from engine.store.store import ProjectStore

Job = Callable[[ProjectStore], object]


class Writer:
    """Runs jobs immediately on the caller's store (CLI, tests, worker processes)."""

    def __init__(self, store: ProjectStore, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.store = store
        self.on_error = on_error
        self.latencies: list[float] = []  # seconds from submit to commit, per job

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        start = time.perf_counter()
        try:
            with self.store.transaction():
                result = job(self.store)
        except BaseException as exc:  # noqa: BLE001 - reported, then raised to the caller
            future.set_exception(exc)
            raise
        self.latencies.append(time.perf_counter() - start)
        future.set_result(result)
        return future

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None


class BackgroundWriter(Writer):
    """Runs jobs on its own thread and connection; ``submit`` returns at once."""

    def __init__(self, db_path: Path, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.db_path = db_path
        self.on_error = on_error
        self.latencies = []
        self._queue: queue.Queue[tuple[Job, Future, float] | None] = queue.Queue()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="project-store-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        self._queue.put((job, future, time.perf_counter()))
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every job submitted so far is committed (or failed)."""
        marker: Future = Future()
        self._queue.put((lambda _s: None, marker, time.perf_counter()))
        marker.result(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        try:
            store = ProjectStore(self.db_path)
        except BaseException as exc:  # noqa: BLE001 - handed to the constructor
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                job, future, submitted = item
                try:
                    with store.transaction():
                        result = job(store)
                except BaseException as exc:  # noqa: BLE001 - one failed edit must not stop the others
                    future.set_exception(exc)
                    if self.on_error is not None:
                        self.on_error(exc)
                    continue
                self.latencies.append(time.perf_counter() - submitted)
                future.set_result(result)
        finally:
            store.close()
