"""Numbers behind the model inspectors: Mask R-CNN's RoI inspector and YOLACT's prototype viewer.

Everything the inspector panels show is computed here from a prediction's trace
(``Segmenter.predict(image, trace=True)``); the Qt side only draws it. Each module has one job:

- ``availability``: whether a prediction has the internals a panel needs, and why not;
- ``roi_inspection``: FPN level, RoIAlign/RoIPool geometry and values for one Mask R-CNN detection;
- ``mask_paste``: how the 28x28 mask probabilities are pasted into the box;
- ``prototype_inspection``: prototypes, coefficients and the mask stages of one YOLACT detection;
- ``figure_export``: JSON of the numbers behind an inspector view.
"""

from __future__ import annotations

from engine.inspect.availability import InspectionError, prototype_viewer_status, roi_inspector_status
from engine.inspect.mask_paste import MaskPasteInspection, inspect_mask_paste
from engine.inspect.prototype_inspection import (
    CoefficientComparison,
    DetectionComposition,
    Mosaic,
    PrototypeGrid,
    compare_coefficients,
    compose_detection,
    prototype_grid,
    tile_maps,
)
from engine.inspect.roi_inspection import (
    FeatureWindow,
    LevelChoice,
    RoIInspection,
    RoISettings,
    SampleDetail,
    inspect_roi,
    level_for_box,
)

__all__ = [
    "CoefficientComparison",
    "DetectionComposition",
    "FeatureWindow",
    "InspectionError",
    "LevelChoice",
    "MaskPasteInspection",
    "Mosaic",
    "PrototypeGrid",
    "RoIInspection",
    "RoISettings",
    "SampleDetail",
    "compare_coefficients",
    "compose_detection",
    "inspect_mask_paste",
    "inspect_roi",
    "level_for_box",
    "prototype_grid",
    "prototype_viewer_status",
    "roi_inspector_status",
    "tile_maps",
]
