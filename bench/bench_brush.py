"""Brush stroke speed on a 4000x3000 image in the real main window, offscreen.

Each figure is the median (and 95th percentile) time of one stroke segment: a mouse-move event
sent to the canvas (tool dispatch, footprint, mask update, recomposite of the dirty rectangle)
plus the event processing that repaints the changed part of the screen. Target: one frame
(16 ms). Also timed: the release (one undo step: model update, outlines, labels) and, for
comparison, a full repaint of the view.

    python bench/bench_brush.py
"""

from __future__ import annotations

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

H, W = 3000, 4000
TARGET_MS = 16.0
SEGMENTS = 120


def report(name: str, times: list[float], target: float = TARGET_MS) -> None:
    med = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    print(f"{name}: median {med:.2f} ms, p95 {p95:.2f} ms (target < {target:.0f} ms, {med / target:.2f}x of target)")


def main() -> int:
    from PySide6.QtCore import QEvent, QObject, QPointF, QSettings, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from app.editing import install_editing
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from engine.masks import CroppedMask
    from engine.segmenter import Instance, Prediction

    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="bench_brush_"))
    rng = np.random.default_rng(0)
    small = cv2.GaussianBlur(rng.integers(0, 255, (H // 8, W // 8, 3), dtype=np.uint8), (0, 0), 2)
    cv2.imwrite(str(tmp / "big.jpg"), cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR))

    settings = AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings, torch_threads=1)
    editing = install_editing(window)
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    window.open_image(str(tmp / "big.jpg"))
    deadline = time.time() + 60
    while editing.annotations is None and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)
    if editing.annotations is None:
        print("the image did not load")
        return 1

    # 40 existing instances (as after accepting a prediction) so compositing has overlaps to handle.
    instances = []
    for i in range(40):
        w, h = int(rng.integers(150, 900)), int(rng.integers(150, 900))
        x0, y0 = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        patch = np.zeros((h, w), np.uint8)
        cv2.ellipse(patch, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1, -1)
        box = np.array([x0, y0, x0 + w, y0 + h], np.float32)
        instances.append(Instance(i % 3, 0.99 - i * 0.01, box, CroppedMask(x0, y0, patch.astype(bool), (H, W))))
    pred = Prediction((H, W), instances, ["a", "b", "c"])
    window.set_prediction(window.current_image_path, pred)
    window.set_score_threshold(0.0)
    editing.accept_all_predictions()
    editing.set_current_class("a")  # a new instance's class is chosen, never a default (else a picker asks)
    app.processEvents()
    canvas = window.canvas
    viewport = canvas.viewport()

    def flush() -> None:
        # Scene dirty items are processed in a queued call, which then posts the viewport's paint.
        app.processEvents()
        app.processEvents()

    def send(kind: QEvent.Type, x: float, y: float) -> None:
        pos = QPointF(canvas.mapFromScene(QPointF(x, y)))
        button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
        event = QMouseEvent(
            kind, pos, canvas.mapToGlobal(pos.toPoint()).toPointF(), button, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(viewport, event)

    class PaintCounter(QObject):
        """Counts the canvas's paint events and their area: each segment should repaint a small rect."""

        def __init__(self) -> None:
            super().__init__()
            self.events = 0
            self.pixels = 0

        def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Paint:
                self.events += 1
                self.pixels += event.rect().width() * event.rect().height()
            return False

    painted = PaintCounter()
    viewport.installEventFilter(painted)

    def stroke(size: float, erase_others: bool, select: int, label: str, rx: float = 1200, ry: float = 900) -> None:
        editing.set_brush_size(size)
        editing.set_erase_others(erase_others)
        editing.select(select)
        editing.set_tool("brush")
        cx, cy = W * 0.45, H * 0.5
        path = [(cx + rx * np.cos(t), cy + ry * np.sin(t)) for t in np.linspace(0, 1.5 * np.pi, SEGMENTS + 1)]
        send(QEvent.Type.MouseButtonPress, *path[0])
        flush()
        times = []
        painted.events = painted.pixels = 0
        for x, y in path[1:]:
            start = time.perf_counter()
            send(QEvent.Type.MouseMove, x, y)
            flush()
            times.append((time.perf_counter() - start) * 1000)
        events, pixels = painted.events, painted.pixels
        start = time.perf_counter()
        send(QEvent.Type.MouseButtonRelease, *path[-1])
        flush()
        release_ms = (time.perf_counter() - start) * 1000
        seg_len = float(np.hypot(*np.subtract(path[1], path[0])))
        report(f"{label}: brush {size:.0f} px, segment ~{seg_len:.0f} px", times)
        view_px = viewport.width() * viewport.height()
        print(
            f"  {events} repaints for {len(times)} segments, {pixels / max(events, 1):,.0f} screen px each "
            f"({pixels / max(events, 1) / view_px:.1%} of the view)"
        )
        print(f"  release (one undo step: model, outlines, labels, repaint): {release_ms:.1f} ms")

    print(f"# {W}x{H} image, {len(editing.annotations)} annotated instances, window 1600x1000")
    canvas.fit_to_window()
    flush()
    stroke(40, False, -1, "fitted view, new instance")
    stroke(40, True, 1, "fitted view, erase others")
    stroke(150, True, 1, "fitted view, erase others")
    canvas.zoom_actual()
    canvas.centerOn(W * 0.45, H * 0.5)
    flush()
    stroke(40, False, 2, "100 % zoom", 500, 300)
    stroke(150, True, 2, "100 % zoom, erase others", 500, 300)
    # The same stroke with 100 pending predictions shown under the annotations (the review case).
    pending = []
    for i in range(100):
        w, h = int(rng.integers(80, 500)), int(rng.integers(80, 500))
        x0, y0 = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        bits = np.zeros((h, w), np.uint8)
        cv2.ellipse(bits, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1, -1)
        box = np.array([x0, y0, x0 + w, y0 + h], np.float32)
        pending.append(Instance(i % 3, 0.98 - i * 0.005, box, CroppedMask(x0, y0, bits.astype(bool), (H, W))))
    window.set_prediction(window.current_image_path, Prediction((H, W), pending, ["a", "b", "c"]))
    flush()
    stroke(40, False, 2, "100 % zoom, 100 pending predictions shown", 500, 300)

    project = editing.project
    start = time.perf_counter()
    project.flush()
    flush_ms = (time.perf_counter() - start) * 1000
    lat = [t * 1000 for t in project.writer.latencies]
    print(
        f"store commits of the edits ({project.instance_count()} instances; writer thread, submit to commit): "
        f"median {statistics.median(lat):.1f} ms, max {max(lat):.1f} ms over {len(lat)} commits; "
        f"waiting for the writer after the strokes: {flush_ms:.1f} ms"
    )
    times = []
    for _ in range(10):
        start = time.perf_counter()
        viewport.repaint()
        times.append((time.perf_counter() - start) * 1000)
    report("for comparison: full repaint of the view at 100 %", times)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
