"""Background threads, off the GUI thread: a queue of jobs run one at a time (``JobThread``) and a
single cancellable task whose outcome comes back as signals (``BackgroundTask``).

Plain daemon threads (not QThread): a model stuck in a long predict or a stalled download can
never keep the app from quitting, and Qt signals emitted from them reach GUI-thread slots through
queued connections.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from engine.errors import MaskScopeError

log = logging.getLogger(__name__)


class JobThread:
    """Runs callables from a queue in one background thread. ``newest_first`` makes it a stack."""

    def __init__(self, name: str, newest_first: bool = False) -> None:
        self._jobs: deque[Callable[[], None]] = deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._newest_first = newest_first
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            if self._stopped:
                return
            self._jobs.append(job)
            self._cond.notify()

    def clear(self, keep: Callable[[Callable[[], None]], bool] | None = None) -> None:
        """Drop queued (not yet started) jobs, except those ``keep`` approves."""
        with self._cond:
            kept = [j for j in self._jobs if keep is not None and keep(j)]
            self._jobs.clear()
            self._jobs.extend(kept)

    def pending(self) -> int:
        """Jobs queued and not started yet."""
        with self._cond:
            return len(self._jobs)

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy or bool(self._jobs)

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to end after its current job; True when it ended within ``timeout``."""
        with self._cond:
            self._stopped = True
            self._jobs.clear()
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopped:
                    self._busy = False
                    self._cond.wait()
                if self._stopped:
                    self._busy = False
                    return
                job = self._jobs.pop() if self._newest_first else self._jobs.popleft()
                self._busy = True
            try:
                job()
            except Exception:  # a job reports its own errors; this only guards the thread itself
                log.exception("background job failed")


class BackgroundTask(QObject):
    """Runs one function in a daemon thread; its outcome comes back as signals in the GUI thread."""

    progress = Signal(object)  # whatever the function reports
    succeeded = Signal(object)  # the function's result
    failed = Signal(str)  # a message for the user
    cancelled = Signal(str)  # the function raised one of ``cancelled_by``

    def __init__(
        self,
        parent: QObject | None = None,
        name: str = "background-task",
        cancelled_by: tuple[type[BaseException], ...] = (),
    ) -> None:
        super().__init__(parent)
        self._name = name
        self._cancelled_by = cancelled_by
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, work: Callable[[Callable[[object], None], threading.Event], object]) -> None:
        """``work(report_progress, cancel_event)`` runs in the thread."""
        self._cancel = threading.Event()
        cancel = self._cancel
        self._thread = threading.Thread(target=self._run, args=(work, cancel), name=self._name, daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (app exit, tests); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _run(self, work, cancel: threading.Event) -> None:
        try:
            result = work(lambda p: self._emit("progress", p), cancel)
        except self._cancelled_by as exc:
            self._emit("cancelled", str(exc))
        except MaskScopeError as exc:
            self._emit("failed", str(exc))
        except Exception as exc:  # torch errors on a malformed file must still reach the user
            self._emit("failed", f"{type(exc).__name__}: {exc}")
        else:
            self._emit("succeeded", result)

    def _emit(self, name: str, *args) -> None:
        try:
            getattr(self, name).emit(*args)
        except RuntimeError:  # the window closed while the thread ran: nobody to tell
            pass
