"""Overlay and canvas speed, offscreen: 100 instances on a 1920x1080 image, and a 6000x4000 photo.

Figures (median of repeated runs):
- full overlay refresh: composite every visible mask + wrap as QImage + item update (the target
  figure), and the same followed by a synchronous repaint of the 1600x900 view;
- opacity change (item opacity only, no compositing) and threshold change (recomposite), with repaint;
- a new prediction (outlines as paths, boxes, composite);
- painting a 6000x4000 photo fitted to the window and at 100 %.

    python bench/bench_gui_overlay.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from timing import report, timed  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine.masks import CroppedMask  # noqa: E402

H, W = 1080, 1920
N = 100
TARGET_MS = 30.0


def synthetic_instances(rng: np.random.Generator) -> tuple[list[CroppedMask], np.ndarray, np.ndarray]:
    """Blobs of varied size (20..600 px across): rotated ellipses with a bite taken out of some."""
    masks, boxes = [], []
    for i in range(N):
        w = int(rng.choice([rng.integers(20, 80), rng.integers(80, 250), rng.integers(250, 600)], p=[0.5, 0.35, 0.15]))
        h = int(np.clip(w * rng.uniform(0.5, 1.6), 16, H - 1))
        x0, y0 = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        patch = np.zeros((h, w), np.uint8)
        cv2.ellipse(patch, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        if i % 3 == 0:
            cv2.circle(patch, (w // 4, h // 4), max(w, h) // 5, 0, -1)
        masks.append(CroppedMask(x0, y0, patch.astype(bool), (H, W)))
        boxes.append([x0, y0, x0 + w, y0 + h])
    scores = np.sort(rng.uniform(0.05, 1.0, N)).astype(np.float32)[::-1]
    return masks, np.array(boxes, np.float32), scores


def main() -> int:
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    from app.canvas import ImageCanvas
    from app.image_loader import DisplayImage

    app = QApplication.instance() or QApplication(sys.argv[:1])
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 4)
    view = ImageCanvas()
    view.resize(1600, 900)
    view.show()
    app.processEvents()
    view.set_image(DisplayImage.from_rgb("bench.png", photo))
    masks, boxes, scores = synthetic_instances(rng)
    names = [f"class_{i % 7}" for i in range(N)]
    overlay = view.overlay
    cover = sum(m.bits.size for m in masks) / (H * W)

    def new_prediction() -> None:
        overlay.set_predictions(masks, boxes, names, scores, (H, W))
        view.viewport().repaint()

    def refresh_no_paint() -> None:
        overlay.set_visible(np.ones(N, bool), force=True)

    def refresh() -> None:
        overlay.set_visible(np.ones(N, bool), force=True)
        view.viewport().repaint()

    opacity = iter(np.tile(np.linspace(0.2, 0.8, 7), 100))

    def opacity_change() -> None:
        overlay.set_opacity(float(next(opacity)))
        view.viewport().repaint()

    thresholds = iter(np.tile(np.linspace(0.1, 0.6, 6), 100))

    def threshold_change() -> None:
        overlay.set_visible(scores >= next(thresholds))
        view.viewport().repaint()

    overlay.set_show_boxes(True)  # everything on: the heaviest case
    print(f"# {N} masks covering {cover:.2f}x the image area in crops; view 1600x900, fitted")
    new_prediction_ms = timed(new_prediction, 10)
    # The figure asked for: composite + QImage + item update; then what the screen costs on top.
    report(f"overlay refresh {N} instances {W}x{H}", timed(refresh_no_paint, 30), TARGET_MS)
    report("overlay refresh incl. synchronous repaint of the view", timed(refresh, 30), TARGET_MS)
    report("opacity change (no recomposite) + repaint", timed(opacity_change, 30), TARGET_MS)
    report("threshold change (recomposite) + repaint", timed(threshold_change, 30), TARGET_MS)
    report("new prediction (outline paths + boxes + composite) + repaint", new_prediction_ms, 100.0)

    big = np.empty((4000, 6000, 3), np.uint8)
    big[:] = cv2.resize(photo, (6000, 4000), interpolation=cv2.INTER_LINEAR)
    start = time.perf_counter()
    big_image = DisplayImage.from_rgb("big.jpg", big)
    prep_ms = (time.perf_counter() - start) * 1000
    view.set_image(big_image)
    print(f"# 6000x4000 display buffers + mip levels built in the loader thread: {prep_ms:.0f} ms")

    def repaint_uncached() -> None:
        view.image_item.update()  # drop the item cache: the cost after any zoom change
        view.viewport().repaint()

    report("paint 6000x4000 fitted to 1600x900 (uncached)", timed(repaint_uncached, 20), 16.7)
    zooms = iter(np.tile([1.25, 0.8], 100))

    def zoom_step() -> None:
        view.zoom_by(float(next(zooms)), QPointF(800, 450))
        view.viewport().repaint()

    report("wheel zoom step on 6000x4000", timed(zoom_step, 20), 16.7)
    view.zoom_actual()
    steps = iter(range(10_000))

    def pan() -> None:
        step = next(steps)
        view.horizontalScrollBar().setValue(1000 + (step % 40) * 25)
        view.viewport().repaint()

    report("pan step at 100 % on 6000x4000", timed(pan, 30), 16.7)
    view.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
