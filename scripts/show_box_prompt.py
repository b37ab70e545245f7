"""Open MaskScope on a sample with the Box prompt tool: a dragged box, its candidate, the RoI inspector on it.

    python scripts/show_box_prompt.py                    # demo Mask R-CNN, RoI inspector
    python scripts/show_box_prompt.py --model yolact     # demo YOLACT, prototype viewer
    python scripts/show_box_prompt.py --image path/to/image.jpg --shape 1

The demo model runs once on the image (its predictions are shown as usual), then the Box tool is
chosen and a mouse drag around one shape is simulated on the canvas; the worker answers with the
pending "prompt" candidate and the inspector explains the drawn box. Settings go to a temporary
file, never the user's. For the README screenshot:

    /work/shared/tools/screenshot resources/screenshots/box_prompt.png 30 -- \\
        .venv/bin/python scripts/show_box_prompt.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.application import create_application, sample_images  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("maskrcnn", "yolact"), default="maskrcnn")
    parser.add_argument("--image", help="image to open (default: the first bundled sample)")
    parser.add_argument("--shape", type=int, default=0, help="which detection's box to drag around (by score)")
    parser.add_argument("--pad", type=float, default=6.0, help="image pixels added around that box")
    args = parser.parse_args()

    app = create_application()
    from PySide6.QtCore import QPointF, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.main_window import MainWindow
    from app.model_catalog import DEMO_WEIGHTS, DEMO_YOLACT_WEIGHTS
    from app.settings import AppSettings
    from engine.models import load_segmenter

    settings_file = Path(tempfile.mkdtemp(prefix="maskscope-show-")) / "settings.ini"
    window = MainWindow(settings=AppSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    roi, proto = window.inspector_docks
    dock = roi if args.model == "maskrcnn" else proto
    window.resize(1600, 1000)
    window.show()
    dock.setVisible(True)
    dock.raise_()
    window.resizeDocks([dock], [430], Qt.Orientation.Vertical)
    if args.image:
        image = args.image
    else:  # a copy in a folder of its own: the samples' ground truth would be drawn as annotations
        import shutil

        sample = sample_images()[0]
        image = str(shutil.copy(sample, Path(tempfile.mkdtemp(prefix="maskscope-prompt-")) / sample.name))
    weights = DEMO_WEIGHTS if args.model == "maskrcnn" else DEMO_YOLACT_WEIGHTS
    segmenter = load_segmenter(weights, device="cpu", score_thresh=0.05)
    done: list[bool] = []

    def run() -> None:
        if done:
            return
        done.append(True)
        window.models.modelReady.connect(lambda _s: QTimer.singleShot(100, predicted))
        window.use_segmenter(segmenter, f"Demo {args.model}")

    def predicted() -> None:
        pred = segmenter.predict(window.current_image)
        window.set_prediction(window.current_image_path, pred)
        if not len(pred):
            print("the model found nothing to drag a box around")
            return
        box = pred.instances[min(args.shape, len(pred) - 1)].box
        window.editing.actions.tool_actions["box"].trigger()
        QTimer.singleShot(200, lambda: drag(box))

    def drag(box) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        p = args.pad
        canvas = window.canvas
        points = [(x1 - p, y1 - p), ((x1 + x2) / 2, (y1 + y2) / 2), (x2 + p, y2 + p)]
        views = [canvas.mapFromScene(QPointF(x, y)) for x, y in points]
        viewport = canvas.viewport()
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, views[0])
        for v in views[1:]:
            QTest.mouseMove(viewport, v)
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, views[-1])
        window.editing.prompts.candidateChanged.connect(lambda: print(window.statusBar().currentMessage()))

    window.imageShown.connect(lambda _path: QTimer.singleShot(100, run))
    window.open_image(image)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
