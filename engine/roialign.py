"""Explain RoIAlign and RoIPool for one box: every sample point, neighbour cell, weight and value.

``explain_roi_align`` reproduces the arithmetic of ``torchvision.ops.roi_align`` (CPU kernel) and
keeps the intermediate geometry; ``explain_roi_pool`` does the same for ``torchvision.ops.roi_pool``
(quantized bins, max pooling). The RoI inspector and the Mask R-CNN trace both use them.

Coordinate conventions (shared by both explanations)
----------------------------------------------------
*Feature coordinates* are the continuous coordinates the kernels sample in: the value of feature
cell ``(row r, col c)`` sits exactly at the feature point ``(x=c, y=r)``; the cell is drawn as the
square ``[c - 0.5, c + 0.5] x [r - 0.5, r + 0.5]``.

*Image coordinates* are those of the box. RoIAlign maps an image point to a feature point with
``x_feat = x_img * spatial_scale - offset`` where ``offset = 0.5`` when ``aligned`` and ``0``
otherwise (the offset is in feature-cell units), so the inverse used here is
``x_img = (x_feat + offset) / spatial_scale``. Hence with ``aligned=True`` the centre of cell
``(r, c)`` is at image point ``((c + 0.5) / s, (r + 0.5) / s)`` (pixel-centre model), and with
``aligned=False`` (Mask R-CNN's torchvision default) at ``(c / s, r / s)``: the half-cell shift
that ``aligned`` corrects. RoIPool quantizes with ``round(x_img * s)`` and therefore uses the
``offset = 0`` convention.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from engine.errors import MaskScopeError

__all__ = [
    "AlignPoolComparison",
    "BinExplanation",
    "RoIAlignExplanation",
    "RoIPoolBin",
    "RoIPoolExplanation",
    "SamplePoint",
    "compare_align_pool",
    "explain_roi_align",
    "explain_roi_pool",
]

# Per-sample arrays hold channels x samples values; refuse sizes that would exhaust memory
# (only reachable with adaptive sampling on absurdly large boxes).
MAX_SAMPLE_VALUES = 1 << 25

_MAX_FEATURE_COORD = 1e9

Box = tuple[float, float, float, float]


def _fmt(value: float) -> str:
    return f"{value + 0.0:.6g}"  # + 0.0 turns -0.0 into 0.0


def _fmt_factor(value: float) -> str:
    text = _fmt(value)
    return f"({text})" if text.startswith("-") else text


# --------------------------------------------------------------------------------------------
# Shared argument handling
# --------------------------------------------------------------------------------------------


def _check_inputs(
    feature: torch.Tensor, box: Sequence[float] | torch.Tensor, spatial_scale: float, output_size
) -> tuple[torch.Tensor, Box, tuple[int, int]]:
    if not isinstance(feature, torch.Tensor) or feature.dim() != 3:
        shape = tuple(feature.shape) if isinstance(feature, torch.Tensor) else type(feature).__name__
        raise ValueError(f"feature must be a (C, H, W) tensor, got {shape}")
    if not feature.is_floating_point():
        raise ValueError(f"feature must be a floating point tensor, got {feature.dtype}")
    if feature.shape[1] < 1 or feature.shape[2] < 1:
        raise ValueError(f"feature map is empty: shape {tuple(feature.shape)}")
    if feature.dtype not in (torch.float32, torch.float64):
        # The kernel's exact arithmetic is defined for float/double; half types are widened.
        feature = feature.float()
    coords = box.detach().flatten().tolist() if isinstance(box, torch.Tensor) else list(box)
    if len(coords) != 4:
        raise ValueError(f"box must be (x1, y1, x2, y2), got {len(coords)} values")
    if not all(math.isfinite(float(v)) for v in coords):
        raise ValueError(f"box coordinates must be finite, got {coords}")
    if not (math.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f"spatial_scale must be a positive finite number, got {spatial_scale}")
    if max(abs(float(v)) for v in coords) * spatial_scale > _MAX_FEATURE_COORD:
        # The kernels convert these to int; far beyond any feature map they overflow.
        raise ValueError(f"box {coords} lies more than {_MAX_FEATURE_COORD:g} feature cells from the map")
    if isinstance(output_size, int):
        out = (output_size, output_size)
    else:
        sizes = tuple(int(v) for v in output_size)
        if len(sizes) != 2:
            raise ValueError(f"output_size must be an int or (out_h, out_w), got {output_size}")
        out = (sizes[0], sizes[1])
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"output_size must be positive, got {out}")
    return feature.detach(), (float(coords[0]), float(coords[1]), float(coords[2]), float(coords[3])), out


# --------------------------------------------------------------------------------------------
# RoIAlign
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplePoint:
    """One bilinear sample of a RoIAlign bin.

    ``xy_feature``/``xy_image`` is where the sample was asked for; ``xy_used`` is the point
    actually interpolated after the kernel's border clamping. ``neighbors`` are the four cells
    ``(row, col)`` in the order (y_low, x_low), (y_low, x_high), (y_high, x_low), (y_high, x_high)
    with ``weights`` hy*hx, hy*lx, ly*hx, ly*lx. An invalid sample (outside
    ``[-1, W] x [-1, H]``) contributes 0: its neighbours are (-1, -1), weights and values 0.
    """

    grid_index: tuple[int, int]  # (iy, ix) inside the bin's sampling grid
    xy_feature: tuple[float, float]
    xy_image: tuple[float, float]
    xy_used: tuple[float, float]
    fraction: tuple[float, float]  # (lx, ly): offsets of xy_used from the low neighbour
    valid: bool
    neighbors: tuple[tuple[int, int], ...]
    weights: tuple[float, float, float, float]
    neighbor_values: torch.Tensor  # (4, C)
    value: torch.Tensor  # (C,) interpolated value = sum(weights * neighbor_values)


@dataclass(frozen=True)
class BinExplanation:
    """One output bin of RoIAlign: its rectangle, its samples and its pooled value."""

    row: int
    col: int
    rect_feature: Box  # x1, y1, x2, y2 in feature coordinates
    rect_image: Box  # the same rectangle in image coordinates
    samples: list[SamplePoint]  # row-major over the (grid_h, grid_w) sampling grid
    count: int  # divisor of the average: max(grid_h * grid_w, 1)
    pooled: torch.Tensor  # (C,)


@dataclass
class RoIAlignExplanation:
    """Geometry and values of ``torchvision.ops.roi_align`` for one box on one feature map.

    Array shapes use ``oh, ow`` = output size and ``gh, gw`` = ``grid``. Geometry arrays are CPU
    tensors (feature coordinates in the feature's dtype, exactly as the kernel computes them;
    image coordinates in float64); value arrays are on the feature's device.
    """

    pooled: torch.Tensor  # (C, oh, ow), equals torchvision.ops.roi_align
    box: Box  # x1, y1, x2, y2 in image coordinates, as given
    spatial_scale: float
    output_size: tuple[int, int]  # (oh, ow)
    sampling_ratio: int  # as requested; <= 0 means adaptive
    grid: tuple[int, int]  # (gh, gw) samples per bin actually used
    count: int  # divisor of each bin's average
    aligned: bool
    offset: float  # 0.5 when aligned, else 0 (feature-cell units)
    feature_size: tuple[int, int]  # (H, W)
    roi_start: tuple[float, float]  # (x, y) in feature coordinates
    roi_size: tuple[float, float]  # (w, h) in feature units, after the min-1 clamp when not aligned
    bin_size: tuple[float, float]  # (w, h) in feature units
    bin_edges_x: torch.Tensor  # (ow + 1,) feature x of the bin boundaries
    bin_edges_y: torch.Tensor  # (oh + 1,)
    sample_xy_feature: torch.Tensor  # (oh, ow, gh, gw, 2) requested sample points (x, y)
    sample_xy_image: torch.Tensor  # (oh, ow, gh, gw, 2) float64
    sample_xy_used: torch.Tensor  # (oh, ow, gh, gw, 2) after border clamping
    fractions: torch.Tensor  # (oh, ow, gh, gw, 2) (lx, ly)
    valid: torch.Tensor  # (oh, ow, gh, gw) bool
    neighbors: torch.Tensor  # (oh, ow, gh, gw, 4, 2) int64 (row, col); -1 when invalid
    weights: torch.Tensor  # (oh, ow, gh, gw, 4); 0 when invalid
    sample_values: torch.Tensor  # (C, oh, ow, gh, gw)
    feature: torch.Tensor = field(repr=False)  # (C, H, W) the explained map (not copied)

    # ---- coordinate helpers ---------------------------------------------------------------

    def feature_to_image(self, x: float, y: float) -> tuple[float, float]:
        """Image point of feature point (x, y): ``(x + offset) / spatial_scale``."""
        return (x + self.offset) / self.spatial_scale, (y + self.offset) / self.spatial_scale

    def image_to_feature(self, x: float, y: float) -> tuple[float, float]:
        """Feature point of image point (x, y): ``x * spatial_scale - offset``."""
        return x * self.spatial_scale - self.offset, y * self.spatial_scale - self.offset

    def cell_rect_image(self, row: int, col: int) -> Box:
        """Image rectangle drawn for feature cell (row, col): its centre is the sampled point."""
        x1, y1 = self.feature_to_image(col - 0.5, row - 0.5)
        x2, y2 = self.feature_to_image(col + 0.5, row + 0.5)
        return x1, y1, x2, y2

    # ---- values ---------------------------------------------------------------------------

    @property
    def neighbor_values(self) -> torch.Tensor:
        """(C, oh, ow, gh, gw, 4) values of the four neighbours of every sample (0 when invalid)."""
        return _gather_neighbors(self.feature, self.neighbors)

    # ---- per-bin view -----------------------------------------------------------------------

    def bin(self, row: int, col: int) -> BinExplanation:
        """The explanation of output bin (row, col), built from the arrays on demand."""
        oh, ow = self.output_size
        if not (0 <= row < oh and 0 <= col < ow):
            raise IndexError(f"bin ({row}, {col}) outside output size {self.output_size}")
        x1, x2 = float(self.bin_edges_x[col]), float(self.bin_edges_x[col + 1])
        y1, y2 = float(self.bin_edges_y[row]), float(self.bin_edges_y[row + 1])
        ix1, iy1 = self.feature_to_image(x1, y1)
        ix2, iy2 = self.feature_to_image(x2, y2)
        gh, gw = self.grid
        neigh = self.neighbors[row, col]
        nvals = _gather_neighbors(self.feature, neigh).cpu()  # (C, gh, gw, 4)
        values = self.sample_values[:, row, col].cpu()
        samples = []
        for iy in range(gh):
            for ix in range(gw):
                xy = self.sample_xy_feature[row, col, iy, ix].tolist()
                xy_img = self.sample_xy_image[row, col, iy, ix].tolist()
                used = self.sample_xy_used[row, col, iy, ix].tolist()
                frac = self.fractions[row, col, iy, ix].tolist()
                w = self.weights[row, col, iy, ix].tolist()
                samples.append(
                    SamplePoint(
                        grid_index=(iy, ix),
                        xy_feature=(xy[0], xy[1]),
                        xy_image=(xy_img[0], xy_img[1]),
                        xy_used=(used[0], used[1]),
                        fraction=(frac[0], frac[1]),
                        valid=bool(self.valid[row, col, iy, ix]),
                        neighbors=tuple((int(r), int(c)) for r, c in neigh[iy, ix].tolist()),
                        weights=(w[0], w[1], w[2], w[3]),
                        neighbor_values=nvals[:, iy, ix].T.contiguous(),
                        value=values[:, iy, ix].clone(),
                    )
                )
        return BinExplanation(
            row=row,
            col=col,
            rect_feature=(x1, y1, x2, y2),
            rect_image=(ix1, iy1, ix2, iy2),
            samples=samples,
            count=self.count,
            pooled=self.pooled[:, row, col].cpu().clone(),
        )

    def iter_bins(self) -> Iterator[BinExplanation]:
        """All bins, row-major."""
        oh, ow = self.output_size
        for row in range(oh):
            for col in range(ow):
                yield self.bin(row, col)

    def worked_example(self, row: int, col: int, channel: int = 0, max_samples: int = 16) -> str:
        """Write out bin (row, col) of one channel the way the Mask R-CNN paper's Figure 3 does.

        Lists each sample point, its four neighbour cells and values, the fractional offsets,
        the bilinear weights, the interpolated value, and the final average. At most
        ``max_samples`` samples are written out (the average always uses all of them).
        """
        channels = self.feature.shape[0]
        if not 0 <= channel < channels:
            raise IndexError(f"channel {channel} outside 0..{channels - 1}")
        b = self.bin(row, col)
        gh, gw = self.grid
        sx = self.spatial_scale
        lines = [
            f"RoIAlign bin (row {row}, col {col}) of {self.output_size[0]}x{self.output_size[1]}, channel {channel}",
            f"box (image) = ({', '.join(_fmt(v) for v in self.box)}), spatial_scale = {_fmt(sx)}, "
            f"aligned = {self.aligned} (feature = image * {_fmt(sx)} - {_fmt(self.offset)})",
            f"RoI in feature coords: start (x={_fmt(self.roi_start[0])}, y={_fmt(self.roi_start[1])}), "
            f"size {_fmt(self.roi_size[0])} x {_fmt(self.roi_size[1])}; "
            f"bin size {_fmt(self.bin_size[0])} x {_fmt(self.bin_size[1])}",
            f"bin rectangle: feature x [{_fmt(b.rect_feature[0])}, {_fmt(b.rect_feature[2])}] "
            f"y [{_fmt(b.rect_feature[1])}, {_fmt(b.rect_feature[3])}]; image x [{_fmt(b.rect_image[0])}, "
            f"{_fmt(b.rect_image[2])}] y [{_fmt(b.rect_image[1])}, {_fmt(b.rect_image[3])}]",
            f"sampling grid {gh} x {gw} "
            f"({'adaptive' if self.sampling_ratio <= 0 else 'sampling_ratio'}), average over {b.count}",
        ]
        H, W = self.feature_size
        terms = []
        for k, s in enumerate(b.samples):
            v = float(s.value[channel])
            terms.append(v)
            if k >= max_samples:
                continue
            iy, ix = s.grid_index
            head = (
                f"sample ({iy}, {ix}) at feature (x={_fmt(s.xy_feature[0])}, y={_fmt(s.xy_feature[1])}) "
                f"= image (x={_fmt(s.xy_image[0])}, y={_fmt(s.xy_image[1])})"
            )
            if not s.valid:
                lines.append(f"{head}: outside [-1, {W}] x [-1, {H}], contributes 0")
                continue
            lines.append(head)
            if s.xy_used != s.xy_feature:
                lines.append(
                    f"  clamped to the border: interpolated at (x={_fmt(s.xy_used[0])}, y={_fmt(s.xy_used[1])})"
                )
            vals = s.neighbor_values[:, channel].tolist()
            names = ("v(y_low,x_low)", "v(y_low,x_high)", "v(y_high,x_low)", "v(y_high,x_high)")
            lines.append(
                "  neighbours: "
                + ", ".join(
                    f"{n} = cell (row {r}, col {c}) = {_fmt(val)}"
                    for n, (r, c), val in zip(names, s.neighbors, vals, strict=True)
                )
            )
            lx, ly = s.fraction
            lines.append(
                f"  fractional offsets: lx = {_fmt(lx)}, ly = {_fmt(ly)}; "
                f"hx = 1 - lx = {_fmt(1 - lx)}, hy = 1 - ly = {_fmt(1 - ly)}"
            )
            w = s.weights
            lines.append(
                f"  weights: hy*hx = {_fmt(w[0])}, hy*lx = {_fmt(w[1])}, ly*hx = {_fmt(w[2])}, ly*lx = {_fmt(w[3])}"
            )
            lines.append(
                "  value = "
                + " + ".join(f"{_fmt(wk)}*{_fmt_factor(vk)}" for wk, vk in zip(w, vals, strict=True))
                + f" = {_fmt(v)}"
            )
        if len(b.samples) > max_samples:
            lines.append(f"... {len(b.samples) - max_samples} more samples not written out")
        pooled = float(b.pooled[channel])
        if terms:
            shown = " + ".join(_fmt_factor(t) for t in terms[:max_samples])
            if len(terms) > max_samples:
                shown += " + ..."
            lines.append(f"average = ({shown}) / {b.count} = {_fmt(pooled)}")
        else:
            lines.append(f"no samples in this bin (empty RoI): pooled value = {_fmt(pooled)}")
        return "\n".join(lines)


def _gather_neighbors(feature: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
    """Values (C, ..., 4) of cells given as (..., 4, 2) (row, col); 0 where row is -1."""
    C, H, W = feature.shape
    rows, cols = neighbors[..., 0], neighbors[..., 1]
    present = rows >= 0
    flat = torch.where(present, rows * W + cols, torch.zeros_like(rows)).to(feature.device)
    values = feature.reshape(C, H * W).index_select(1, flat.reshape(-1)).view(C, *flat.shape)
    return values * present.to(feature.device, feature.dtype)


def _axis_geometry(start: torch.Tensor, bin_size: torch.Tensor, pooled: int, grid: int, size: int, dtype: torch.dtype):
    """Sample coordinates and bilinear terms along one axis, exactly as the kernel computes them.

    RoIAlign's sample grid is separable: a sample's y depends only on (bin row, iy) and its x only
    on (bin col, ix), so each axis is computed once as a (pooled, grid) table.
    """
    # coord = (start + p * bin) + ((i + 0.5) * bin) / grid, each operation rounded in `dtype`
    # like the C++ kernel (no fused multiply-add).
    p = torch.arange(pooled, dtype=dtype)
    i = torch.arange(grid, dtype=dtype) + 0.5
    base = start + p * bin_size
    step = (i * bin_size) / torch.tensor(float(grid), dtype=dtype) if grid > 0 else i
    coord = base[:, None] + step[None, :]  # (pooled, grid)
    valid = (coord >= -1.0) & (coord <= size)
    used = torch.clamp(coord, min=0.0)
    low = used.to(torch.int64)  # truncation == floor for non-negative values
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    used = torch.where(at_edge, low.to(dtype), used)
    frac = used - low.to(dtype)
    rest = 1.0 - frac
    return coord, valid, used, low, high, frac, rest


def explain_roi_align(
    feature: torch.Tensor,
    box: Sequence[float] | torch.Tensor,
    spatial_scale: float,
    output_size: int | tuple[int, int],
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> RoIAlignExplanation:
    """Run RoIAlign on one box and keep every intermediate step.

    Args:
        feature: (C, H, W) float feature map (one image of a batch).
        box: (x1, y1, x2, y2) in image coordinates.
        spatial_scale: feature size / image size (e.g. 1/4 for FPN level P2).
        output_size: ``int`` or ``(out_h, out_w)``.
        sampling_ratio: samples per bin along each axis; ``<= 0`` means adaptive,
            ``ceil(roi_size / output_size)`` per axis, as torchvision does.
        aligned: shift the box by -0.5 feature cells (pixel-centre model) and allow RoIs smaller
            than one cell; ``False`` is torchvision's Mask R-CNN setting.

    Returns:
        A ``RoIAlignExplanation`` whose ``pooled`` equals
        ``torchvision.ops.roi_align(feature[None], [box[None]], output_size, spatial_scale,
        sampling_ratio, aligned)[0]`` to float precision. The kernel's rules, reproduced here:
        a sample with y < -1, y > H, x < -1 or x > W contributes 0; otherwise coordinates <= 0
        are clamped to 0, a low index at or past the last cell is clamped to it (with the point
        moved onto it), and the value is the bilinear blend of the four neighbours; a bin's value
        is the sum of its samples divided by ``max(grid_h * grid_w, 1)``.
    """
    feature, box_t, (oh, ow) = _check_inputs(feature, box, spatial_scale, output_size)
    C, H, W = feature.shape
    dtype = feature.dtype
    scale = torch.tensor(spatial_scale, dtype=dtype)  # the kernel casts the scale to T
    coords = torch.tensor(box_t, dtype=dtype)  # the kernel reads boxes in the input's dtype
    offset = 0.5 if aligned else 0.0
    start_w = coords[0] * scale - offset
    start_h = coords[1] * scale - offset
    roi_w = (coords[2] * scale - offset) - start_w
    roi_h = (coords[3] * scale - offset) - start_h
    if not aligned:
        # Legacy behaviour: RoIs are at least one cell wide, so misaligned boxes never vanish.
        roi_w = torch.clamp(roi_w, min=1.0)
        roi_h = torch.clamp(roi_h, min=1.0)
    bin_h = roi_h / oh
    bin_w = roi_w / ow
    if sampling_ratio > 0:
        grid_h = grid_w = int(sampling_ratio)
    else:
        grid_h = int(math.ceil(float(roi_h / oh)))
        grid_w = int(math.ceil(float(roi_w / ow)))
    # The kernel divides by max(gh*gw, 1) but loops over max(g, 0) samples per axis.
    count = max(grid_h * grid_w, 1)
    gh, gw = max(grid_h, 0), max(grid_w, 0)
    n_samples = oh * ow * gh * gw
    if n_samples * C > MAX_SAMPLE_VALUES:
        raise MaskScopeError(
            f"RoIAlign explanation too large: {oh}x{ow} bins x {gh}x{gw} samples x {C} channels "
            f"for a box spanning {float(roi_w):.0f}x{float(roi_h):.0f} feature cells. "
            "Use a smaller positive sampling_ratio."
        )

    ys, valid_y, used_y, y_low, y_high, ly, hy = _axis_geometry(start_h, bin_h, oh, gh, H, dtype)
    xs, valid_x, used_x, x_low, x_high, lx, hx = _axis_geometry(start_w, bin_w, ow, gw, W, dtype)

    # Broadcast the per-axis tables to (oh, ow, gh, gw).
    def yb(t: torch.Tensor) -> torch.Tensor:
        return t[:, None, :, None].expand(oh, ow, gh, gw)

    def xb(t: torch.Tensor) -> torch.Tensor:
        return t[None, :, None, :].expand(oh, ow, gh, gw)

    valid = yb(valid_y) & xb(valid_x)
    vf = valid.to(dtype)
    weights = torch.stack([yb(hy) * xb(hx), yb(hy) * xb(lx), yb(ly) * xb(hx), yb(ly) * xb(lx)], dim=-1)
    weights = weights * vf.unsqueeze(-1)
    rows = torch.stack([yb(y_low), yb(y_low), yb(y_high), yb(y_high)], dim=-1)
    cols = torch.stack([xb(x_low), xb(x_high), xb(x_low), xb(x_high)], dim=-1)
    neighbors = torch.stack([rows, cols], dim=-1)
    neighbors = torch.where(valid[..., None, None], neighbors, torch.full_like(neighbors, -1))

    sample_xy = torch.stack([xb(xs), yb(ys)], dim=-1)
    sample_used = torch.stack([xb(used_x), yb(used_y)], dim=-1)
    fractions = torch.stack([xb(lx), yb(ly)], dim=-1)

    # Interpolate: w1*v1 + w2*v2 + w3*v3 + w4*v4 in the kernel's order. Values are laid out
    # (samples, C) over a (cells, C) copy of the window the samples touch, so every neighbour
    # gather is a contiguous row copy; invalid samples read cell 0 with weight 0.
    device = feature.device
    n = oh * ow * gh * gw
    values_nc = torch.zeros((n, C), dtype=dtype, device=device)
    if bool(valid.any()):
        r0, r1 = int(y_low[valid_y].min()), int(y_high[valid_y].max()) + 1
        c0, c1 = int(x_low[valid_x].min()), int(x_high[valid_x].max()) + 1
        window = feature[:, r0:r1, c0:c1].permute(1, 2, 0).reshape(-1, C)
        local = torch.where(valid[..., None], (rows - r0) * (c1 - c0) + (cols - c0), 0)
        local = local.reshape(n, 4).to(device)
        w_dev = weights.reshape(n, 4).to(device)
        for k in range(4):
            term = w_dev[:, k : k + 1] * window.index_select(0, local[:, k])
            values_nc = term if k == 0 else values_nc + term
    sample_values = values_nc.T.reshape(C, oh, ow, gh, gw)  # a view, no copy
    pooled = (values_nc.view(oh * ow, gh * gw, C).sum(dim=1) / count).T.reshape(C, oh, ow).contiguous()

    edges_x = start_w + torch.arange(ow + 1, dtype=dtype) * bin_w
    edges_y = start_h + torch.arange(oh + 1, dtype=dtype) * bin_h
    sample_img = (sample_xy.to(torch.float64) + offset) / spatial_scale

    return RoIAlignExplanation(
        pooled=pooled,
        box=box_t,
        spatial_scale=float(spatial_scale),
        output_size=(oh, ow),
        sampling_ratio=int(sampling_ratio),
        grid=(gh, gw),
        count=count,
        aligned=bool(aligned),
        offset=offset,
        feature_size=(H, W),
        roi_start=(float(start_w), float(start_h)),
        roi_size=(float(roi_w), float(roi_h)),
        bin_size=(float(bin_w), float(bin_h)),
        bin_edges_x=edges_x,
        bin_edges_y=edges_y,
        sample_xy_feature=sample_xy,
        sample_xy_image=sample_img,
        sample_xy_used=sample_used,
        fractions=fractions,
        valid=valid,
        neighbors=neighbors,
        weights=weights,
        sample_values=sample_values,
        feature=feature,
    )


# --------------------------------------------------------------------------------------------
# RoIPool
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoIPoolBin:
    """One quantized RoIPool bin: the cells it covers and where its maximum came from."""

    row: int
    col: int
    cells: tuple[int, int, int, int]  # col_start, row_start, col_end, row_end (end exclusive)
    rect_feature: Box
    rect_image: Box
    empty: bool
    pooled: torch.Tensor  # (C,)
    argmax: torch.Tensor  # (C, 2) (row, col) of the max cell; -1 when empty


@dataclass
class RoIPoolExplanation:
    """Quantized geometry and values of ``torchvision.ops.roi_pool`` for one box.

    Bins cover whole cells: bin (i, j) takes rows ``[bin_rows[i, 0], bin_rows[i, 1])`` and
    columns ``[bin_cols[j, 0], bin_cols[j, 1])`` of the feature map; an empty bin pools to 0.
    Cell (r, c) is drawn as ``[c - 0.5, c + 0.5]`` in feature coordinates and ``/ spatial_scale``
    in image coordinates (RoIPool's ``round(x * scale)`` puts cell centres at ``c / scale``).
    """

    pooled: torch.Tensor  # (C, oh, ow), equals torchvision.ops.roi_pool
    argmax: torch.Tensor  # (C, oh, ow) int64 flat index row * W + col of the max; -1 if none
    box: Box
    spatial_scale: float
    output_size: tuple[int, int]
    feature_size: tuple[int, int]
    roi_start: tuple[int, int]  # (x, y) quantized cell indices
    roi_end: tuple[int, int]  # (x, y) inclusive
    roi_size: tuple[int, int]  # (w, h) in cells
    bin_size: tuple[float, float]  # (w, h)
    bin_rows: torch.Tensor  # (oh, 2) int64 [start, end) after clamping to the map
    bin_cols: torch.Tensor  # (ow, 2)
    empty: torch.Tensor  # (oh, ow) bool

    @property
    def argmax_rowcol(self) -> torch.Tensor:
        """(C, oh, ow, 2) int64 (row, col) of each bin's maximum; (-1, -1) when none."""
        W = self.feature_size[1]
        rc = torch.stack([self.argmax // W, self.argmax % W], dim=-1)
        return torch.where(self.argmax[..., None] >= 0, rc, torch.full_like(rc, -1))

    @property
    def bin_rects_feature(self) -> torch.Tensor:
        """(oh, ow, 4) float64 x1, y1, x2, y2 of each bin's cells in feature coordinates."""
        oh, ow = self.output_size
        x1 = self.bin_cols[:, 0].double() - 0.5
        x2 = self.bin_cols[:, 1].double() - 0.5
        y1 = self.bin_rows[:, 0].double() - 0.5
        y2 = self.bin_rows[:, 1].double() - 0.5
        return torch.stack(
            [
                x1[None, :].expand(oh, ow),
                y1[:, None].expand(oh, ow),
                x2[None, :].expand(oh, ow),
                y2[:, None].expand(oh, ow),
            ],
            dim=-1,
        )

    @property
    def bin_rects_image(self) -> torch.Tensor:
        """(oh, ow, 4) float64 bin rectangles in image coordinates."""
        return self.bin_rects_feature / self.spatial_scale

    @property
    def roi_rect_image(self) -> Box:
        """The quantized RoI (whole cells) in image coordinates."""
        s = self.spatial_scale
        (x1, y1), (x2, y2) = self.roi_start, self.roi_end
        return (x1 - 0.5) / s, (y1 - 0.5) / s, (x2 + 0.5) / s, (y2 + 0.5) / s

    def bin(self, row: int, col: int) -> RoIPoolBin:
        oh, ow = self.output_size
        if not (0 <= row < oh and 0 <= col < ow):
            raise IndexError(f"bin ({row}, {col}) outside output size {self.output_size}")
        r0, r1 = (int(v) for v in self.bin_rows[row])
        c0, c1 = (int(v) for v in self.bin_cols[col])
        fx1, fy1, fx2, fy2 = self.bin_rects_feature[row, col].tolist()
        ix1, iy1, ix2, iy2 = self.bin_rects_image[row, col].tolist()
        return RoIPoolBin(
            row=row,
            col=col,
            cells=(c0, r0, c1, r1),
            rect_feature=(fx1, fy1, fx2, fy2),
            rect_image=(ix1, iy1, ix2, iy2),
            empty=bool(self.empty[row, col]),
            pooled=self.pooled[:, row, col].cpu().clone(),
            argmax=self.argmax_rowcol[:, row, col].cpu().clone(),
        )


def _round_half_away(value: torch.Tensor) -> int:
    """C's round(): halves go away from zero (torch.round would round them to even)."""
    v = float(value)  # exact: float32/64 -> Python float
    r = math.trunc(v)
    if abs(v - r) >= 0.5:
        r += 1 if v > 0 else -1
    return int(r)


def _window_table(ranges: torch.Tensor, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded index table (bins, L) of each bin's [start, end) cells and the mask of real entries."""
    length = max(int((ranges[:, 1] - ranges[:, 0]).max()), 1)
    idx = ranges[:, :1] + torch.arange(length)[None, :]
    mask = idx < ranges[:, 1:]
    return idx.clamp(0, size - 1).to(device), mask.to(device)


def _pool_bins(
    feature: torch.Tensor, bin_rows: torch.Tensor, bin_cols: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and flat argmax of every (row range x col range) rectangle of ``feature`` (C, H, W).

    Separable: first the max over each bin's columns for every row, then over each bin's rows,
    each as one padded gather + one reduction. ``max`` returns the first maximum, and taking the
    smallest row, then that row's first column, is the kernel's row-major first maximum.
    """
    C, H, W = feature.shape
    dev = feature.device
    r_lo = int(bin_rows[:, 0].min())
    r_hi = max(int(bin_rows[:, 1].max()), r_lo + 1)
    col_idx, col_mask = _window_table(bin_cols, W, dev)  # (ow, Lw)
    row_idx, row_mask = _window_table(bin_rows - r_lo, r_hi - r_lo, dev)  # (oh, Lh)
    ow, lw = col_idx.shape
    oh, lh = row_idx.shape
    band = feature[:, r_lo:r_hi, :]  # rows no bin reads are skipped
    h = band.shape[1]
    neg_inf = torch.tensor(-math.inf, dtype=feature.dtype, device=dev)
    cols = band.index_select(2, col_idx.reshape(-1)).view(C, h, ow, lw)
    col_max, col_arg = torch.where(col_mask, cols, neg_inf).max(dim=3)  # (C, h, ow)
    col_arg = col_idx.gather(1, col_arg.permute(2, 0, 1).reshape(ow, -1)).view(ow, C, h).permute(1, 2, 0)
    rows = col_max.index_select(1, row_idx.reshape(-1)).view(C, oh, lh, ow)
    best, row_arg = torch.where(row_mask[None, :, :, None], rows, neg_inf).max(dim=2)  # (C, oh, ow)
    local_row = row_idx.gather(1, row_arg.permute(1, 0, 2).reshape(oh, -1)).view(oh, C, ow).permute(1, 0, 2)
    best_col = col_arg.gather(1, local_row)
    return best, (local_row + r_lo) * W + best_col


def explain_roi_pool(
    feature: torch.Tensor,
    box: Sequence[float] | torch.Tensor,
    spatial_scale: float,
    output_size: int | tuple[int, int],
) -> RoIPoolExplanation:
    """Run RoIPool (Fast R-CNN's quantized max pooling) on one box and keep its bins.

    Reproduces ``torchvision.ops.roi_pool`` exactly: the box is rounded to whole cells
    (``round(x * spatial_scale)``, halves away from zero), the RoI is at least one cell, bin
    ``p`` spans cells ``floor(p * bin)`` to ``ceil((p + 1) * bin)`` from the RoI start, clamped
    to the map; each bin takes the max of its cells (the first one in row-major order on ties),
    and an empty bin gives 0. Features are assumed finite (NaN handling is not reproduced).
    """
    feature, box_t, (oh, ow) = _check_inputs(feature, box, spatial_scale, output_size)
    C, H, W = feature.shape
    dtype = feature.dtype
    scale = torch.tensor(spatial_scale, dtype=dtype)
    coords = torch.tensor(box_t, dtype=dtype)
    start_w, start_h, end_w, end_h = (_round_half_away(coords[k] * scale) for k in range(4))
    roi_w = max(end_w - start_w + 1, 1)
    roi_h = max(end_h - start_h + 1, 1)
    bin_h = torch.tensor(float(roi_h), dtype=dtype) / oh
    bin_w = torch.tensor(float(roi_w), dtype=dtype) / ow

    def ranges(bin_size: torch.Tensor, pooled: int, start: int, size: int) -> torch.Tensor:
        p = torch.arange(pooled, dtype=dtype)
        lo = torch.floor(p * bin_size).to(torch.int64) + start
        hi = torch.ceil((p + 1) * bin_size).to(torch.int64) + start
        return torch.stack([lo.clamp(0, size), hi.clamp(0, size)], dim=-1)

    bin_rows = ranges(bin_h, oh, start_h, H)
    bin_cols = ranges(bin_w, ow, start_w, W)
    row_empty = bin_rows[:, 1] <= bin_rows[:, 0]
    col_empty = bin_cols[:, 1] <= bin_cols[:, 0]
    empty = row_empty[:, None] | col_empty[None, :]

    pooled = torch.zeros((C, oh, ow), dtype=dtype, device=feature.device)
    argmax = torch.full((C, oh, ow), -1, dtype=torch.int64, device=feature.device)
    if not bool(empty.all()):
        # Bound the padded gathers' memory by pooling a few channels at a time.
        per_channel = H * ow * max(int((bin_cols[:, 1] - bin_cols[:, 0]).max()), 1)
        step = max(1, MAX_SAMPLE_VALUES // per_channel)
        for c0 in range(0, C, step):
            pooled[c0 : c0 + step], argmax[c0 : c0 + step] = _pool_bins(feature[c0 : c0 + step], bin_rows, bin_cols)
        # The kernel starts from -FLT_MAX and keeps it (argmax -1) when no cell beats it, and an
        # empty bin is 0.
        lowest = torch.finfo(torch.float32).min
        not_beaten = ~(pooled > lowest)
        pooled = torch.where(not_beaten, lowest, pooled)
        argmax = torch.where(not_beaten, -1, argmax)
        empty_dev = empty.to(feature.device)[None]
        pooled = torch.where(empty_dev, 0.0, pooled)
        argmax = torch.where(empty_dev, -1, argmax)

    return RoIPoolExplanation(
        pooled=pooled,
        argmax=argmax,
        box=box_t,
        spatial_scale=float(spatial_scale),
        output_size=(oh, ow),
        feature_size=(H, W),
        roi_start=(start_w, start_h),
        roi_end=(end_w, end_h),
        roi_size=(roi_w, roi_h),
        bin_size=(float(bin_w), float(bin_h)),
        bin_rows=bin_rows,
        bin_cols=bin_cols,
        empty=empty,
    )


# --------------------------------------------------------------------------------------------
# Side by side (the paper's Table 2 comparison)
# --------------------------------------------------------------------------------------------


@dataclass
class AlignPoolComparison:
    """RoIAlign and RoIPool of the same box, and how far apart they are."""

    align: RoIAlignExplanation
    pool: RoIPoolExplanation
    difference: torch.Tensor  # (C, oh, ow) align.pooled - pool.pooled

    @property
    def mean_abs_difference(self) -> float:
        return float(self.difference.abs().mean()) if self.difference.numel() else 0.0


def compare_align_pool(
    feature: torch.Tensor,
    box: Sequence[float] | torch.Tensor,
    spatial_scale: float,
    output_size: int | tuple[int, int],
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> AlignPoolComparison:
    """Explain RoIAlign and RoIPool for one box and return both with their difference map."""
    align = explain_roi_align(feature, box, spatial_scale, output_size, sampling_ratio, aligned)
    pool = explain_roi_pool(feature, box, spatial_scale, output_size)
    return AlignPoolComparison(align=align, pool=pool, difference=align.pooled - pool.pooled)
