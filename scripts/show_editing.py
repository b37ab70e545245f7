"""Show the editing tools on a sample image (for screenshots and a quick look).

Copies ``resources/samples/sample_01.jpg`` into a temporary project folder, shows a prediction
made from the sample's generator (the shapes, each mask eroded a little the way a model's masks
are a little off, scores descending), accepts the confident ones, corrects one with a brush
stroke, draws a polygon instance, and leaves the brush selected with its circle cursor on
screen. Nothing is written outside the temporary folder.

    python scripts/show_editing.py [--seconds N]   (quits after N seconds; default: stays open)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "resources" / "samples" / "sample_01.jpg"


def sample_prediction(image: np.ndarray):
    """A plausible prediction for sample_01: its shapes, masks eroded by 2 px, scores descending."""
    from engine.masks import CroppedMask
    from engine.segmenter import Instance, Prediction
    from engine.synthetic import DEMO_CLASSES
    from engine.training.demo_samples import SAMPLE_STREAMS, generate_sample

    truth = generate_sample(SAMPLE_STREAMS[0])  # sample_01's shapes (scripts/make_samples.py)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    instances = []
    order = np.argsort([-m.sum() for m in truth.masks])  # bigger shapes get the higher scores
    for rank, i in enumerate(order):
        mask = cv2.erode(truth.masks[i].astype(np.uint8), kernel).astype(bool)
        if not mask.any():
            continue
        cropped = CroppedMask.from_full(mask)
        x, y, w, h = cropped.bbox_xywh()
        box = np.array([x, y, x + w, y + h], np.float32)
        instances.append(Instance(int(truth.labels[i]), 0.97 - 0.09 * rank, box, cropped))
    return Prediction(image.shape[:2], instances, list(DEMO_CLASSES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="maskscope_edit_"))
    os.environ.setdefault("MASKSCOPE_SETTINGS", str(folder / "settings.ini"))
    shutil.copy(SAMPLE, folder / SAMPLE.name)

    from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from app.application import create_application
    from app.editing import install_editing
    from app.main_window import MainWindow

    app = create_application()
    window = MainWindow()
    editing = install_editing(window)
    window.resize(1500, 940)
    window.show()

    def send(kind: QEvent.Type, x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
        canvas = window.canvas
        pos = QPointF(canvas.mapFromScene(QPointF(x, y)))
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
        if kind == QEvent.Type.MouseMove and button == Qt.MouseButton.NoButton:
            buttons = Qt.MouseButton.NoButton
        press_button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else button
        event = QMouseEvent(
            kind,
            pos,
            canvas.mapToGlobal(pos.toPoint()).toPointF(),
            press_button,
            buttons,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(canvas.viewport(), event)

    def stage() -> None:
        pred = sample_prediction(window.current_image)
        window.set_prediction(window.current_image_path, pred)
        window.set_score_threshold(0.5)
        editing.accept_all_predictions()  # the confident ones become annotations
        ann = editing.annotations
        if len(ann):
            # Correct the first one: paint a bulge onto it (erasing it from any neighbour).
            first = ann.instances[0]
            x, y, w, h = first.bbox_xywh()
            editing.select(first.id)
            editing.set_tool("brush")
            editing.set_brush_size(26)
            editing.set_erase_others(True)
            send(QEvent.Type.MouseButtonPress, x + w * 0.5, y + h * 0.5)
            for t in np.linspace(0, 1, 12):
                send(QEvent.Type.MouseMove, x + w * (0.5 + 0.6 * t), y + h * (0.5 + 0.1 * np.sin(6 * t)))
            send(QEvent.Type.MouseButtonRelease, x + w * 1.1, y + h * 0.5)
        # A polygon instance drawn by hand in a free corner.
        editing.set_current_class("region")
        editing.set_tool("polygon")
        for px, py in ((30, 380), (150, 360), (190, 440), (60, 465), (30, 380)):
            send(QEvent.Type.MouseButtonPress, px, py)
            send(QEvent.Type.MouseButtonRelease, px, py)
        # Leave the brush on the selected instance, its circle where the mouse is.
        editing.select(ann.instances[0].id if len(ann) else -1)
        editing.set_tool("brush")
        editing.set_brush_size(40)
        send(QEvent.Type.MouseMove, 420, 200, Qt.MouseButton.NoButton)
        window.canvas.viewport().update()

    def when_shown(path: str) -> None:
        window.imageShown.disconnect(when_shown)
        QTimer.singleShot(100, stage)

    window.imageShown.connect(when_shown)
    window.open_image(str(folder / SAMPLE.name))
    if args.seconds > 0:
        QTimer.singleShot(int(args.seconds * 1000), window.close)
    code = app.exec()
    shutil.rmtree(folder, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
