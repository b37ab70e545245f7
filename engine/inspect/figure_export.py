"""The numbers behind an inspector view as a JSON-ready dict, and writing it atomically.

The GUI composes a figure of a view (app/inspectors/figure.py: PNG, SVG or PDF) and writes these
numbers next to it, so a figure can be checked or re-plotted. Only plain types come out: lists,
floats, ints, strings, bools, None (NaN -> None).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import overload

import numpy as np

from engine.errors import MaskScopeError
from engine.fileio import atomic_write_text
from engine.inspect.mask_paste import MaskPasteInspection
from engine.inspect.prototype_inspection import CoefficientComparison, DetectionComposition, PrototypeGrid
from engine.inspect.roi_inspection import FeatureView, RoIInspection

FORMAT_VERSION = 1


@overload
def plain(value: dict) -> dict: ...
@overload
def plain(value: object) -> object: ...


def plain(value: object) -> object:
    """Recursively turn numpy arrays/scalars, tuples and dataclass leftovers into JSON types."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot export {type(value).__name__} as JSON")


def _box(net: np.ndarray, img: np.ndarray) -> dict:
    return {"network_xyxy": net, "image_xyxy": img}


def roi_figure_data(
    insp: RoIInspection,
    view: FeatureView,
    selected: tuple[int, int, tuple[int, int] | None] | None = None,
    mask_paste: MaskPasteInspection | None = None,
) -> dict:
    """Everything the RoI inspector shows for ``insp`` with feature view ``view`` (a channel, 'mean'
    or 'max'); ``selected`` = (bin row, bin col, sample (iy, ix) or None) adds the worked example."""
    a = insp.align
    lv = insp.level
    data: dict = {
        "format": "maskscope-roi-inspector",
        "version": FORMAT_VERSION,
        "detection": {
            "index": insp.det_index,
            "class": insp.class_name,
            "score": insp.score,
            "top_classes": [{"class": n, "probability": p} for n, p in insp.top_classes],
            "background_probability": insp.background_prob,
        },
        "head": insp.head_name,
        "roi_is": insp.roi_name,
        "image_size_hw": insp.image_size,
        "network_size_hw": insp.network_size,
        "scale_yx": insp.scale,
        "boxes": {
            "proposal": {
                **_box(insp.proposal_network, insp.proposal_image),
                "index": insp.proposal_index,
                "objectness": insp.proposal_objectness,
            },
            "refined": _box(insp.refined_network, insp.refined_image),
            "roi": _box(insp.roi_network, insp.roi_image),
        },
        "level": {
            **{k: v for k, v in asdict(lv).items()},
            "stride": lv.stride,
            "traced_level": insp.trace_level,
            "formula": lv.formula_lines(),
        },
        "levels": insp.levels,
        "settings": asdict(insp.settings),
        "model_settings": asdict(insp.model_settings),
        "uses_model_settings": insp.uses_model_settings,
        "view": insp.view_label(view),
        "roi_align": {
            "output_size_hw": a.output_size,
            "samples_per_bin_hw": a.grid,
            "sample_count": insp.sample_count,
            "divisor": a.count,
            "spatial_scale": a.spatial_scale,
            "offset": a.offset,
            "roi_start_feature_xy": a.roi_start,
            "roi_size_feature_wh": a.roi_size,
            "bin_size_feature_wh": a.bin_size,
            "bin_edges_feature_x": insp.bin_edges_feature()[0],
            "bin_edges_feature_y": insp.bin_edges_feature()[1],
            "grid_segments_image": insp.grid_segments_image(),
            "sample_points_feature": insp.sample_points_feature(),
            "sample_points_image": insp.sample_points_image(),
            "sample_valid": insp.sample_valid(),
            "sample_values": insp.sample_values(view),
            "pooled": insp.align_pooled(view),
        },
        "roi_pool": {
            "roi_start_cells_xy": insp.pool.roi_start,
            "roi_end_cells_xy": insp.pool.roi_end,
            "bin_rows": insp.pool.bin_rows.numpy(),
            "bin_cols": insp.pool.bin_cols.numpy(),
            "bin_rects_image": insp.pool_rects_image(),
            "pooled": insp.pool_pooled(view),
            "argmax_rowcol": insp.pool_argmax(view),
        },
        "difference_align_minus_pool": insp.difference(view),
        "mean_abs_difference": float(np.abs(insp.difference(view)).mean()),
    }
    if selected is not None:
        row, col, sample = selected
        sel: dict = {"bin": [row, col], "worked_example": insp.worked_example(row, col, view).splitlines()}
        sel["roi_pool"] = insp.pool_bin_lines(row, col, view)
        if sample is not None:
            detail = insp.sample_detail(row, col, sample[0], sample[1], view)
            sel["sample"] = {**asdict(detail), "lines": detail.lines()}
        data["selected"] = sel
    if mask_paste is not None:
        data["mask_paste"] = mask_paste_data(mask_paste)
    return plain(data)


def mask_paste_data(m: MaskPasteInspection) -> dict:
    return plain(
        {
            "class": m.class_name,
            "probabilities": m.probs,
            "threshold": m.threshold,
            "padding": m.padding,
            "box_image_xyxy": m.box_image,
            "cell_size_xy": m.cell_size,
            "reach_xyxy": m.reach,
            "placed_xyxy": m.placed,
            "pasted_probabilities": m.patch,
            "area": m.area,
            "steps": m.lines(),
        }
    )


def prototype_figure_data(
    grid: PrototypeGrid,
    composition: DetectionComposition | None = None,
    comparison: CoefficientComparison | None = None,
    include_prototypes: bool = False,
) -> dict:
    """The prototype viewer's numbers: prototype statistics (and maps with ``include_prototypes``),
    the selected detection's coefficients, enabled prototypes and mask stages, and a comparison."""
    data: dict = {
        "format": "maskscope-prototype-viewer",
        "version": FORMAT_VERSION,
        "prototypes": {
            "count": grid.count,
            "size_hw": grid.size,
            "color_range": [grid.vmin, grid.vmax],
            "minima": grid.minima,
            "maxima": grid.maxima,
            "means": grid.means,
        },
    }
    if include_prototypes:
        data["prototypes"]["maps"] = grid.maps
    if composition is not None:
        c = composition
        data["detection"] = {
            "index": c.det_index,
            "class": c.class_name,
            "score": c.score,
            "coefficients": c.coefficients,
            "order_by_magnitude": c.order("magnitude"),
            "enabled": c.enabled,
            "crop_box_proto_xyxy": c.crop_box,
            "crop_rows": c.crop_rows,
            "crop_cols": c.crop_cols,
            "box_image_xyxy": c.box_image,
            "assembled": c.assembled,
            "sigmoid": c.sigmoid,
            "cropped": c.cropped,
            "threshold": c.threshold,
            "mask": {"x0": c.mask.x0, "y0": c.mask.y0, "bits": c.mask.bits.astype(np.uint8), "area": c.mask.area},
            "reference_area": c.reference_area,
            "changed_pixels": c.changed_pixels,
            "summary": c.lines(),
        }
    if comparison is not None:
        data["comparison"] = {
            "first": comparison.first,
            "second": comparison.second,
            "classes": comparison.names,
            "a": comparison.a,
            "b": comparison.b,
            "difference": comparison.difference,
            "cosine_similarity": comparison.cosine,
            "distance": comparison.distance,
        }
    return plain(data)


def write_figure_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as JSON (atomic); raises MaskScopeError naming the file when it cannot."""
    path = Path(path)
    text = json.dumps(plain(data), indent=1, allow_nan=False) + "\n"
    try:
        atomic_write_text(path, text)
    except MaskScopeError:
        raise
    except OSError as exc:  # e.g. the folder cannot be created (atomic_write_text lets that through)
        raise MaskScopeError(f"Could not write {path}: {exc.strerror or exc}.") from exc
    return path
