"""Open MaskScope on a generated image crowded with shapes, segmented by the demo model (for the
screenshot of labels on a dense image: placed by app/label_layout.py without overlaps, inside the view).

    python scripts/show_dense.py                          # ~25 shapes, 640x480, the demo model
    python scripts/show_dense.py --shapes 40 --seed 3 --seconds 20
    python scripts/show_dense.py --resized                # the demo as the menu runs it (128 px input)

The image is written to a temporary folder; settings go to a temporary file, never the user's.
Once the prediction is on screen the demo banner is closed (as a user would after reading it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_dense_image(folder: Path, shapes: int, size: tuple[int, int], seed: int) -> Path:
    """A generated image with about ``shapes`` shapes of the demo classes, at the demo's scale."""
    import cv2
    import numpy as np

    from engine.synthetic import generate_image

    h, w = size
    # Radii of 12-31 px: the shapes' size in the demo's 128 px training images.
    short = min(h, w)
    radius = (12 / short, 31 / short)
    sample = generate_image(np.random.default_rng(seed), (h, w), n_objects=(shapes, shapes), radius_range=radius)
    path = folder / "dense_shapes.png"
    if not cv2.imwrite(str(path), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def native_demo(h: int, w: int):
    """The demo Mask R-CNN run on the image at its own size: it was trained on 128 px images (160 px
    network input) and would otherwise shrink a large crowded image to 160 px, its shapes to a few
    pixels."""
    from app.model_catalog import DEMO_KEY, LoadRequest, build_segmenter, choice_by_key

    seg = build_segmenter(LoadRequest(choice_by_key(DEMO_KEY), "cpu"))
    seg.model.transform.min_size = (min(h, w),)
    seg.model.transform.max_size = max(h, w)
    return seg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=int, default=25)
    parser.add_argument("--size", default="480x640", help="HxW of the generated image")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--resized", dest="native", action="store_false", help="let the demo model shrink the image to its 160 px input"
    )
    parser.add_argument("--seconds", type=float, default=0.0, help="quit after N seconds (default: stay open)")
    args = parser.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))

    tmp = Path(tempfile.mkdtemp(prefix="maskscope_dense_"))
    os.environ.setdefault("MASKSCOPE_SETTINGS", str(tmp / "settings.ini"))
    image = write_dense_image(tmp, args.shapes, (h, w), args.seed)

    from PySide6.QtCore import QTimer

    from app.application import create_application
    from app.main_window import MainWindow
    from app.model_catalog import DEMO_KEY

    app = create_application()
    window = MainWindow()
    window.show()
    window.open_image(str(image))
    window.request_auto_run(str(image))
    if args.native:
        window.use_segmenter(native_demo(h, w), "Demo model, full resolution")
    else:
        window.models.choose(DEMO_KEY)

    def arrived(_path: str) -> None:
        pred = window.current_prediction
        shown = 0 if pred is None else sum(inst.score >= window.score_threshold for inst in pred.instances)
        print(f"{shown} detections at threshold {window.score_threshold:.2f} on {args.shapes} shapes")
        QTimer.singleShot(200, window.demo_banner.dismiss)  # when the menu's demo model ran

    window.predictionArrived.connect(arrived)
    if args.seconds > 0:
        QTimer.singleShot(int(args.seconds * 1000), window.close)
    code = app.exec()
    shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
