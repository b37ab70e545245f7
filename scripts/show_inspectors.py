"""Open MaskScope on a sample image with an inspector showing a traced detection (for screenshots).

    python scripts/show_inspectors.py                       # RoI inspector, demo model (Mask R-CNN)
    python scripts/show_inspectors.py --viewer prototypes   # prototype viewer, YOLACT (random init
                                                            # unless its official weights are installed)
    python scripts/show_inspectors.py --tab 1 --detection 2 --image path/to/image.jpg

The model runs in this process with ``trace=True`` (so the script controls which detection
is traced), its prediction is handed to the window, a detection is selected and the canvas
zooms onto it. Settings go to a temporary file, never the user's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from app.application import create_application, sample_images  # noqa: E402


def build_model(viewer: str, weights: str | None):
    from app.model_catalog import DEMO_KEY, LoadRequest, build_segmenter, choice_by_key

    if viewer == "roi":
        return build_segmenter(LoadRequest(choice_by_key(DEMO_KEY), "cpu")), "Demo model (built-in)"
    from app.model_catalog import DEMO_YOLACT_WEIGHTS
    from engine.errors import WeightsError
    from engine.models import create_segmenter, load_segmenter
    from engine.synthetic import DEMO_CLASSES

    demo = DEMO_YOLACT_WEIGHTS
    if weights is None and demo.is_file():
        seg = load_segmenter(demo, device="cpu", score_thresh=0.05)
        return seg, "YOLACT demo (built-in)"
    try:
        seg = create_segmenter("yolact", "yolact_resnet50", weights, device="cpu", score_thresh=0.05)
    except WeightsError as exc:
        # A 550 config, randomly initialised, with the demo's classes (so scores pass 0.05).
        print(f"{exc}\nUsing random YOLACT weights instead.")
        seg = create_segmenter(
            "yolact", "yolact_resnet50", "random", device="cpu", class_names=list(DEMO_CLASSES), score_thresh=0.05
        )
    return seg, f"YOLACT ResNet-50 ({seg.weights_source})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewer", choices=("roi", "prototypes"), default="roi")
    parser.add_argument("--image", help="image to open (default: the first bundled sample)")
    parser.add_argument(
        "--detection",
        type=int,
        help="index of the detection to select (default: the top one; for the "
        "prototype viewer the one with the largest mask among the top 20)",
    )
    parser.add_argument(
        "--switch-off",
        type=int,
        default=0,
        help="prototype viewer: switch off the N prototypes with the largest |coefficient|",
    )
    parser.add_argument("--tab", type=int, default=0, help="inspector tab to show")
    parser.add_argument("--weights", help="YOLACT weights for --viewer prototypes (default: official file)")
    args = parser.parse_args()

    app = create_application()
    from PySide6.QtCore import QRectF, QSettings, Qt, QTimer

    from app.inspectors import install_inspectors
    from app.main_window import MainWindow
    from app.settings import AppSettings

    settings_file = Path(tempfile.mkdtemp(prefix="maskscope-show-")) / "settings.ini"
    window = MainWindow(settings=AppSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    roi, proto = install_inspectors(window, visible=True)
    dock = roi if args.viewer == "roi" else proto
    window.resize(1600, 1000)
    window.resizeDocks([dock], [560], Qt.Orientation.Vertical)
    window.show()
    image = args.image or str(sample_images()[0])

    done: list[bool] = []

    def run() -> None:
        if done:
            return
        done.append(True)
        segmenter, label = build_model(args.viewer, args.weights)
        window.use_segmenter(segmenter, label)
        pred = segmenter.predict(window.current_image, trace=True)
        print(f"{len(pred)} detections in {pred.seconds:.2f} s ({segmenter.describe()})")
        window.set_prediction(window.current_image_path, pred)
        dock.raise_()
        window.resizeDocks([dock], [600], Qt.Orientation.Vertical)
        if not len(pred):
            return
        if args.detection is not None:
            index = min(args.detection, len(pred) - 1)
        elif args.viewer == "prototypes":
            index = int(np.argmax([inst.area for inst in pred.instances[:20]]))
        else:
            index = 0
        # Only instances scoring at least as high as the selected one stay on the canvas.
        window.set_score_threshold(max(0.0, round(pred.instances[index].score - 0.005, 2)))
        window.select_instance(index)
        dock.tabs.setCurrentIndex(args.tab)
        if args.viewer == "prototypes" and args.switch_off > 0 and proto.composition is not None:
            enabled = np.ones(len(proto.enabled), bool)
            enabled[proto.composition.order("magnitude")[: args.switch_off]] = False
            proto.set_enabled(enabled)
            proto.pick_prototype(int(proto.composition.order("magnitude")[0]))
        QTimer.singleShot(300, lambda: zoom_to(pred.instances[index].box))

    def zoom_to(box) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        pad = 0.35 * max(x2 - x1, y2 - y1) + 6
        window.canvas.zoom_by(1.0)  # leave fit-to-window mode so the zoom stays
        rect = QRectF(x1 - pad, y1 - pad, x2 - x1 + 2 * pad, y2 - y1 + 2 * pad)
        window.canvas.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)

    window.imageShown.connect(lambda _path: QTimer.singleShot(100, run))
    window.open_image(image)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
