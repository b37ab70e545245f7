"""The RoI inspector's numbers for one Mask R-CNN detection, from a ``MaskRCNNTrace``.

For the chosen head (box head: the RPN proposal the detection came from, 7x7; mask head: the
refined box, 14x14) this gives the FPN level with the level-mapper formula filled in, the RoIAlign
explanation (bins, every bilinear sample, neighbours, weights, pooled values: equal to
``torchvision.ops.roi_align``), RoIPool on the same RoI, their difference, and every coordinate in
the three frames the inspector draws in: feature cells, network pixels, original image pixels.

Frames: ``network`` = the resized image the backbone saw; ``image`` = the original image, with
``network = image * scale`` per axis (``trace.scale``). Feature coordinates follow engine.roialign:
cell ``(r, c)`` is centred on the feature point ``(x=c, y=r)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.ops.boxes import box_area

from engine.inspect.availability import InspectionError
from engine.maskrcnn.trace import DetectionTrace, MaskRCNNTrace, PoolerSettings
from engine.roialign import AlignPoolComparison, RoIAlignExplanation, RoIPoolExplanation, compare_align_pool

# A channel index, or one of these reductions over channels.
FeatureView = int | str
REDUCTIONS = ("mean", "max")
BRANCHES = ("box", "mask")
# Worked examples write out at most this many samples (the average always uses all).
MAX_WORKED_SAMPLES = 16


def _fmt(value: float) -> str:
    return f"{float(value) + 0.0:.6g}"


@dataclass(frozen=True)
class RoISettings:
    """RoIAlign settings: output size (h, w), samples per bin axis (<= 0: adaptive), ``aligned``."""

    output_size: tuple[int, int]
    sampling_ratio: int
    aligned: bool

    def describe(self) -> str:
        ratio = "adaptive" if self.sampling_ratio <= 0 else str(self.sampling_ratio)
        return (
            f"output {self.output_size[0]}x{self.output_size[1]}, sampling ratio {ratio}, "
            f"aligned={'True' if self.aligned else 'False'}"
        )


def _ratio(value: int) -> int:
    """Every sampling ratio <= 0 means adaptive: keep one spelling (0) so settings compare equal."""
    return int(value) if int(value) > 0 else 0


def _pair(values: Sequence[int]) -> tuple[int, int]:
    """(height, width) as a tuple, whatever sequence holds it."""
    first, second = values
    return first, second


def model_settings(pooler: PoolerSettings) -> RoISettings:
    """The settings the model itself pools with (torchvision's MultiScaleRoIAlign)."""
    return RoISettings(_pair(pooler.output_size), _ratio(pooler.sampling_ratio), bool(pooler.aligned))


# --------------------------------------------------------------------------------------------
# FPN level
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelChoice:
    """The FPN level mapper (FPN paper eq. 1) evaluated for one box, every term kept.

    ``k = clamp(floor(k0 + log2(sqrt(w h) / s0) + eps), k_min, k_max)``, computed in float32 with
    torch exactly as ``torchvision.ops.poolers.LevelMapper`` does.
    """

    box: tuple[float, float, float, float]  # network pixels
    width: float
    height: float
    area: float
    sqrt_area: float
    canonical_scale: int  # s0 = 224
    canonical_level: int  # k0 = 4
    eps: float
    log2_ratio: float  # log2(sqrt_area / s0)
    k_unclamped: float  # k0 + log2_ratio + eps (before the floor)
    k_floor: int  # floor(k_unclamped)
    k_min: int
    k_max: int
    level: int  # clamped k
    featmap: str  # name of the FPN output pooled from
    spatial_scale: float  # 2**-level
    feature_size: tuple[int, int]  # (H, W) of that level

    @property
    def stride(self) -> float:
        return 1.0 / self.spatial_scale

    @property
    def clamped(self) -> bool:
        return self.level != self.k_floor

    def formula_lines(self) -> list[str]:
        """The level mapper with this box's numbers filled in, one step per line."""
        s0, k0 = self.canonical_scale, self.canonical_level
        clamp_note = (
            f"clamped to [{self.k_min}, {self.k_max}]: k = {self.level}"
            if self.clamped
            else f"within [{self.k_min}, {self.k_max}]: k = {self.level}"
        )
        h, w = self.feature_size
        return [
            f"w = {_fmt(self.width)}, h = {_fmt(self.height)} (network pixels)",
            f"sqrt(w h) = sqrt({_fmt(self.area)}) = {_fmt(self.sqrt_area)}",
            f"k = floor(k0 + log2(sqrt(w h) / s0) + eps), k0 = {k0}, s0 = {s0}, eps = {self.eps:g}",
            f"  = floor({k0} + log2({_fmt(self.sqrt_area)} / {s0}) + {self.eps:g})",
            f"  = floor({k0} + ({_fmt(self.log2_ratio)}) + {self.eps:g})",
            f"  = floor({_fmt(self.k_unclamped)}) = {self.k_floor}",
            clamp_note,
            f"level P{self.level}: feature map '{self.featmap}', stride {_fmt(self.stride)} "
            f"(spatial scale 1/{_fmt(self.stride)}), {h} x {w} cells",
        ]


def level_for_box(box_network: np.ndarray | list[float], pooler: PoolerSettings, trace: MaskRCNNTrace) -> LevelChoice:
    """Evaluate the pooler's level mapper for one box given in network pixels."""
    box = torch.as_tensor(np.asarray(box_network, dtype=np.float32).reshape(1, 4))
    area = box_area(box)  # float32, as torchvision
    s = torch.sqrt(area)
    log2_ratio = torch.log2(s / pooler.canonical_scale)
    raw = pooler.canonical_level + log2_ratio + torch.tensor(pooler.eps, dtype=s.dtype)
    k_floor = int(torch.floor(raw))
    level = min(max(k_floor, pooler.k_min), pooler.k_max)
    index = pooler.level_index(level)
    name = pooler.featmap_names[index]
    feat = trace.features[name]
    b = box[0].tolist()
    return LevelChoice(
        box=(b[0], b[1], b[2], b[3]),
        width=float(box[0, 2] - box[0, 0]),
        height=float(box[0, 3] - box[0, 1]),
        area=float(area[0]),
        sqrt_area=float(s[0]),
        canonical_scale=int(pooler.canonical_scale),
        canonical_level=int(pooler.canonical_level),
        eps=float(pooler.eps),
        log2_ratio=float(log2_ratio[0]),
        k_unclamped=float(raw[0]),
        k_floor=k_floor,
        k_min=int(pooler.k_min),
        k_max=int(pooler.k_max),
        level=level,
        featmap=name,
        spatial_scale=float(pooler.scales[index]),
        feature_size=(int(feat.shape[-2]), int(feat.shape[-1])),
    )


def levels_table(trace: MaskRCNNTrace, pooler: PoolerSettings) -> list[dict]:
    """One row per pooled FPN level: k, feature name, stride and size (for the level panel)."""
    rows = []
    for i, name in enumerate(pooler.featmap_names):
        feat = trace.features[name]
        rows.append(
            {
                "level": pooler.k_min + i,
                "featmap": name,
                "stride": 1.0 / pooler.scales[i],
                "spatial_scale": pooler.scales[i],
                "size": (int(feat.shape[-2]), int(feat.shape[-1])),
                "channels": int(feat.shape[-3]),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# Per-view helpers
# --------------------------------------------------------------------------------------------


def check_view(view: FeatureView, channels: int) -> FeatureView:
    if isinstance(view, str):
        if view not in REDUCTIONS:
            raise ValueError(f"feature view must be a channel index or one of {REDUCTIONS}, got {view!r}")
        return view
    c = int(view)
    if not 0 <= c < channels:
        raise IndexError(f"channel {c} outside 0..{channels - 1}")
    return c


def view_label(view: FeatureView, channels: int) -> str:
    if view == "mean":
        return f"mean over {channels} channels"
    if view == "max":
        return f"max over {channels} channels"
    return f"channel {int(view)} of {channels}"


def _reduce(feature: torch.Tensor, view: FeatureView) -> torch.Tensor:
    """(C, H, W) -> (1, H, W) map of one channel or a reduction over channels."""
    if view == "mean":
        return feature.mean(dim=0, keepdim=True)
    if view == "max":
        return feature.amax(dim=0, keepdim=True)
    c = int(view)
    return feature[c : c + 1]


@dataclass(frozen=True)
class FeatureWindow:
    """A window of one FPN level around the RoI, for the feature-map view.

    ``values[i, j]`` is cell ``(row0 + i, col0 + j)``; in feature coordinates the window covers
    ``[col0 - 0.5, col0 + w - 0.5] x [row0 - 0.5, row0 + h - 0.5]``.
    """

    values: np.ndarray  # float32 (h, w)
    row0: int
    col0: int
    label: str
    feature_size: tuple[int, int]

    @property
    def rect_feature(self) -> tuple[float, float, float, float]:
        h, w = self.values.shape
        return self.col0 - 0.5, self.row0 - 0.5, self.col0 + w - 0.5, self.row0 + h - 0.5

    @property
    def value_range(self) -> tuple[float, float]:
        if self.values.size == 0:
            return 0.0, 1.0
        lo, hi = float(self.values.min()), float(self.values.max())
        return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


@dataclass(frozen=True)
class SampleDetail:
    """One bilinear sample written out: where, which four cells, their values and weights."""

    row: int
    col: int
    iy: int
    ix: int
    view: str
    xy_feature: tuple[float, float]
    xy_network: tuple[float, float]
    xy_image: tuple[float, float]
    xy_used: tuple[float, float]
    valid: bool
    neighbors: tuple[tuple[int, int], ...]  # (row, col) of v(y_low,x_low), v(y_low,x_high), v(y_high,x_low), ...
    neighbor_values: tuple[float, float, float, float]
    fraction: tuple[float, float]  # (lx, ly)
    weights: tuple[float, float, float, float]  # hy*hx, hy*lx, ly*hx, ly*lx
    value: float
    bin_pooled: float
    count: int

    def lines(self) -> list[str]:
        head = (
            f"sample ({self.iy}, {self.ix}) of bin (row {self.row}, col {self.col}), {self.view}: "
            f"feature (x={_fmt(self.xy_feature[0])}, y={_fmt(self.xy_feature[1])}), "
            f"image (x={_fmt(self.xy_image[0])}, y={_fmt(self.xy_image[1])})"
        )
        if not self.valid:
            return [head, "outside the feature map by more than one cell: contributes 0"]
        names = ("v(y_low,x_low)", "v(y_low,x_high)", "v(y_high,x_low)", "v(y_high,x_high)")
        out = [head]
        if self.xy_used != self.xy_feature:
            out.append(f"clamped to the border: interpolated at (x={_fmt(self.xy_used[0])}, y={_fmt(self.xy_used[1])})")
        for n, (r, c), v in zip(names, self.neighbors, self.neighbor_values, strict=True):
            out.append(f"{n} = cell (row {r}, col {c}) = {_fmt(v)}")
        lx, ly = self.fraction
        out.append(f"lx = {_fmt(lx)}, ly = {_fmt(ly)}, hx = {_fmt(1 - lx)}, hy = {_fmt(1 - ly)}")
        w = self.weights
        out.append(f"weights hy*hx = {_fmt(w[0])}, hy*lx = {_fmt(w[1])}, ly*hx = {_fmt(w[2])}, ly*lx = {_fmt(w[3])}")
        terms = " + ".join(f"{_fmt(wk)}*{_fmt(vk)}" for wk, vk in zip(w, self.neighbor_values, strict=True))
        out.append(f"value = {terms} = {_fmt(self.value)}")
        out.append(f"bin value = average of its {self.count} samples = {_fmt(self.bin_pooled)}")
        return out


# --------------------------------------------------------------------------------------------
# The inspection
# --------------------------------------------------------------------------------------------


@dataclass
class RoIInspection:
    """Everything the RoI inspector shows for one detection and one head."""

    det_index: int
    branch: str  # "box" (proposal, box head) or "mask" (refined box, mask head)
    class_name: str
    score: float
    top_classes: list[tuple[str, float]]  # box-head softmax, most likely first
    background_prob: float
    proposal_index: int
    proposal_objectness: float
    proposal_network: np.ndarray  # (4,) float64
    proposal_image: np.ndarray
    refined_network: np.ndarray
    refined_image: np.ndarray
    roi_network: np.ndarray  # the box this head pooled
    roi_image: np.ndarray
    scale: tuple[float, float]  # (sy, sx): network = image * scale
    image_size: tuple[int, int]  # original (h, w)
    network_size: tuple[int, int]
    level: LevelChoice
    trace_level: int  # the level the traced forward pass used (equals level.level)
    settings: RoISettings
    model_settings: RoISettings
    comparison: AlignPoolComparison
    levels: list[dict]
    _reduced: dict = field(default_factory=dict, repr=False)

    # ---- basics ---------------------------------------------------------------------------

    @property
    def align(self) -> RoIAlignExplanation:
        return self.comparison.align

    @property
    def pool(self) -> RoIPoolExplanation:
        return self.comparison.pool

    @property
    def channels(self) -> int:
        return int(self.align.feature.shape[0])

    @property
    def output_size(self) -> tuple[int, int]:
        return self.align.output_size

    @property
    def grid(self) -> tuple[int, int]:
        return self.align.grid

    @property
    def uses_model_settings(self) -> bool:
        return self.settings == self.model_settings

    @property
    def sample_count(self) -> int:
        """out_h * out_w * grid_h * grid_w bilinear samples."""
        oh, ow = self.output_size
        gh, gw = self.grid
        return oh * ow * gh * gw

    @property
    def head_name(self) -> str:
        return "box head" if self.branch == "box" else "mask head"

    @property
    def roi_name(self) -> str:
        return "RPN proposal" if self.branch == "box" else "refined box"

    def network_to_image(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) network (x, y) -> original image coordinates."""
        sy, sx = self.scale
        return np.asarray(xy, dtype=np.float64) / np.array([sx, sy])

    def image_to_network(self, xy: np.ndarray) -> np.ndarray:
        sy, sx = self.scale
        return np.asarray(xy, dtype=np.float64) * np.array([sx, sy])

    def feature_to_image(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) feature (x, y) -> original image coordinates (RoIAlign's offset convention)."""
        a = self.align
        net = (np.asarray(xy, dtype=np.float64) + a.offset) / a.spatial_scale
        return self.network_to_image(net)

    def image_to_feature(self, xy: np.ndarray) -> np.ndarray:
        a = self.align
        return self.image_to_network(xy) * a.spatial_scale - a.offset

    # ---- geometry for drawing -----------------------------------------------------------------

    def bin_edges_feature(self) -> tuple[np.ndarray, np.ndarray]:
        """(ow + 1,) x and (oh + 1,) y of the bin boundaries in feature coordinates."""
        return self.align.bin_edges_x.double().numpy(), self.align.bin_edges_y.double().numpy()

    def grid_segments_feature(self) -> np.ndarray:
        """(L, 4) x1, y1, x2, y2 segments of every bin boundary, feature coordinates."""
        xs, ys = self.bin_edges_feature()
        vertical = [(x, ys[0], x, ys[-1]) for x in xs]
        horizontal = [(xs[0], y, xs[-1], y) for y in ys]
        return np.array(vertical + horizontal, dtype=np.float64).reshape(-1, 4)

    def grid_segments_image(self) -> np.ndarray:
        """The same segments in original image coordinates."""
        seg = self.grid_segments_feature().reshape(-1, 2, 2)
        return self.feature_to_image(seg).reshape(-1, 4)

    def sample_points_feature(self) -> np.ndarray:
        """(out_h * out_w * gh * gw, 2) requested sample points (x, y), row-major over (bin, iy, ix)."""
        return self.align.sample_xy_feature.double().numpy().reshape(-1, 2)

    def sample_points_image(self) -> np.ndarray:
        """The sample points in original image coordinates (same order)."""
        return self.network_to_image(self.align.sample_xy_image.numpy().reshape(-1, 2))

    def sample_valid(self) -> np.ndarray:
        return self.align.valid.numpy().reshape(-1)

    def bin_rect_feature(self, row: int, col: int) -> tuple[float, float, float, float]:
        xs, ys = self.bin_edges_feature()
        return float(xs[col]), float(ys[row]), float(xs[col + 1]), float(ys[row + 1])

    def bin_rect_image(self, row: int, col: int) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.bin_rect_feature(row, col)
        (a, b), (c, d) = self.feature_to_image(np.array([[x1, y1], [x2, y2]]))
        return float(a), float(b), float(c), float(d)

    def cell_rect_feature(self, row: int, col: int) -> tuple[float, float, float, float]:
        return col - 0.5, row - 0.5, col + 0.5, row + 0.5

    def cell_rect_image(self, row: int, col: int) -> tuple[float, float, float, float]:
        (a, b), (c, d) = self.feature_to_image(np.array([[col - 0.5, row - 0.5], [col + 0.5, row + 0.5]]))
        return float(a), float(b), float(c), float(d)

    def pool_rects_feature(self) -> np.ndarray:
        """(out_h * out_w, 4) RoIPool's quantized bins (whole cells), feature coordinates."""
        return self.pool.bin_rects_feature.numpy().reshape(-1, 4)

    def pool_rects_image(self) -> np.ndarray:
        """RoIPool's bins in original image coordinates (RoIPool puts cell c's centre at c / scale)."""
        net = self.pool.bin_rects_image.numpy().reshape(-1, 2, 2)
        return self.network_to_image(net).reshape(-1, 4)

    def pool_roi_rect_image(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.pool.roi_rect_image
        (a, b), (c, d) = self.network_to_image(np.array([[x1, y1], [x2, y2]]))
        return float(a), float(b), float(c), float(d)

    # ---- hit testing -------------------------------------------------------------------------

    def bin_at_feature(self, x: float, y: float) -> tuple[int, int] | None:
        """The output bin containing feature point (x, y), or None outside the RoI."""
        xs, ys = self.bin_edges_feature()
        if not (xs[-1] > xs[0] and ys[-1] > ys[0]):
            return None
        if not (xs[0] <= x <= xs[-1] and ys[0] <= y <= ys[-1]):
            return None
        col = int(np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2))
        row = int(np.clip(np.searchsorted(ys, y, side="right") - 1, 0, len(ys) - 2))
        return row, col

    def sample_near_feature(self, x: float, y: float, radius: float) -> tuple[int, int, int, int] | None:
        """(row, col, iy, ix) of the sample point nearest to (x, y) within ``radius`` feature units."""
        pts = self.sample_points_feature()
        if len(pts) == 0:
            return None
        d2 = (pts[:, 0] - x) ** 2 + (pts[:, 1] - y) ** 2
        k = int(np.argmin(d2))
        if d2[k] > radius * radius:
            return None
        _, ow = self.output_size
        gh, gw = self.grid
        per_bin = gh * gw
        b, s = divmod(k, per_bin)
        row, col = divmod(b, ow)
        iy, ix = divmod(s, gw)
        return row, col, iy, ix

    def locate_feature(self, x: float, y: float, radius: float) -> tuple[int, int, tuple[int, int] | None] | None:
        """What a click at feature point (x, y) picks: a sample point (within ``radius``) and its bin,
        else the bin under the point, else None."""
        hit = self.sample_near_feature(x, y, radius)
        if hit is not None:
            row, col, iy, ix = hit
            return row, col, (iy, ix)
        b = self.bin_at_feature(x, y)
        return None if b is None else (b[0], b[1], None)

    def locate_image(self, x: float, y: float, radius: float) -> tuple[int, int, tuple[int, int] | None] | None:
        """``locate_feature`` for a point and radius given in original image pixels."""
        fx, fy = self.image_to_feature(np.array([x, y]))
        sy, sx = self.scale
        r_feat = radius * max(sx, sy) * self.align.spatial_scale
        return self.locate_feature(float(fx), float(fy), r_feat)

    # ---- values per view ------------------------------------------------------------------------

    def _explanations(self, view: FeatureView) -> tuple[AlignPoolComparison, int]:
        """The comparison holding ``view``'s values and the channel to read in it."""
        view = check_view(view, self.channels)
        if not isinstance(view, str):
            return self.comparison, int(view)
        if view not in self._reduced:
            s = self.settings
            a = self.align
            reduced = _reduce(a.feature, view)
            self._reduced[view] = compare_align_pool(
                reduced, a.box, a.spatial_scale, s.output_size, s.sampling_ratio, s.aligned
            )
        return self._reduced[view], 0

    def view_label(self, view: FeatureView) -> str:
        return view_label(view, self.channels)

    def align_pooled(self, view: FeatureView) -> np.ndarray:
        """(out_h, out_w) RoIAlign output of ``view`` (a reduction view pools the reduced map)."""
        comp, c = self._explanations(view)
        return comp.align.pooled[c].detach().cpu().double().numpy()

    def pool_pooled(self, view: FeatureView) -> np.ndarray:
        """(out_h, out_w) RoIPool output of ``view``."""
        comp, c = self._explanations(view)
        return comp.pool.pooled[c].detach().cpu().double().numpy()

    def difference(self, view: FeatureView) -> np.ndarray:
        """RoIAlign minus RoIPool, (out_h, out_w)."""
        comp, c = self._explanations(view)
        return comp.difference[c].detach().cpu().double().numpy()

    def pool_argmax(self, view: FeatureView) -> np.ndarray:
        """(out_h, out_w, 2) (row, col) of each RoIPool bin's maximum cell; -1 when empty."""
        comp, c = self._explanations(view)
        return comp.pool.argmax_rowcol[c].cpu().numpy()

    def sample_values(self, view: FeatureView) -> np.ndarray:
        """(out_h, out_w, gh, gw) interpolated value of every sample."""
        comp, c = self._explanations(view)
        return comp.align.sample_values[c].detach().cpu().double().numpy()

    def feature_window(self, view: FeatureView, margin: float = 2.0) -> FeatureWindow:
        """Cells of the level around the RoI (its bins, samples and RoIPool cells, plus ``margin``)."""
        view = check_view(view, self.channels)
        a = self.align
        H, W = a.feature_size
        xs, ys = self.bin_edges_feature()
        pr = self.pool_rects_feature()
        pts = self.sample_points_feature()
        x_all = np.concatenate([xs, pr[:, [0, 2]].reshape(-1), pts[:, 0]])
        y_all = np.concatenate([ys, pr[:, [1, 3]].reshape(-1), pts[:, 1]])
        c0 = math.floor(float(x_all.min()) - margin + 0.5)
        c1 = math.ceil(float(x_all.max()) + margin + 0.5)
        r0 = math.floor(float(y_all.min()) - margin + 0.5)
        r1 = math.ceil(float(y_all.max()) + margin + 0.5)
        c0, r0 = min(max(c0, 0), W - 1), min(max(r0, 0), H - 1)
        c1, r1 = max(min(c1, W), c0 + 1), max(min(r1, H), r0 + 1)
        values = _reduce(a.feature, view)[0, r0:r1, c0:c1].detach().cpu().float().numpy()
        return FeatureWindow(values, r0, c0, self.view_label(view), (H, W))

    # ---- written-out explanations ----------------------------------------------------------------

    def worked_example(self, row: int, col: int, view: FeatureView, max_samples: int = MAX_WORKED_SAMPLES) -> str:
        """Bin (row, col) written out like the Mask R-CNN paper's Figure 3 (engine.roialign)."""
        comp, c = self._explanations(view)
        text = comp.align.worked_example(row, col, channel=c, max_samples=max_samples)
        first, _, rest = text.partition("\n")
        # The explanation ran on one map (a channel or a reduction): name it instead of its channel 0.
        first = first.rsplit(", channel ", 1)[0] + f", {self.view_label(view)} of FPN level P{self.level.level}"
        sy, sx = self.scale
        note = (
            f"('image' below = the network input, the original image resized by {_fmt(sx)} x {_fmt(sy)}; "
            "original pixels = network / scale)"
        )
        return "\n".join([first, note, rest])

    def sample_detail(self, row: int, col: int, iy: int, ix: int, view: FeatureView) -> SampleDetail:
        comp, c = self._explanations(view)
        a = comp.align
        gh, gw = a.grid
        oh, ow = a.output_size
        if not (0 <= row < oh and 0 <= col < ow and 0 <= iy < gh and 0 <= ix < gw):
            raise IndexError(f"sample ({row}, {col}, {iy}, {ix}) outside {oh}x{ow} bins of {gh}x{gw} samples")
        neigh = a.neighbors[row, col, iy, ix]
        nvals = a.neighbor_values[c, row, col, iy, ix].detach().cpu().double().tolist()
        xy_net = a.sample_xy_image[row, col, iy, ix].numpy()
        xy_img = self.network_to_image(xy_net)
        xf = a.sample_xy_feature[row, col, iy, ix].tolist()
        used = a.sample_xy_used[row, col, iy, ix].tolist()
        frac = a.fractions[row, col, iy, ix].tolist()
        w = a.weights[row, col, iy, ix].tolist()
        return SampleDetail(
            row=row,
            col=col,
            iy=iy,
            ix=ix,
            view=self.view_label(view),
            xy_feature=(xf[0], xf[1]),
            xy_network=(float(xy_net[0]), float(xy_net[1])),
            xy_image=(float(xy_img[0]), float(xy_img[1])),
            xy_used=(used[0], used[1]),
            valid=bool(a.valid[row, col, iy, ix]),
            neighbors=tuple((int(r), int(cc)) for r, cc in neigh.tolist()),
            neighbor_values=(nvals[0], nvals[1], nvals[2], nvals[3]),
            fraction=(frac[0], frac[1]),
            weights=(w[0], w[1], w[2], w[3]),
            value=float(a.sample_values[c, row, col, iy, ix]),
            bin_pooled=float(a.pooled[c, row, col]),
            count=a.count,
        )

    def pool_bin_lines(self, row: int, col: int, view: FeatureView) -> list[str]:
        """RoIPool's quantized bin (row, col): the whole cells it covers and where its max is."""
        comp, c = self._explanations(view)
        p = comp.pool.bin(row, col)
        c0, r0, c1, r1 = p.cells
        align_v = float(comp.align.pooled[c, row, col])
        if p.empty:
            cells = "no cells (empty bin)"
            value = "0 (empty bin)"
        else:
            ar, ac = (int(v) for v in p.argmax[c])
            cells = f"rows {r0}..{r1 - 1}, cols {c0}..{c1 - 1} ({(r1 - r0) * (c1 - c0)} cells)"
            value = f"max = {_fmt(float(p.pooled[c]))} at cell (row {ar}, col {ac})"
        sx, sy = self.pool.roi_start
        ex, ey = self.pool.roi_end
        return [
            f"RoIPool bin (row {row}, col {col}), {self.view_label(view)}",
            f"RoI rounded to cells: x {sx}..{ex}, y {sy}..{ey} (round(coordinate * {_fmt(self.pool.spatial_scale)}))",
            f"bin covers {cells}",
            value,
            f"RoIAlign value {_fmt(align_v)}; RoIAlign - RoIPool = {_fmt(align_v - float(p.pooled[c]))}",
        ]


def _branch_box(det: DetectionTrace, branch: str) -> tuple[np.ndarray, int]:
    """The RoI a head pooled (box head: the proposal; mask head: the refined box) and its level."""
    if branch == "box":
        return det.proposal_box, det.box_level
    return det.box_network, det.mask_level


def inspect_roi(
    trace: MaskRCNNTrace,
    det_index: int,
    branch: str = "box",
    output_size: int | tuple[int, int] | None = None,
    sampling_ratio: int | None = None,
    aligned: bool | None = None,
    class_names: list[str] | None = None,
) -> RoIInspection:
    """Inspect detection ``det_index`` of ``trace`` for the ``'box'`` or ``'mask'`` head.

    ``output_size``, ``sampling_ratio`` and ``aligned`` default to the model's own pooler settings
    (7x7 / 14x14, 2, False for torchvision's Mask R-CNN); other values re-run RoIAlign on the
    same RoI and level with them. The level is always the model's (it does not depend on them).
    """
    if not isinstance(trace, MaskRCNNTrace):
        raise InspectionError(f"The RoI inspector needs a Mask R-CNN trace, got {type(trace).__name__}.")
    if branch not in BRANCHES:
        raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
    if not 0 <= det_index < len(trace.detections):
        raise InspectionError(f"Detection {det_index} is not in the trace ({len(trace.detections)} detections).")
    det = trace.detections[det_index]
    pooler = trace.box_pooler if branch == "box" else trace.mask_pooler
    roi, trace_level = _branch_box(det, branch)
    defaults = model_settings(pooler)
    if output_size is None:
        out = defaults.output_size
    elif isinstance(output_size, int):
        out = (int(output_size), int(output_size))
    else:
        out = (int(output_size[0]), int(output_size[1]))
    settings = RoISettings(
        out,
        defaults.sampling_ratio if sampling_ratio is None else _ratio(sampling_ratio),
        defaults.aligned if aligned is None else bool(aligned),
    )
    level = level_for_box(roi, pooler, trace)
    feature = trace.feature(level.featmap)
    with torch.no_grad():
        comparison = compare_align_pool(
            feature,
            [float(v) for v in roi],
            level.spatial_scale,
            settings.output_size,
            settings.sampling_ratio,
            settings.aligned,
        )
    names = class_names if class_names is not None else [f"class {i}" for i in range(len(det.class_probs))]
    top = [(names[i] if i < len(names) else f"class {i}", p) for i, p in det.top_classes(5)]
    sy, sx = trace.scale
    inv = np.array([1 / sx, 1 / sy, 1 / sx, 1 / sy])
    prop = np.asarray(det.proposal_box, np.float64)
    refined = np.asarray(det.box_network, np.float64)
    roi64 = np.asarray(roi, np.float64)
    return RoIInspection(
        det_index=det_index,
        branch=branch,
        class_name=names[det.label] if 0 <= det.label < len(names) else f"class {det.label}",
        score=float(det.score),
        top_classes=top,
        background_prob=float(det.background_prob),
        proposal_index=int(det.proposal_index),
        proposal_objectness=float(det.proposal_objectness),
        proposal_network=prop,
        proposal_image=prop * inv,
        refined_network=refined,
        refined_image=refined * inv,
        roi_network=roi64,
        roi_image=roi64 * inv,
        scale=(float(sy), float(sx)),
        image_size=_pair(trace.original_size),
        network_size=_pair(trace.network_size),
        level=level,
        trace_level=int(trace_level),
        settings=settings,
        model_settings=defaults,
        comparison=comparison,
        levels=levels_table(trace, pooler),
    )
