"""A background thread that runs queued jobs one at a time, off the GUI thread.

A plain daemon thread (not QThread): a model stuck in a long predict can never keep the app from
quitting, and Qt signals emitted from it reach GUI-thread slots through queued connections.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

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
