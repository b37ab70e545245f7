"""Does the GUI stay responsive while a model runs? Drives the real MainWindow offscreen.

While Mask R-CNN (ResNet-50 FPN, random weights: nothing to download) segments an 800x1333 image
in the worker thread, a 10 ms QTimer on the GUI thread records how late each tick comes: the worst
lateness is the longest the event loop was blocked. The time from pressing Run to the result being
on screen is compared with the engine's own predict() time, measured in the same process with the
same torch thread count.

    python bench/bench_gui_responsiveness.py [--config maskrcnn_r18_fpn] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

TICK_MS = 10
STALL_TARGET_MS = 50.0
RATIO_TARGET = 1.15


class StallMeter:
    """A 10 ms timer on the GUI thread; the worst gap between ticks, minus 10 ms, is the stall."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> float:
        """Worst lateness in ms; ``self.p99`` holds the 99th percentile."""
        self.timer.stop()
        self._tick()
        late = np.diff(self.ticks) * 1000.0 - TICK_MS
        self.p99 = float(np.percentile(late, 99)) if len(late) else 0.0
        return float(late.max()) if len(late) else 0.0


def wait_for(signal, timeout_s: float):
    """Run the event loop until ``signal`` fires; returns its arguments."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list = []

    def done(*args) -> None:
        got.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(done)
    if not got:
        raise TimeoutError(f"no signal within {timeout_s} s")
    return got[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="maskrcnn_resnet50_fpn", help="Mask R-CNN config (random weights)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the worker (app default)")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QSettings

    from app.application import create_application
    from app.main_window import MainWindow
    from app.model_catalog import ModelChoice
    from app.settings import AppSettings
    from engine.synthetic import generate_image

    tmp = Path(tempfile.mkdtemp(prefix="maskscope-bench-"))
    app = create_application([])
    settings = AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, torch_threads=args.threads)
    window.resize(1400, 900)
    window.show()
    app.processEvents()

    sample = generate_image(np.random.default_rng(0), (800, 1333), n_objects=(6, 10))
    path = tmp / "bench_800x1333.png"
    cv2.imwrite(str(path), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))

    meter = StallMeter()
    choice = ModelChoice("bench", f"{args.config} (random init)", "maskrcnn", args.config, "random")
    meter.start()
    t0 = time.perf_counter()
    window.models.choose(choice)
    (segmenter,) = wait_for(window.models.modelReady, 600)
    load_s = time.perf_counter() - t0
    load_stall = meter.stop()

    meter.start()
    window.open_image(str(path))
    wait_for(window.imageShown, 60)
    open_stall = meter.stop()
    image = window.current_image

    # The engine alone, same process and thread count. torch's thread count is per calling thread
    # (OpenMP), so set it here too: the worker set it for itself only.
    import torch

    from app.inference import default_torch_threads

    threads = args.threads or default_torch_threads()
    torch.set_num_threads(threads)
    segmenter.predict(image)  # warm-up

    # The same meter with nothing running: what the machine itself (other processes) costs.
    from PySide6.QtCore import QEventLoop, QTimer

    meter.start()
    idle = QEventLoop()
    QTimer.singleShot(5000, idle.quit)
    idle.exec()
    idle_stall, idle_p99 = meter.stop(), meter.p99

    # Engine alone and through the GUI, alternating, so that load from other processes on this
    # machine hits both alike.
    engine_times, arrivals, stalls, p99s, own = [], [], [], [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        pred = segmenter.predict(image)
        engine_times.append(time.perf_counter() - start)

        window.predictions.clear()
        meter.start()
        start = time.perf_counter()
        window.run_current()
        wait_for(window.predictionArrived, 600)
        app.processEvents()  # the result painted
        arrivals.append(time.perf_counter() - start)
        own.append(window.current_prediction.seconds)  # predict()'s own wall time, in the worker
        stalls.append(meter.stop())
        p99s.append(meter.p99)
    engine_s = statistics.median(engine_times)
    arrival_s = statistics.median(arrivals)
    worst = max(stalls)

    print(
        f"# {args.config} random init, image {image.shape[1]}x{image.shape[0]}, torch threads {threads} of "
        f"{os.cpu_count()} cores, {len(pred.instances)} instances per run; model load {load_s:.1f} s "
        f"(GUI stall during load {load_stall:.0f} ms, while opening the image {open_stall:.0f} ms)"
    )
    print(
        f"worst event-loop stall during inference: {worst:.1f} ms "
        f"(target < {STALL_TARGET_MS:.0f} ms, {worst / STALL_TARGET_MS:.2f}x of target); "
        f"99th percentile {max(p99s):.1f} ms"
    )
    print(
        f"# baseline with nothing running, same meter: worst {idle_stall:.1f} ms, 99th percentile {idle_p99:.1f} ms "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other processes compete for the CPU)"
    )
    ratio = arrival_s / engine_s
    print(
        f"result on screen {arrival_s:.2f} s vs engine predict {engine_s:.2f} s: {ratio:.3f}x "
        f"(target <= {RATIO_TARGET:.2f}x)"
    )
    own_s = statistics.median(own)
    print(
        f"# the same runs against predict()'s own time inside the worker ({own_s:.2f} s): "
        f"{arrival_s / own_s:.3f}x, i.e. {1000 * (arrival_s - own_s):.0f} ms for queueing, outlines, layer and display"
    )
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
