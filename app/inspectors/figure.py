"""Publication figures of the inspectors, composed with QPainter (not a screen grab).

A ``Figure`` is a page in points (1/72 inch) made of titled panels and a caption; ``Figure.paint``
is the one drawing routine behind every output: PNG at any DPI (``QImage``), vector SVG
(``QSvgGenerator``: boxes, grid, tables and text stay vector; only the photo crop is embedded as a
bitmap) and PDF (``QPdfWriter``). ``roi_figure`` and ``prototype_figure`` build the two inspectors'
figures from the engine's inspection objects; ``write_figure`` writes one format plus the JSON of
the numbers (``engine.inspect.figure_export``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPainterPath,
    QPdfWriter,
    QPen,
)

FORMATS = ("png", "svg", "pdf")
DEFAULT_DPI = 300
POINTS_PER_INCH = 72.0
PAGE_WIDTH = 760.0  # points: about a two-column figure width at 100 %
MARGIN = 14.0
GAP = 10.0
TITLE_PT = 11.0
PANEL_TITLE_PT = 8.0
CAPTION_PT = 7.5
FONT_FAMILY = "DejaVu Sans"
MAX_DRAWN_SAMPLES = 20_000  # more sample dots than this would make an SVG/PDF of many megabytes

# Overlay colours, chosen to stay apart on photos and in greyscale print.
PROPOSAL = QColor("#ff8c00")  # orange, dashed
ROI = QColor("#00c0ff")  # cyan
GRID = QColor(255, 255, 255, 230)
SAMPLE = QColor("#ff2d95")  # magenta dots
INVALID = QColor("#808080")
POOL = QColor("#ffd400")  # RoIPool cells, dotted
FIRST = QColor("#1f77b4")
SECOND = QColor("#ff7f0e")

Draw = Callable[[QPainter, QRectF], None]


def _font(size: float, bold: bool = False) -> QFont:
    f = QFont(FONT_FAMILY)
    f.setPointSizeF(size)
    f.setBold(bold)
    return f


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------
@dataclass
class Panel:
    title: str
    weight: float  # share of its row's width
    draw: Draw


@dataclass
class Figure:
    """Rows of panels (each row: height in points and its panels) above a caption."""

    title: str
    rows: list[tuple[float, list[Panel]]]
    caption: list[str]
    data: dict = field(default_factory=dict)  # the numbers, written as JSON beside the figure
    width: float = PAGE_WIDTH

    def _caption_height(self) -> float:
        fm = QFontMetricsF(_font(CAPTION_PT))
        inner = self.width - 2 * MARGIN
        flags = int(Qt.TextFlag.TextWordWrap)
        return sum(fm.boundingRect(QRectF(0, 0, inner, 1e6), flags, line).height() for line in self.caption) + 4

    @property
    def height(self) -> float:
        rows = sum(h + PANEL_TITLE_PT * 1.6 + GAP for h, _ in self.rows)
        return math.ceil(MARGIN + TITLE_PT * 1.8 + rows + self._caption_height() + MARGIN)

    def panel_rects(self) -> list[tuple[Panel, QRectF]]:
        """Each panel's drawing area in points (below its title)."""
        out = []
        y = MARGIN + TITLE_PT * 1.8
        inner = self.width - 2 * MARGIN
        for height, panels in self.rows:
            total = sum(p.weight for p in panels)
            x = MARGIN
            free = inner - GAP * (len(panels) - 1)
            for p in panels:
                w = free * p.weight / total
                out.append((p, QRectF(x, y + PANEL_TITLE_PT * 1.6, w, height)))
                x += w + GAP
            y += height + PANEL_TITLE_PT * 1.6 + GAP
        return out

    def paint(self, painter: QPainter) -> None:
        """Draw the figure in points onto ``painter`` (already scaled to points)."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.fillRect(QRectF(0, 0, self.width, self.height), Qt.GlobalColor.white)
        painter.setPen(Qt.GlobalColor.black)
        painter.setFont(_font(TITLE_PT, bold=True))
        painter.drawText(QRectF(MARGIN, MARGIN, self.width - 2 * MARGIN, TITLE_PT * 1.6), self.title)
        bottom = 0.0
        for panel, rect in self.panel_rects():
            painter.setPen(Qt.GlobalColor.black)
            painter.setFont(_font(PANEL_TITLE_PT, bold=True))
            title_rect = QRectF(rect.x(), rect.y() - PANEL_TITLE_PT * 1.6, rect.width(), PANEL_TITLE_PT * 1.5)
            painter.drawText(title_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom), panel.title)
            painter.save()
            painter.setClipRect(rect)
            panel.draw(painter, rect)
            painter.restore()
            bottom = max(bottom, rect.bottom())
        painter.setPen(Qt.GlobalColor.black)
        painter.setFont(_font(CAPTION_PT))
        fm = QFontMetricsF(painter.font())
        y = bottom + GAP
        inner = self.width - 2 * MARGIN
        flags = int(Qt.TextFlag.TextWordWrap)
        for line in self.caption:
            box = fm.boundingRect(QRectF(0, 0, inner, 1e6), flags, line)
            painter.drawText(QRectF(MARGIN, y, inner, box.height() + 1), flags, line)
            y += box.height()


def _paint_scaled(fig: Figure, painter: QPainter, scale: float) -> None:
    painter.scale(scale, scale)
    fig.paint(painter)
    painter.end()


def png_size(fig: Figure, dpi: float) -> tuple[int, int]:
    """Pixel (width, height) of the PNG at ``dpi``."""
    s = dpi / POINTS_PER_INCH
    return round(fig.width * s), round(fig.height * s)


def write_png(fig: Figure, path: Path, dpi: float = DEFAULT_DPI) -> Path:
    if not 10 <= dpi <= 2400:
        raise ValueError(f"DPI must be between 10 and 2400, got {dpi}")
    w, h = png_size(fig, dpi)
    image = QImage(w, h, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    dots_per_metre = round(dpi / 0.0254)
    image.setDotsPerMeterX(dots_per_metre)
    image.setDotsPerMeterY(dots_per_metre)
    _paint_scaled(fig, QPainter(image), dpi / POINTS_PER_INCH)
    # PySide6's stub types format as bytes, but the binding rejects bytes and takes only str.
    if not image.save(str(path), "PNG"):  # type: ignore[call-overload]
        raise OSError(f"Could not write {path}")
    return path


def write_svg(fig: Figure, path: Path) -> Path:
    from PySide6.QtSvg import QSvgGenerator

    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setTitle(fig.title)
    gen.setDescription(" ".join(fig.caption))
    gen.setResolution(round(POINTS_PER_INCH))  # one user unit per point
    gen.setSize(QSizeF(fig.width, fig.height).toSize())
    gen.setViewBox(QRectF(0, 0, fig.width, fig.height))
    painter = QPainter()
    if not painter.begin(gen):
        raise OSError(f"Could not write {path}")
    _paint_scaled(fig, painter, 1.0)
    return path


def write_pdf(fig: Figure, path: Path) -> Path:
    writer = QPdfWriter(str(path))
    writer.setTitle(fig.title)
    writer.setCreator("MaskScope")
    writer.setPageLayout(
        QPageLayout(
            QPageSize(
                QSizeF(fig.width, fig.height), QPageSize.Unit.Point, "figure", QPageSize.SizeMatchPolicy.ExactMatch
            ),
            QPageLayout.Orientation.Portrait,
            QMarginsF(0, 0, 0, 0),
        )
    )
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"Could not write {path}")
    _paint_scaled(fig, painter, writer.resolution() / POINTS_PER_INCH)
    return path


def write_figure(fig: Figure, path: str | Path, dpi: float = DEFAULT_DPI) -> tuple[Path, Path]:
    """Write ``fig`` in the format of ``path``'s suffix (.png, .svg or .pdf) and its numbers as
    JSON with the same stem. Raises MaskScopeError naming the file when it cannot be written."""
    from engine.errors import MaskScopeError
    from engine.inspect.figure_export import write_figure_json

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise MaskScopeError(f"{path.name}: figures are written as {', '.join('.' + f for f in FORMATS)}")
    if not path.parent.is_dir():
        raise MaskScopeError(f"Could not write {path}: the folder does not exist.")
    try:
        if fmt == "png":
            write_png(fig, path, dpi)
        elif fmt == "svg":
            write_svg(fig, path)
        else:
            write_pdf(fig, path)
    except (OSError, ValueError) as exc:
        raise MaskScopeError(f"Could not write {path}: {exc}") from exc
    return path, write_figure_json(path.with_suffix(".json"), fig.data)


# ------------------------------------------------------------------------------------------------
# Drawing helpers
# ------------------------------------------------------------------------------------------------
# viridis-like (sequential) and blue-white-red (diverging) colour stops
_SEQUENTIAL = (
    (0.0, (68, 1, 84)),
    (0.25, (59, 82, 139)),
    (0.5, (33, 145, 140)),
    (0.75, (94, 201, 98)),
    (1.0, (253, 231, 37)),
)
_DIVERGING = ((0.0, (49, 54, 149)), (0.5, (247, 247, 247)), (1.0, (165, 0, 38)))


def colour(t: float, stops: Sequence[tuple[float, tuple[int, int, int]]] = _SEQUENTIAL) -> QColor:
    """Interpolated colour at ``t`` in [0, 1] (NaN: grey)."""
    if not math.isfinite(t):
        return QColor(200, 200, 200)
    t = min(max(t, 0.0), 1.0)
    for (t0, c0), (t1, c1) in zip(stops, stops[1:], strict=False):
        if t <= t1:
            u = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
            return QColor(*(round(a + (b - a) * u) for a, b in zip(c0, c1, strict=True)))
    return QColor(*stops[-1][1])


def _norm(values: np.ndarray, diverging: bool) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    if diverging:
        m = float(np.abs(finite).max()) or 1.0
        return -m, m
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def fit_rect(rect: QRectF, w: float, h: float) -> QRectF:
    """The largest ``w``:``h`` rectangle centred in ``rect``."""
    s = min(rect.width() / max(w, 1e-9), rect.height() / max(h, 1e-9))
    return QRectF(rect.center().x() - w * s / 2, rect.center().y() - h * s / 2, w * s, h * s)


class Mapping:
    """Data coordinates (x, y) in ``src`` -> page points in ``dst``."""

    def __init__(self, src: tuple[float, float, float, float], dst: QRectF) -> None:
        self.x0, self.y0, x1, y1 = src
        self.sx = dst.width() / max(x1 - self.x0, 1e-9)
        self.sy = dst.height() / max(y1 - self.y0, 1e-9)
        self.dst = dst

    def pt(self, x: float, y: float) -> QPointF:
        return QPointF(self.dst.x() + (x - self.x0) * self.sx, self.dst.y() + (y - self.y0) * self.sy)

    def rect(self, x1: float, y1: float, x2: float, y2: float) -> QRectF:
        return QRectF(self.pt(x1, y1), self.pt(x2, y2))


def draw_cells(p: QPainter, m: Mapping, values: np.ndarray, x0: float, y0: float, diverging: bool = False) -> None:
    """Heatmap as vector rectangles: cell (i, j) covers [x0 + j, x0 + j + 1] x [y0 + i, y0 + i + 1]."""
    lo, hi = _norm(values, diverging)
    stops = _DIVERGING if diverging else _SEQUENTIAL
    p.setPen(Qt.PenStyle.NoPen)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            p.setBrush(colour((float(values[i, j]) - lo) / (hi - lo), stops))
            r = m.rect(x0 + j, y0 + i, x0 + j + 1, y0 + i + 1)
            p.drawRect(r.adjusted(0, 0, 0.05, 0.05))  # hairline overlap: no seams in viewers


def value_format(values: np.ndarray) -> str:
    finite = np.abs(values[np.isfinite(values)])
    big = float(finite.max()) if finite.size else 0.0
    return "{:.0f}" if big >= 100 else "{:.1f}" if big >= 10 else "{:.2f}"


def draw_table(
    p: QPainter, rect: QRectF, values: np.ndarray, diverging: bool = False, limits: tuple[float, float] | None = None
) -> None:
    """Every cell of ``values`` (rows x cols) with its number on a colour scale (``limits``, else
    the values' own range), headers 0..n-1."""
    rows, cols = values.shape
    head = 1.0  # one header row/column, in cell units
    area = fit_rect(rect, cols + head, rows + head)
    cw, ch = area.width() / (cols + head), area.height() / (rows + head)
    fmt = value_format(values)
    texts = [[fmt.format(v) if math.isfinite(v) else "nan" for v in row] for row in values.astype(float)]
    longest = max((len(t) for row in texts for t in row), default=1)
    size = max(2.0, min(ch * 0.45, cw / (0.62 * longest + 0.4)))
    lo, hi = limits if limits is not None else _norm(values, diverging)
    stops = _DIVERGING if diverging else _SEQUENTIAL
    p.setFont(_font(size))
    center = int(Qt.AlignmentFlag.AlignCenter)
    for i in range(rows):
        for j in range(cols):
            r = QRectF(area.x() + (j + head) * cw, area.y() + (i + head) * ch, cw, ch)
            c = colour((float(values[i, j]) - lo) / (hi - lo), stops)
            p.fillRect(r, c)
            p.setPen(Qt.GlobalColor.black if c.lightnessF() > 0.55 else Qt.GlobalColor.white)
            p.drawText(r, center, texts[i][j])
    p.setPen(QPen(QColor(120, 120, 120), 0))
    p.setFont(_font(size * 0.9))
    for j in range(cols):
        p.drawText(QRectF(area.x() + (j + head) * cw, area.y(), cw, ch), center, str(j))
    for i in range(rows):
        p.drawText(QRectF(area.x(), area.y() + (i + head) * ch, cw, ch), center, str(i))
    p.setPen(QPen(QColor(60, 60, 60), 0.4))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(QRectF(area.x() + cw, area.y() + ch, cols * cw, rows * ch))


def draw_legend(p: QPainter, rect: QRectF, items: Sequence[tuple[str, QColor, str]]) -> None:
    """Legend rows (label, colour, kind: 'line', 'dash', 'dot' or 'box') from ``rect``'s top left."""
    p.setFont(_font(6.5))
    fm = QFontMetricsF(p.font())
    y = rect.y() + 2
    for label, col, kind in items:
        mid = y + fm.height() / 2
        if kind == "box":
            p.fillRect(QRectF(rect.x() + 2, mid - 3.5, 12, 7), col)
        elif kind == "dot":
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(col)
            p.drawEllipse(QPointF(rect.x() + 8, mid), 2.2, 2.2)
        else:
            pen = QPen(col, 1.4)
            if kind == "dash":
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(QPointF(rect.x() + 2, mid), QPointF(rect.x() + 14, mid))
        p.setPen(Qt.GlobalColor.black)
        p.drawText(QPointF(rect.x() + 18, y + fm.ascent()), label)
        y += fm.height() + 1


def _rgb_image(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _crop_window(
    boxes: Sequence[np.ndarray], image_hw: tuple[int, int], pad: float = 0.25
) -> tuple[int, int, int, int]:
    """Integer crop (x1, y1, x2, y2) around ``boxes`` with ``pad`` of their size on each side."""
    b = np.array([np.asarray(x, dtype=float)[:4] for x in boxes])
    x1, y1 = b[:, 0].min(), b[:, 1].min()
    x2, y2 = b[:, 2].max(), b[:, 3].max()
    px, py = (x2 - x1) * pad + 4, (y2 - y1) * pad + 4
    h, w = image_hw
    return (
        max(0, math.floor(x1 - px)),
        max(0, math.floor(y1 - py)),
        min(w, math.ceil(x2 + px)),
        min(h, math.ceil(y2 + py)),
    )


def draw_image_crop(p: QPainter, rect: QRectF, image: np.ndarray, crop: tuple[int, int, int, int]) -> Mapping:
    """The image crop fitted into ``rect``; returns the image-pixel -> page mapping."""
    x1, y1, x2, y2 = crop
    target = fit_rect(rect, x2 - x1, y2 - y1)
    p.drawImage(target, _rgb_image(image[y1:y2, x1:x2]))
    return Mapping((x1, y1, x2, y2), target)


def _box(p: QPainter, m: Mapping, box: np.ndarray, col: QColor, style: Qt.PenStyle, width: float = 1.2) -> None:
    pen = QPen(col, width)
    pen.setStyle(style)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(m.rect(*(float(v) for v in box[:4])))


def _segments(p: QPainter, m: Mapping, segments: np.ndarray, col: QColor, width: float = 0.4) -> None:
    p.setPen(QPen(col, width))
    for x1, y1, x2, y2 in segments:
        p.drawLine(m.pt(x1, y1), m.pt(x2, y2))


def _points(p: QPainter, m: Mapping, xy: np.ndarray, valid: np.ndarray, radius: float) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    for (x, y), ok in zip(xy, valid, strict=True):
        p.setBrush(SAMPLE if ok else INVALID)
        p.drawEllipse(m.pt(x, y), radius, radius)


def _colour_bar(p: QPainter, rect: QRectF, lo: float, hi: float, diverging: bool = False) -> None:
    """A horizontal scale bar along ``rect``'s bottom with its end values."""
    bar = QRectF(rect.x(), rect.bottom() - 14, rect.width() * 0.6, 5)
    stops = _DIVERGING if diverging else _SEQUENTIAL
    n = 32
    for k in range(n):
        cell = QRectF(bar.x() + bar.width() * k / n, bar.y(), bar.width() / n + 0.05, bar.height())
        p.fillRect(cell, colour(k / (n - 1), stops))
    p.setPen(Qt.GlobalColor.black)
    p.setFont(_font(5.5))
    p.drawText(QPointF(bar.x(), bar.bottom() + 7), f"{lo:.3g}")
    p.drawText(QRectF(bar.x(), bar.bottom(), bar.width(), 8), int(Qt.AlignmentFlag.AlignRight), f"{hi:.3g}")


# ------------------------------------------------------------------------------------------------
# The RoI inspector's figure
# ------------------------------------------------------------------------------------------------
def roi_figure(insp, view, image: np.ndarray | None, data: dict) -> Figure:
    """The RoI inspector's figure for ``insp`` (engine RoIInspection) and feature view ``view``:
    image crop with proposal, RoI, sampling grid and samples; the feature-map window with the same
    grid; the full RoIAlign table, RoIPool's table and their difference; a caption with the numbers."""
    a = insp.align
    oh, ow = a.output_size
    gh, gw = a.grid
    pooled = np.asarray(insp.align_pooled(view), dtype=float)
    pool = np.asarray(insp.pool_pooled(view), dtype=float)
    diff = np.asarray(insp.difference(view), dtype=float)
    window = insp.feature_window(view)
    n_samples = gh * gw * oh * ow
    dot = 1.6 if n_samples <= 800 else 0.9
    draw_samples = n_samples <= MAX_DRAWN_SAMPLES
    samples_label = f"samples {gh}x{gw} per bin" if draw_samples else f"{n_samples} samples (too many to draw)"

    drawn = not np.isfinite(insp.proposal_objectness)

    def image_panel(p: QPainter, rect: QRectF) -> None:
        legend = QRectF(rect.right() - 118, rect.y(), 118, rect.height())
        area = QRectF(rect.x(), rect.y(), rect.width() - 122, rect.height())
        if image is None:
            p.drawText(area, int(Qt.AlignmentFlag.AlignCenter), "(image not available)")
            return
        crop = _crop_window([insp.proposal_image, insp.roi_image, insp.refined_image], image.shape[:2])
        m = draw_image_crop(p, area, image, crop)
        p.save()
        p.setClipRect(m.dst)
        _segments(p, m, insp.grid_segments_image(), GRID)
        if draw_samples:
            _points(p, m, insp.sample_points_image(), insp.sample_valid(), dot)
        _box(p, m, insp.proposal_image, PROPOSAL, Qt.PenStyle.DashLine)
        _box(p, m, insp.roi_image, ROI, Qt.PenStyle.SolidLine)
        p.restore()
        draw_legend(
            p,
            legend,
            [
                # A box prompt's RoI has no RPN proposal (objectness NaN): it is the drawn box.
                (f"RPN proposal #{insp.proposal_index}" if not drawn else "drawn box", PROPOSAL, "dash"),
                (f"RoI pooled ({insp.roi_name if not drawn else 'drawn box'})", ROI, "line"),
                (f"bins {oh}x{ow}", QColor(170, 170, 170), "line"),
                (samples_label, SAMPLE, "dot"),
                ("sample outside the map", INVALID, "dot"),
            ],
        )

    def feature_panel(p: QPainter, rect: QRectF) -> None:
        values = np.asarray(window.values, dtype=float)
        legend = QRectF(rect.right() - 110, rect.y(), 110, rect.height())
        area = QRectF(rect.x(), rect.y(), rect.width() - 114, rect.height() - 18)
        fx1, fy1, fx2, fy2 = window.rect_feature
        target = fit_rect(area, fx2 - fx1, fy2 - fy1)
        m = Mapping((fx1, fy1, fx2, fy2), target)
        draw_cells(p, m, values, fx1, fy1)
        pool_pen = QPen(POOL, 0.8)
        pool_pen.setStyle(Qt.PenStyle.DotLine)
        p.setPen(pool_pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for r in insp.pool_rects_feature():
            p.drawRect(m.rect(*(float(v) for v in r[:4])))
        _segments(p, m, insp.grid_segments_feature(), GRID, 0.5)
        if draw_samples:
            _points(p, m, insp.sample_points_feature(), insp.sample_valid(), dot)
        lo, hi = window.value_range
        _colour_bar(p, QRectF(rect.x(), rect.y(), area.width(), rect.height()), lo, hi)
        draw_legend(
            p,
            legend,
            [
                (f"P{insp.level.level} cells ({window.label})", colour(0.6), "box"),
                ("RoIAlign bins", QColor(170, 170, 170), "line"),
                ("samples", SAMPLE, "dot"),
                ("RoIPool cells", POOL, "dash"),
            ],
        )

    s = insp.settings
    level = insp.level
    caption = [
        f"Detection #{insp.det_index + 1}: {insp.class_name} (score {insp.score:.3f}); {insp.head_name} pools the "
        f"{insp.roi_name} [{', '.join(f'{v:.1f}' for v in insp.roi_image)}] (image pixels).",
        f"FPN level P{level.level} (stride {level.stride:g}, spatial scale {a.spatial_scale:.4g}); "
        f"RoIAlign {oh}x{ow} bins, sampling grid {gh}x{gw} per bin ({n_samples} samples), "
        f"aligned={s.aligned}; feature view: {insp.view_label(view)}.",
        f"RoIAlign pooled: min {np.nanmin(pooled):.4g}, max {np.nanmax(pooled):.4g}, mean {np.nanmean(pooled):.4g}. "
        f"RoIPool: mean {np.nanmean(pool):.4g}. Mean |RoIAlign - RoIPool| = {np.nanmean(np.abs(diff)):.4g}, "
        f"max {np.nanmax(np.abs(diff)):.4g}.",
    ]
    table_h = 250.0 if max(oh, ow) > 8 else 180.0
    shared = _norm(np.concatenate([pooled.reshape(-1), pool.reshape(-1)]), False)  # one scale: comparable
    rows = [
        (
            210.0,
            [
                Panel("Image crop: proposal, RoI, sampling grid", 1.0, image_panel),
                Panel(f"Feature map P{level.level} ({window.label})", 1.0, feature_panel),
            ],
        ),
        (
            table_h,
            [
                Panel(f"RoIAlign pooled ({oh}x{ow})", 1.0, lambda p, r: draw_table(p, r, pooled, limits=shared)),
                Panel(f"RoIPool ({oh}x{ow})", 1.0, lambda p, r: draw_table(p, r, pool, limits=shared)),
                Panel("Difference RoIAlign - RoIPool", 1.0, lambda p, r: draw_table(p, r, diff, diverging=True)),
            ],
        ),
    ]
    title = f"RoI inspector: detection #{insp.det_index + 1} {insp.class_name}, {insp.head_name}"
    return Figure(title, rows, caption, data)


# ------------------------------------------------------------------------------------------------
# The prototype viewer's figure
# ------------------------------------------------------------------------------------------------
def _strip_columns(k: int) -> int:
    return min(k, 16)


def prototype_figure(grid, composition, comparison, image: np.ndarray | None, data: dict) -> Figure:
    """The prototype viewer's figure: the prototype strip (each with its coefficient), the mask
    stages, the coefficients as bars (two detections side by side, with a legend) and a caption."""
    k = grid.count
    cols = _strip_columns(k)
    strip_rows = math.ceil(k / cols)
    c = composition

    def strip(p: QPainter, rect: QRectF) -> None:
        hp, wp = grid.size
        cell_w = rect.width() / cols
        label_h = 9.0
        cell_h = min(rect.height() / strip_rows, cell_w * hp / max(wp, 1) + label_h)
        p.setFont(_font(5.5))
        for j in range(k):
            r, col = divmod(j, cols)
            tile = QRectF(rect.x() + col * cell_w + 1, rect.y() + r * cell_h, cell_w - 2, cell_h - label_h)
            target = fit_rect(tile, wp, hp)
            m = Mapping((0, 0, wp, hp), target)
            lo, hi = grid.vmin, grid.vmax
            values = (np.asarray(grid.maps[j], dtype=float) - lo) / (hi - lo)
            p.drawImage(target, _heat_image(values))
            text = f"{j}"
            if c is not None:
                text += f": {float(c.coefficients[j]):+.2f}"
                if not bool(c.enabled[j]):
                    p.setPen(QPen(QColor("#d00000"), 1.0))
                    p.drawLine(m.pt(0, 0), m.pt(wp, hp))
                    text += " off"
            p.setPen(Qt.GlobalColor.black)
            p.drawText(QRectF(tile.x(), tile.bottom(), tile.width(), label_h), int(Qt.AlignmentFlag.AlignHCenter), text)

    def stages(p: QPainter, rect: QRectF) -> None:
        if c is None:
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), "(no detection selected)")
            return
        maps = [
            ("assembled (logits)", np.asarray(c.assembled, float), True),
            ("sigmoid", np.asarray(c.sigmoid, float), False),
            ("cropped to the box", np.asarray(c.cropped, float), False),
        ]
        n = len(maps) + (1 if image is not None else 0)
        w = rect.width() / n
        for i, (name, values, div) in enumerate(maps):
            p.setFont(_font(6.5))
            tile = QRectF(rect.x() + i * w + 2, rect.y() + 10, w - 4, rect.height() - 26)
            lo, hi = _norm(values, div) if div else (0.0, 1.0)
            target = fit_rect(tile, values.shape[1], values.shape[0])
            p.drawImage(target, _heat_image((values - lo) / (hi - lo), _DIVERGING if div else _SEQUENTIAL))
            if name.startswith("cropped"):
                m = Mapping((0, 0, values.shape[1], values.shape[0]), target)
                _box(p, m, np.asarray(c.crop_box, float), ROI, Qt.PenStyle.SolidLine, 0.8)
            p.setPen(Qt.GlobalColor.black)
            p.drawText(QRectF(tile.x(), rect.y(), tile.width(), 10), int(Qt.AlignmentFlag.AlignHCenter), name)
            _colour_bar(p, QRectF(tile.x(), tile.y(), tile.width(), rect.height() - 8), lo, hi, div)
        if image is not None:
            tile = QRectF(rect.x() + len(maps) * w + 2, rect.y() + 10, w - 4, rect.height() - 26)
            crop = _crop_window([c.box_image], image.shape[:2])
            m = draw_image_crop(p, tile, image, crop)
            outline = _mask_outline(c.mask)
            p.setPen(QPen(SAMPLE, 1.0))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(_mapped_path(outline, m))
            _box(p, m, np.asarray(c.box_image, float), ROI, Qt.PenStyle.DashLine, 0.8)
            p.setPen(Qt.GlobalColor.black)
            p.setFont(_font(6.5))
            p.drawText(
                QRectF(tile.x(), rect.y(), tile.width(), 10),
                int(Qt.AlignmentFlag.AlignHCenter),
                f"mask > {c.threshold:g} on the image",
            )

    def bars(p: QPainter, rect: QRectF) -> None:
        if c is None:
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), "(no detection selected)")
            return
        series = [(f"#{c.det_index + 1} {c.class_name}", np.asarray(c.coefficients, float), FIRST)]
        if comparison is not None:
            series = [
                (f"#{comparison.first + 1} {comparison.names[0]}", np.asarray(comparison.a, float), FIRST),
                (f"#{comparison.second + 1} {comparison.names[1]}", np.asarray(comparison.b, float), SECOND),
            ]
        plot = QRectF(rect.x() + 26, rect.y() + 4, rect.width() - 26 - 120, rect.height() - 18)
        m = max(float(np.abs(np.concatenate([s[1] for s in series])).max()), 1e-6)
        zero = plot.center().y()
        p.setPen(QPen(QColor(150, 150, 150), 0.5))
        p.drawLine(QPointF(plot.x(), zero), QPointF(plot.right(), zero))
        p.setFont(_font(5.5))
        p.setPen(Qt.GlobalColor.black)
        p.drawText(QRectF(rect.x(), plot.y() - 3, 24, 8), int(Qt.AlignmentFlag.AlignRight), f"{m:.2g}")
        p.drawText(QRectF(rect.x(), zero - 4, 24, 8), int(Qt.AlignmentFlag.AlignRight), "0")
        p.drawText(QRectF(rect.x(), plot.bottom() - 5, 24, 8), int(Qt.AlignmentFlag.AlignRight), f"{-m:.2g}")
        slot = plot.width() / k
        bw = slot * 0.8 / len(series)
        for j in range(k):
            for s_i, (_name, values, col) in enumerate(series):
                h = values[j] / m * plot.height() / 2
                x = plot.x() + j * slot + slot * 0.1 + s_i * bw
                p.fillRect(QRectF(x, zero - max(h, 0), bw, abs(h)), col)
            if k <= 40 or j % 2 == 0:
                p.setPen(Qt.GlobalColor.black)
                p.drawText(
                    QRectF(plot.x() + j * slot, plot.bottom() + 1, slot, 8), int(Qt.AlignmentFlag.AlignHCenter), str(j)
                )
        legend = [(name, col, "box") for name, _, col in series]
        draw_legend(p, QRectF(plot.right() + 8, rect.y(), 112, rect.height()), legend)

    hp, wp = grid.size
    caption = [f"{k} prototypes of {hp}x{wp} pixels; colour range {grid.vmin:.3g} .. {grid.vmax:.3g}."]
    if c is not None:
        on = int(np.count_nonzero(c.enabled))
        caption.append(
            f"Detection #{c.det_index + 1}: {c.class_name} (score {c.score:.3f}); {on} of {k} prototypes on; "
            f"mask = sigmoid(prototypes x coefficients), cropped to the box "
            f"[{', '.join(f'{v:.1f}' for v in c.crop_box)}] (prototype pixels), threshold {c.threshold:g}: "
            f"{c.mask.area} pixels"
            + (f" ({c.changed_pixels} differ from the prediction's mask)." if c.changed_pixels is not None else ".")
        )
    if comparison is not None:
        caption.append(
            f"Coefficients of #{comparison.first + 1} {comparison.names[0]} vs #{comparison.second + 1} "
            f"{comparison.names[1]}: cosine similarity {comparison.cosine:.3f}, "
            f"Euclidean distance {comparison.distance:.3f}."
        )
    strip_h = strip_rows * (PAGE_WIDTH / cols * grid.size[0] / max(grid.size[1], 1) + 9)
    rows = [(min(strip_h, 260.0), [Panel("Prototypes (index: coefficient)", 1.0, strip)])]
    if c is not None:
        rows.append((150.0, [Panel("Mask stages", 1.0, stages)]))
        title = "Coefficients" + (" of two detections" if comparison is not None else "")
        rows.append((120.0, [Panel(title, 1.0, bars)]))
    head = f"Prototype viewer: detection #{c.det_index + 1} {c.class_name}" if c is not None else "Prototype viewer"
    return Figure(head, rows, caption, data)


def _heat_image(values: np.ndarray, stops=_SEQUENTIAL) -> QImage:
    """A raster heatmap (prototype-sized maps: vector cells would make huge files)."""
    lut = np.array([(c.red(), c.green(), c.blue()) for c in (colour(t / 255, stops) for t in range(256))], np.uint8)
    idx = np.clip(np.nan_to_num(values, nan=0.0) * 255, 0, 255).astype(np.uint8)
    return _rgb_image(lut[idx])


def _mask_outline(mask) -> list[np.ndarray]:
    import cv2

    bits = np.ascontiguousarray(mask.bits, dtype=np.uint8)
    contours, _ = cv2.findContours(bits, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cnt.reshape(-1, 2).astype(float) + (mask.x0, mask.y0) for cnt in contours]


def _mapped_path(polygons: list[np.ndarray], m: Mapping) -> QPainterPath:
    path = QPainterPath()
    for poly in polygons:
        if len(poly) < 2:
            continue
        path.moveTo(m.pt(*poly[0]))
        for x, y in poly[1:]:
            path.lineTo(m.pt(x, y))
        path.closeSubpath()
    return path
