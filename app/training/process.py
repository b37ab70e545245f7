"""The training subprocess seen from the GUI: a ``QProcess`` running ``engine.training.worker_main``.

Stdout is read as it arrives (``readyReadStandardOutput``) and split into JSON lines, one
``message`` signal per protocol object; nothing here ever waits on the process. Cancel is polite
first (a ``cancel`` line on the worker's stdin: it stops after the current iteration and saves),
then a kill once ``kill_timeout_ms`` has passed, or at once with ``kill()``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

ROOT = Path(__file__).resolve().parents[2]  # the folder holding engine/ and app/
WORKER_MODULE = "engine.training.worker_main"
MAX_LINE = 16 * 1024 * 1024  # a line longer than this is not protocol; dropped rather than kept growing


class TrainingProcess(QObject):
    message = Signal(dict)  # one protocol object from the worker
    logText = Signal(str)  # stderr output, and stdout lines that are not protocol
    finished = Signal(int, bool)  # exit code, crashed (killed or died without exiting)

    def __init__(self, parent: QObject | None = None, kill_timeout_ms: int = 60_000) -> None:
        super().__init__(parent)
        self.kill_timeout_ms = kill_timeout_ms
        self.cancel_requested = False
        self.killed = False
        self._buffer = bytearray()
        self._proc: QProcess | None = None
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int:
        return int(self._proc.processId()) if self._proc is not None else 0

    def start(self, job_path: str | Path, python: str | None = None, arguments: list[str] | None = None) -> None:
        """Start ``python -m engine.training.worker_main --job JOB --exit-with-parent``
        (``arguments`` replaces everything after ``python``: tests run stand-in workers)."""
        if self.running:
            raise RuntimeError("a training process is already running")
        self.cancel_requested = False
        self.killed = False
        self._buffer.clear()
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        path = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.setWorkingDirectory(str(ROOT))
        proc.setProgram(python or sys.executable)
        if arguments is None:
            arguments = ["-m", WORKER_MODULE, "--job", str(job_path), "--exit-with-parent"]
        proc.setArguments(arguments)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self._proc = proc
        proc.start()

    def cancel(self) -> None:
        """Ask the worker to stop after the current iteration; kill it if it has not within the timeout."""
        proc = self._proc
        if proc is None or not self.running or self.cancel_requested:
            return
        self.cancel_requested = True
        proc.write(b"cancel\n")
        self._kill_timer.start(self.kill_timeout_ms)

    def kill(self) -> None:
        """Stop the worker at once (no checkpoint of the iteration in progress)."""
        if self._proc is not None and self.running:
            self.killed = True
            self._proc.kill()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """At exit: polite cancel, a short wait, then kill (blocks up to ``wait_ms``)."""
        proc = self._proc
        if proc is None or not self.running:
            return
        self.cancel()
        if not proc.waitForFinished(wait_ms):
            self.kill()
            proc.waitForFinished(1000)

    # --- reading -------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self._proc is None:
            return
        self._buffer += self._proc.readAllStandardOutput().data()
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer.clear()
                return
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._dispatch(line)

    def _dispatch(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("kind"), str):
            self.message.emit(obj)
        else:
            self.logText.emit(text + "\n")

    def _read_stderr(self) -> None:
        if self._proc is not None:
            self.logText.emit(bytes(self._proc.readAllStandardError().data()).decode("utf-8", "replace"))

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._read_stdout()
        if self._buffer:  # a last line without its newline
            line = bytes(self._buffer)
            self._buffer.clear()
            self._dispatch(line)
        self._read_stderr()
        crashed = status == QProcess.ExitStatus.CrashExit
        self.finished.emit(int(code), crashed)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._kill_timer.stop()
            detail = self._proc.errorString() if self._proc is not None else ""
            self.message.emit({"kind": "error", "message": f"Could not start the training process: {detail}"})
            self.finished.emit(-1, True)
