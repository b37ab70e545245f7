"""How Mask R-CNN's 28x28 mask probabilities become the instance mask (RoI inspector, step 7).

The very code of ``engine.maskrcnn.paste`` for one detection, keeping the probabilities: cell ``i``
of the m x m map stands for box position ``x1 + (i + 0.5) * w / m``; each image pixel within one
cell of the box is the bilinear mix of the four cells nearest its centre (the map padded by one
cell of zeros), and pixels above 0.5 form the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.inspect.availability import InspectionError
from engine.maskrcnn.paste import PADDING, paste_probabilities
from engine.maskrcnn.trace import MaskRCNNTrace


def _fmt(value: float) -> str:
    return f"{float(value) + 0.0:.6g}"


@dataclass(frozen=True)
class MaskPasteInspection:
    det_index: int
    class_name: str
    probs: np.ndarray  # float32 (m, m): sigmoid mask of the predicted class, box-relative
    threshold: float
    padding: int
    padded: np.ndarray  # float32 (m + 2p, m + 2p)
    box_image: tuple[float, float, float, float]  # refined box, original image pixels
    cell_size: tuple[float, float]  # (w / m, h / m): one cell in image pixels
    placed: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the pixels computed
    cols: np.ndarray  # float64 (x1 - x0,): cell coordinate of each computed column's centre
    rows: np.ndarray  # float64 (y1 - y0,): same for rows
    patch: np.ndarray  # float32 (y1 - y0, x1 - x0) probabilities pasted into the image
    image_size: tuple[int, int]

    @property
    def bits(self) -> np.ndarray:
        """The thresholded patch: the instance mask inside ``placed``."""
        return self.patch > self.threshold

    @property
    def area(self) -> int:
        return int(self.bits.sum())

    @property
    def cells_above(self) -> int:
        """How many of the m x m probabilities exceed the threshold."""
        return int((self.probs > self.threshold).sum())

    @property
    def reach(self) -> tuple[float, float, float, float]:
        """The box grown by one cell: beyond it every pixel mixes only the zero padding."""
        x1, y1, x2, y2 = self.box_image
        cw, ch = self.cell_size
        return x1 - cw, y1 - ch, x2 + cw, y2 + ch

    def centre_example(self) -> str:
        """The bilinear mix for the computed pixel nearest the box centre."""
        if not self.patch.size:
            return "no pixel of the box lies inside the image"
        x1, y1, x2, y2 = self.box_image
        px0, py0 = self.placed[:2]
        c = int(np.clip(np.floor((x1 + x2) / 2) - px0, 0, len(self.cols) - 1))
        r = int(np.clip(np.floor((y1 + y2) / 2) - py0, 0, len(self.rows) - 1))
        u, v = float(self.cols[c]), float(self.rows[r])
        return (
            f"e.g. pixel ({px0 + c}, {py0 + r}): its centre is cell (row {_fmt(v)}, col {_fmt(u)}); "
            f"bilinear over cells rows {int(np.floor(v))}..{int(np.floor(v)) + 1}, "
            f"cols {int(np.floor(u))}..{int(np.floor(u)) + 1} -> {_fmt(self.patch[r, c])}"
        )

    def lines(self) -> list[str]:
        m = self.probs.shape[0]
        p = self.padded.shape[0]
        x1, y1, x2, y2 = self.box_image
        cw, ch = self.cell_size
        px0, py0, px1, py1 = self.placed
        return [
            f"mask head output for '{self.class_name}': {m}x{m} probabilities "
            f"({self.cells_above} of {m * m} above {_fmt(self.threshold)})",
            f"box ({_fmt(x1)}, {_fmt(y1)}, {_fmt(x2)}, {_fmt(y2)}): one cell = {_fmt(cw)} x {_fmt(ch)} pixels; "
            f"cell i's centre at x1 + (i + 0.5) * {_fmt(cw)}; padded by {self.padding} cell of zeros: {p}x{p}",
            f"pixels within one cell of the box, inside the image: x {px0}..{px1 - 1}, y {py0}..{py1 - 1}; "
            "each pixel centre maps to cell (x + 0.5 - x1) / cell - 0.5",
            self.centre_example(),
            f"pixels with probability > {_fmt(self.threshold)}: {self.area}",
        ]


def inspect_mask_paste(
    trace: MaskRCNNTrace,
    det_index: int,
    box_image: np.ndarray,
    threshold: float = 0.5,
    class_names: list[str] | None = None,
) -> MaskPasteInspection:
    """Paste detection ``det_index``'s mask probabilities into ``box_image`` (the instance's box in
    original pixels, ``Instance.box``), keeping every intermediate."""
    if not isinstance(trace, MaskRCNNTrace):
        raise InspectionError(f"Mask pasting is Mask R-CNN's; got a {type(trace).__name__}.")
    if not 0 <= det_index < len(trace.detections):
        raise InspectionError(f"Detection {det_index} is not in the trace ({len(trace.detections)} detections).")
    det = trace.detections[det_index]
    probs = torch.from_numpy(np.ascontiguousarray(det.mask_probs, dtype=np.float32))
    x1, y1, x2, y2 = np.asarray(box_image, dtype=np.float32).tolist()  # as Instance.box holds it
    box = (x1, y1, x2, y2)
    ax, ay, patch = paste_probabilities(probs, box, trace.original_size)
    names = class_names or []
    return MaskPasteInspection(
        det_index=det_index,
        class_name=names[det.label] if 0 <= det.label < len(names) else f"class {det.label}",
        probs=probs.numpy().copy(),
        threshold=float(threshold),
        padding=PADDING,
        padded=torch.nn.functional.pad(probs, (PADDING,) * 4).numpy(),
        box_image=box,
        cell_size=(ax.cell, ay.cell),
        placed=(ax.start, ay.start, ax.stop, ay.stop),
        cols=ax.cells,
        rows=ay.cells,
        patch=patch.numpy().copy(),
        image_size=trace.original_size,
    )
