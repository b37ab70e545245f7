"""Start-up: time to the window on screen, to the first demo result, and event-loop stalls while the
demo model loads, each beside a bare PySide6 window started the same way in the same run.

    python bench/bench_startup.py            # 3 launches of each, medians
    python bench/bench_startup.py --runs 5

Each launch is a fresh ``python`` subprocess. The child prints markers (wall-clock times) and the
parent subtracts the time it spawned the child, so interpreter start-up counts for both. One
uncounted warm-up launch of each comes first (bytecode caches written, files in the page cache). The window
marker comes from a zero timer queued by the first Show event of a top-level window (it runs once
the shown window has been processed by the event loop); the result marker from a zero timer after
the window's ``predictionArrived``. Stalls: a 5 ms timer ticks on the GUI thread from the first show
to the first result; a stall is a gap between ticks minus the interval.

Targets (idle 2-core machine): window <= 0.8 s, first demo result <= 3.5 s, no stall > 50 ms while
the model loads. Each line gives the figure, its ratio to the target and its ratio to the bare window
(a busy machine slows both alike, so that ratio is the comparable one). Uses QT_QPA_PLATFORM from the
environment, ``offscreen`` when there is no display.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SHOW_S = 0.8
TARGET_RESULT_S = 3.5
TARGET_STALL_MS = 50.0
TICK_MS = 5
TIMEOUT_S = 120

# The child: one launch of either the bare window or MaskScope, printing JSON marker lines.
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer

def mark(name, **extra):
    print(json.dumps({"marker": name, "t": time.time(), **extra}), flush=True)

class Probe(QObject):
    # First Show of a top-level window: queue the 'shown' marker and start the stall ticker.
    def __init__(self, on_shown):
        super().__init__()
        self.on_shown, self.done = on_shown, False
    def eventFilter(self, obj, event):
        if not self.done and event.type() == QEvent.Type.Show and getattr(obj, "isWindow", lambda: False)():
            self.done = True
            QTimer.singleShot(0, self.on_shown)
        return False

class Ticker:
    def __init__(self, interval_ms):
        self.interval, self.clock, self.last, self.gaps = interval_ms, QElapsedTimer(), None, []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
    def start(self):
        self.clock.start()
        self.last = 0
        self.timer.start()
    def tick(self):
        now = self.clock.elapsed()
        self.gaps.append((time.time(), now - self.last - self.interval))
        self.last = now

mode, tick_ms = sys.argv[1], int(sys.argv[3])
from PySide6.QtWidgets import QApplication
ticker = Ticker(tick_ms)
if mode == "bare":
    from PySide6.QtWidgets import QLabel, QMainWindow
    app = QApplication(sys.argv[:1])
    probe = Probe(lambda: (mark("shown"), QTimer.singleShot(50, app.quit)))
    app.installEventFilter(probe)
    w = QMainWindow()
    w.setCentralWidget(QLabel("bare"))
    w.resize(1000, 700)
    w.show()
    app.exec()
else:
    from app.application import create_application
    app = create_application([])
    loaded = {}
    def shown():
        mark("shown")
        ticker.start()
    probe = Probe(shown)
    app.installEventFilter(probe)
    from app.application import launch
    app, window = launch([])
    window.worker.modelLoaded.connect(lambda *a: loaded.setdefault("t", time.time()))
    def result(_path):
        def after():
            mark("result")
            ticker.timer.stop()
            mark("stalls", gaps=ticker.gaps, loaded=loaded.get("t"))
            app.quit()
        QTimer.singleShot(0, after)
    window.predictionArrived.connect(result)
    app.exec()
"""


def launch(mode: str) -> dict:
    """One child run; returns {marker: seconds after spawn} plus the stall data."""
    env = dict(os.environ)
    if "QT_QPA_PLATFORM" not in env and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's install has its bytecode cached
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(ROOT), str(TICK_MS)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        cwd=ROOT,
    )
    out: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            msg = json.loads(line)
            out[msg["marker"]] = msg["t"] - t0
            if msg["marker"] == "stalls":
                out["gaps"] = [(t - t0, g) for t, g in msg["gaps"]]
                out["loaded"] = msg["loaded"] - t0 if msg["loaded"] else None
    if "shown" not in out:
        raise RuntimeError(f"{mode} launch printed no marker (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return out


def max_stall_ms(run: dict, until: float | None) -> float:
    """The longest gap (ms beyond the tick interval) between the first show and ``until``."""
    gaps = [g for t, g in run.get("gaps", []) if until is None or t <= until + 0.001]
    return max(gaps, default=0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="launches of each kind (default 3; medians reported)")
    args = p.parse_args()
    launch("bare"), launch("app")  # warm-up, not counted: bytecode and page cache as on a second start
    bare, app = [], []
    for _ in range(args.runs):  # interleaved, so a change in machine load hits both alike
        bare.append(launch("bare"))
        app.append(launch("app"))
    bare_show = statistics.median(r["shown"] for r in bare)
    show = statistics.median(r["shown"] for r in app)
    missing = [r for r in app if "result" not in r]
    if missing:
        print(f"startup: {len(missing)} of {len(app)} launches showed no demo result (is the demo model there?)")
        return 1
    result = statistics.median(r["result"] for r in app)
    load_stall = statistics.median(max_stall_ms(r, r["loaded"]) for r in app)
    any_stall = statistics.median(max_stall_ms(r, r["result"]) for r in app)
    cores = os.cpu_count()
    print(f"startup: bare PySide6 window shown {bare_show:.3f} s after launch (median of {args.runs}, {cores} cores)")
    print(
        f"startup: MaskScope window shown {show:.3f} s (target <= {TARGET_SHOW_S} s, ratio {show / TARGET_SHOW_S:.2f}; "
        f"{show / bare_show:.2f}x the bare window)"
    )
    loaded = statistics.median(r["loaded"] for r in app if r.get("loaded"))
    print(
        f"startup: demo model loaded {loaded:.3f} s after launch (torch, torchvision and the weights; "
        f"{result - loaded:.3f} s more to the result on screen)"
    )
    print(
        f"startup: first demo result on screen {result:.3f} s (target <= {TARGET_RESULT_S} s, "
        f"ratio {result / TARGET_RESULT_S:.2f}; {result / bare_show:.2f}x the bare window's show)"
    )
    print(
        f"startup: longest event-loop stall while the model loads {load_stall:.1f} ms (target <= "
        f"{TARGET_STALL_MS:.0f} ms, ratio {load_stall / TARGET_STALL_MS:.2f}); "
        f"up to the first result {any_stall:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
