"""Export the inspectors' publication figures for the first bundled sample with the demo models,
and render the SVG back to PNG (QSvgRenderer) to look at it.

    python scripts/show_figures.py OUT_DIR                      # roi.{svg,pdf,png,json}, proto.*, *_from_svg.png
    python scripts/show_figures.py OUT_DIR --screenshot         # also resources/screenshots/figure_roi.png
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def render_svg(svg: Path, png: Path, scale: float) -> Path:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    size = renderer.defaultSize() * scale
    image = QImage(size, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    image.save(str(png))
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--screenshot", action="store_true", help="write resources/screenshots/figure_roi.png")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import torch
    from PySide6.QtWidgets import QApplication

    from app.inspectors.figure import prototype_figure, roi_figure, write_figure
    from engine.inspect import compare_coefficients, compose_detection, inspect_roi, prototype_grid
    from engine.inspect.figure_export import prototype_figure_data, roi_figure_data
    from engine.models import load_segmenter
    from engine.training.data import read_rgb
    from engine.training.demo import demo_path

    torch.set_num_threads(1)
    _app = QApplication.instance() or QApplication([])
    image = read_rgb(ROOT / "resources" / "samples" / "sample_01.jpg")

    seg = load_segmenter(demo_path("maskrcnn"), device="cpu")
    insp = inspect_roi(seg.predict(image, trace=True).trace, 0, "mask", class_names=seg.class_names)
    roi = roi_figure(insp, "mean", image, roi_figure_data(insp, "mean"))
    for suffix in ("svg", "pdf", "png"):
        write_figure(roi, args.out / f"roi.{suffix}", dpi=150)

    yseg = load_segmenter(demo_path("yolact"), device="cpu")
    trace = yseg.predict(image, trace=True).trace
    grid = prototype_grid(trace)
    comp = compose_detection(trace, 0, class_names=yseg.class_names)
    cmp_ = compare_coefficients(trace, 0, 1, yseg.class_names) if len(trace.coefficients) > 1 else None
    proto = prototype_figure(grid, comp, cmp_, image, prototype_figure_data(grid, comp, cmp_))
    for suffix in ("svg", "pdf"):
        write_figure(proto, args.out / f"proto.{suffix}")

    for name in ("roi", "proto"):
        print(render_svg(args.out / f"{name}.svg", args.out / f"{name}_from_svg.png", 2.0))
    if args.screenshot:
        print(render_svg(args.out / "roi.svg", ROOT / "resources" / "screenshots" / "figure_roi.png", 1.5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
