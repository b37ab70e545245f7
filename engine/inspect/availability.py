"""Whether a prediction carries the internals an inspector needs, and a message saying why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import MaskScopeError

if TYPE_CHECKING:
    from engine.prediction import Prediction


class InspectionError(MaskScopeError):
    """The requested internals are not in this prediction (no trace, other architecture, bad index)."""


# Status kinds, from "nothing to show" to "everything there".
NO_PREDICTION = "no_prediction"
NO_TRACE = "no_trace"
WRONG_MODEL = "wrong_model"
NO_DETECTIONS = "no_detections"
NO_SELECTION = "no_selection"
READY = "ready"


@dataclass(frozen=True)
class PanelStatus:
    kind: str  # one of the constants above
    message: str  # what the panel says instead of its content ('' when ready)

    @property
    def ready(self) -> bool:
        return self.kind == READY

    @property
    def rerun_helps(self) -> bool:
        """Running the model again on this image (with internals) would make the panel work."""
        return self.kind == NO_TRACE


def _trace_kind(trace: object) -> str | None:
    from engine.maskrcnn.trace import MaskRCNNTrace
    from engine.yolact.trace import YolactTrace

    if isinstance(trace, MaskRCNNTrace):
        return "maskrcnn"
    if isinstance(trace, YolactTrace):
        return "yolact"
    return None


def _detections(trace: Any, kind: str) -> int:
    return len(trace.detections) if kind == "maskrcnn" else len(trace)


def _common(prediction: Prediction | None, want: str, panel: str, other_panel: str) -> PanelStatus | None:
    if prediction is None:
        return PanelStatus(NO_PREDICTION, "Run a model on this image (Ctrl+R) to look inside it.")
    trace = getattr(prediction, "trace", None)
    if trace is None:
        return PanelStatus(
            NO_TRACE,
            f"This prediction was made without the model's internals (for example in a folder run), "
            f"so the {panel} has nothing to show. Run the model on this image again to record them.",
        )
    kind = _trace_kind(trace)
    if kind is None:
        return PanelStatus(WRONG_MODEL, f"The {panel} does not know this model's internals.")
    if kind != want:
        model = {"maskrcnn": "Mask R-CNN", "yolact": "YOLACT"}[kind]
        lacks = (
            "it has no RoIs, RoIAlign or FPN level mapping"
            if want == "maskrcnn"
            else "it has no prototypes or mask coefficients"
        )
        return PanelStatus(
            WRONG_MODEL,
            f"This prediction comes from {model}: {lacks}. The {panel} explains "
            f"{'Mask R-CNN' if want == 'maskrcnn' else 'YOLACT'}; see the {other_panel} instead.",
        )
    if _detections(trace, kind) != len(prediction.instances):
        return PanelStatus(
            NO_TRACE,
            "The recorded internals do not match the instances shown (the prediction was edited). "
            "Run the model on this image again.",
        )
    return None


def roi_inspector_status(prediction: Prediction | None, index: int) -> PanelStatus:
    """Can the RoI inspector show instance ``index`` of ``prediction``?"""
    status = _common(prediction, "maskrcnn", "RoI inspector", "Prototype viewer")
    if status is not None:
        return status
    assert prediction is not None  # _common reports a missing prediction
    if len(prediction.instances) == 0:
        return PanelStatus(NO_DETECTIONS, "The model found no instances in this image.")
    if not 0 <= index < len(prediction.instances):
        return PanelStatus(NO_SELECTION, "Select a detection on the canvas or in the instance list.")
    return PanelStatus(READY, "")


def prototype_viewer_status(prediction: Prediction | None, index: int) -> PanelStatus:
    """Can the prototype viewer show ``prediction`` (and instance ``index``)?

    ``NO_SELECTION`` and ``NO_DETECTIONS`` still allow the prototype grid: prototypes belong to
    the image, not to a detection.
    """
    status = _common(prediction, "yolact", "Prototype viewer", "RoI inspector")
    if status is not None:
        return status
    assert prediction is not None  # _common reports a missing prediction
    if len(prediction.instances) == 0:
        return PanelStatus(NO_DETECTIONS, "No detections: the prototypes of the image are shown alone.")
    if not 0 <= index < len(prediction.instances):
        return PanelStatus(NO_SELECTION, "Select a detection to see its coefficients and mask.")
    return PanelStatus(READY, "")


def has_prototypes(status: PanelStatus) -> bool:
    """The prototype grid can be shown (a YOLACT trace is there, with or without a selection)."""
    return status.kind in (READY, NO_SELECTION, NO_DETECTIONS)
