"""engine.roialign against torchvision's roi_align / roi_pool, plus the explanation's own invariants."""

from __future__ import annotations

import math
import re
import time

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align, roi_pool

from engine.errors import MaskScopeError
from engine.roialign import (
    compare_align_pool,
    explain_roi_align,
    explain_roi_pool,
)

SCALES = (1.0, 0.5, 0.25, 1 / 32)
OUTPUT_SIZES = ((1, 1), (2, 3), (7, 7), (14, 14))
SAMPLING = (-1, 0, 1, 2, 3)
BOX_KINDS = ("inside", "border", "outside", "degenerate", "reversed", "tiny", "huge", "snapped")


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _random_box(gen: torch.Generator, kind: str, img_w: float, img_h: float, scale: float) -> torch.Tensor:
    """A float32 (4,) box of the given kind for an image of img_w x img_h pixels."""
    if kind == "inside":
        x = sorted(_uniform(gen, 0, img_w) for _ in range(2))
        y = sorted(_uniform(gen, 0, img_h) for _ in range(2))
        b = [x[0], y[0], x[1], y[1]]
    elif kind == "border":
        x = sorted(_uniform(gen, -0.4 * img_w, 1.4 * img_w) for _ in range(2))
        y = sorted(_uniform(gen, -0.4 * img_h, 1.4 * img_h) for _ in range(2))
        b = [x[0], y[0], x[1], y[1]]
    elif kind == "outside":
        x0 = _uniform(gen, img_w + 2 / scale, 2 * img_w + 4 / scale)
        if bool(torch.rand((), generator=gen) < 0.5):
            x0 = -x0  # to the left instead of the right
        w = _uniform(gen, 0.5, img_w)
        y0 = _uniform(gen, -img_h, 2 * img_h)
        b = [x0, y0, x0 + w, y0 + _uniform(gen, 0.5, img_h)]
    elif kind == "degenerate":
        x = _uniform(gen, -0.1 * img_w, 1.1 * img_w)
        y = _uniform(gen, 0, img_h)
        b = [x, y, x, y + _uniform(gen, 0, img_h) * float(torch.rand((), generator=gen) < 0.5)]
    elif kind == "reversed":
        x = sorted(_uniform(gen, 0, img_w) for _ in range(2))
        y = sorted(_uniform(gen, 0, img_h) for _ in range(2))
        b = [x[1], y[1], x[0], y[0]]
    elif kind == "tiny":
        x = _uniform(gen, 0, img_w)
        y = _uniform(gen, 0, img_h)
        b = [x, y, x + _uniform(gen, 0, 0.3 / scale), y + _uniform(gen, 0, 0.3 / scale)]
    elif kind == "huge":
        f = _uniform(gen, 2, 8)
        b = [-f * img_w * 0.3, -f * img_h * 0.2, f * img_w, f * img_h]
    else:  # "snapped": corners on half-cell positions, to hit the kernel's boundary cases exactly
        b = []
        for size in (img_w, img_h, img_w, img_h):
            cells = size * scale
            k = int(torch.randint(-4, int(2 * cells) + 5, (), generator=gen))
            b.append(k * 0.5 / scale)
        b = [min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])]
    return torch.tensor(b, dtype=torch.float32)


def _cases(n: int, seed: int):
    """Random (feature, box, scale, output size, sampling ratio, aligned) combinations."""
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        C = int(torch.randint(1, 9, (), generator=gen))
        H = int(torch.randint(1, 41, (), generator=gen))
        W = int(torch.randint(1, 41, (), generator=gen))
        scale = SCALES[i % len(SCALES)]
        out = OUTPUT_SIZES[(i // len(SCALES)) % len(OUTPUT_SIZES)]
        kind = BOX_KINDS[i % len(BOX_KINDS)]
        sampling = SAMPLING[int(torch.randint(0, len(SAMPLING), (), generator=gen))]
        aligned = bool(torch.rand((), generator=gen) < 0.5)
        dtype = torch.float64 if i % 17 == 0 else torch.float32
        feature = torch.randn(C, H, W, generator=gen, dtype=dtype)
        box = _random_box(gen, kind, W / scale, H / scale, scale).to(dtype)
        yield feature, box, scale, out, sampling, aligned, kind


def test_roi_align_matches_torchvision_random_sweep() -> None:
    seen_kinds, seen_valid_mix = set(), 0
    for feature, box, scale, out, sampling, aligned, kind in _cases(480, seed=0):
        ours = explain_roi_align(feature, box, scale, out, sampling, aligned)
        ref = roi_align(feature[None], [box[None]], out, scale, sampling, aligned)[0]
        assert ours.pooled.shape == ref.shape
        torch.testing.assert_close(
            ours.pooled,
            ref,
            atol=1e-5,
            rtol=1e-5,
            msg=lambda m, b=box, s=scale, o=out, r=sampling, a=aligned: (
                f"{m}\nbox={b.tolist()} scale={s} out={o} ratio={r} aligned={a}"
            ),
        )
        seen_kinds.add(kind)
        if ours.valid.any() and not ours.valid.all():
            seen_valid_mix += 1
    assert seen_kinds == set(BOX_KINDS)
    assert seen_valid_mix > 20  # the sweep really exercised samples outside the map


def test_roi_pool_matches_torchvision_exactly_random_sweep() -> None:
    for feature, box, scale, out, _sampling, _aligned, _kind in _cases(480, seed=1):
        ours = explain_roi_pool(feature, box, scale, out)
        ref = roi_pool(feature[None], [box[None]], out, scale)[0]
        assert torch.equal(ours.pooled, ref), f"box={box.tolist()} scale={scale} out={out}"
        rois = torch.cat([torch.zeros(1, 1, dtype=box.dtype), box[None]], dim=1)
        _, ref_arg = torch.ops.torchvision.roi_pool(feature[None], rois, scale, out[0], out[1])
        assert torch.equal(ours.argmax, ref_arg[0].long())


def test_roi_pool_argmax_ties_take_first_cell_like_torchvision() -> None:
    gen = torch.Generator().manual_seed(5)
    feature = torch.randint(0, 3, (3, 12, 15), generator=gen).float()  # many equal maxima
    saw_empty = False
    for box in ([0.0, 0.0, 14.0, 11.0], [2.3, 1.7, 9.6, 10.2], [-3.0, -2.0, 5.0, 4.0]):
        b = torch.tensor(box)
        ours = explain_roi_pool(feature, b, 1.0, (3, 4))
        rois = torch.cat([torch.zeros(1), b])[None]
        ref, ref_arg = torch.ops.torchvision.roi_pool(feature[None], rois, 1.0, 3, 4)
        assert torch.equal(ours.pooled, ref[0])
        assert torch.equal(ours.argmax, ref_arg[0].long())
        rc = ours.argmax_rowcol
        picked = feature[torch.arange(3)[:, None, None], rc[..., 0], rc[..., 1]]
        found = ours.argmax >= 0
        assert torch.equal(picked[found], ours.pooled[found])
        assert bool((ours.pooled[~found] == 0).all())
        saw_empty |= bool(ours.empty.any())
    assert saw_empty


def test_roi_pool_round_halves_away_from_zero() -> None:
    # x * scale = 2.5 and -1.5: C's round gives 3 and -2 (torch.round would give 2 and -2).
    feature = torch.arange(40.0).reshape(1, 5, 8)
    ours = explain_roi_pool(feature, [5.0, -3.0, 13.0, 7.0], 0.5, (2, 2))
    assert ours.roi_start == (3, -2)
    assert ours.roi_end == (7, 4)  # 6.5 -> 7, 3.5 -> 4
    assert torch.equal(ours.pooled, roi_pool(feature[None], [torch.tensor([[5.0, -3.0, 13.0, 7.0]])], 2, 0.5)[0])


def test_sample_weights_neighbours_and_values_are_consistent() -> None:
    for feature, box, scale, out, sampling, aligned, _kind in _cases(120, seed=2):
        ex = explain_roi_align(feature, box, scale, out, sampling, aligned)
        H, W = ex.feature_size
        valid = ex.valid
        wsum = ex.weights.sum(-1)
        torch.testing.assert_close(wsum[valid], torch.ones_like(wsum[valid]), atol=1e-6, rtol=0)
        assert bool((ex.weights[~valid] == 0).all())
        assert bool((ex.neighbors[~valid] == -1).all())
        assert bool((ex.weights[valid] >= 0).all())
        rows, cols = ex.neighbors[..., 0][valid], ex.neighbors[..., 1][valid]
        assert bool(((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)).all())
        # The interpolated value is weights . neighbour values.
        dot = (ex.weights.to(feature.dtype) * ex.neighbor_values).sum(-1)
        torch.testing.assert_close(ex.sample_values, dot, atol=1e-6, rtol=1e-6)
        # The pooled value is the average over count samples.
        torch.testing.assert_close(ex.pooled, ex.sample_values.sum(dim=(3, 4)) / ex.count)
        # Independent check of every sample: border-clamped bilinear interpolation at the
        # requested point (grid_sample, align_corners=True puts cell centres at integers).
        xy = ex.sample_xy_feature.to(feature.dtype)
        if xy.numel():
            norm = torch.stack(
                [
                    2 * xy[..., 0] / max(W - 1, 1) - 1 if W > 1 else torch.zeros_like(xy[..., 0]),
                    2 * xy[..., 1] / max(H - 1, 1) - 1 if H > 1 else torch.zeros_like(xy[..., 1]),
                ],
                dim=-1,
            ).reshape(1, -1, 1, 2)
            sampled = F.grid_sample(
                feature[None], norm, mode="bilinear", padding_mode="border", align_corners=True
            ).reshape(ex.sample_values.shape)
            expected = sampled * valid.to(feature.dtype)
            torch.testing.assert_close(ex.sample_values, expected, atol=1e-5, rtol=1e-5)


def test_geometry_follows_the_documented_conventions() -> None:
    feature = torch.randn(2, 10, 12)
    for aligned in (False, True):
        ex = explain_roi_align(feature, [8.0, 4.0, 30.0, 20.0], 0.25, (2, 4), 2, aligned)
        off = 0.5 if aligned else 0.0
        assert ex.roi_start == pytest.approx((8 * 0.25 - off, 4 * 0.25 - off))
        assert ex.roi_size == pytest.approx((22 * 0.25, 16 * 0.25))
        assert ex.bin_size == pytest.approx((22 * 0.25 / 4, 16 * 0.25 / 2))
        assert ex.grid == (2, 2) and ex.count == 4
        # feature <-> image round trip, and the box corners map back to the box.
        assert ex.feature_to_image(*ex.roi_start) == pytest.approx((8.0, 4.0))
        assert ex.image_to_feature(30.0, 20.0) == pytest.approx((30 * 0.25 - off, 20 * 0.25 - off))
        torch.testing.assert_close(ex.sample_xy_image, (ex.sample_xy_feature.double() + off) / 0.25, atol=1e-9, rtol=0)
        # Cell (0, 0) at scale 0.25 is a 4x4 image square centred on (off / 0.25, off / 0.25).
        assert ex.cell_rect_image(0, 0) == pytest.approx(
            ((off - 0.5) * 4, (off - 0.5) * 4, (off + 0.5) * 4, (off + 0.5) * 4)
        )
        b = ex.bin(1, 2)
        assert b.rect_feature == pytest.approx(
            (
                ex.roi_start[0] + 2 * ex.bin_size[0],
                ex.roi_start[1] + ex.bin_size[1],
                ex.roi_start[0] + 3 * ex.bin_size[0],
                ex.roi_start[1] + 2 * ex.bin_size[1],
            )
        )
        assert b.rect_image == pytest.approx((19.0, 12.0, 24.5, 20.0))  # image bins are 5.5 x 8
        # Samples sit at (i + 0.5) / grid of the bin, row-major.
        assert [s.grid_index for s in b.samples] == [(0, 0), (0, 1), (1, 0), (1, 1)]
        x1, y1, x2, y2 = b.rect_feature
        assert b.samples[1].xy_feature == pytest.approx((x1 + 0.75 * (x2 - x1), y1 + 0.25 * (y2 - y1)))
        assert torch.equal(b.pooled, ex.pooled[:, 1, 2])
        for s in b.samples:
            assert torch.allclose(s.value, (torch.tensor(s.weights)[:, None] * s.neighbor_values).sum(0))


def test_not_aligned_roi_is_at_least_one_cell_and_aligned_may_be_empty() -> None:
    feature = torch.randn(3, 8, 8)
    legacy = explain_roi_align(feature, [10.0, 10.0, 10.0, 10.0], 0.5, 2, -1, aligned=False)
    assert legacy.roi_size == (1.0, 1.0) and legacy.grid == (1, 1)
    aligned = explain_roi_align(feature, [10.0, 10.0, 10.0, 10.0], 0.5, 2, -1, aligned=True)
    assert aligned.roi_size == (0.0, 0.0) and aligned.grid == (0, 0) and aligned.count == 1
    assert bool((aligned.pooled == 0).all())
    assert "no samples" in aligned.worked_example(0, 0)
    ref = roi_align(feature[None], [torch.tensor([[10.0, 10.0, 10.0, 10.0]])], 2, 0.5, -1, True)[0]
    assert torch.equal(aligned.pooled, ref)


def test_border_rules_are_explained() -> None:
    # Samples at y = H exactly still count (clamped onto the last row); y > H gives 0.
    feature = torch.arange(1.0, 17.0).reshape(1, 4, 4)
    ex = explain_roi_align(feature, [0.0, 3.0, 3.0, 5.0], 1.0, (2, 1), 1, aligned=False)
    # Bin rows cover y in [3, 4] and [4, 5]; sample ys are 3.5 and 4.5.
    first, second = ex.bin(0, 0).samples[0], ex.bin(1, 0).samples[0]
    assert first.valid and first.xy_used[1] == 3.0 and first.neighbors[0][0] == 3
    assert not second.valid and float(second.value[0]) == 0.0
    text = ex.worked_example(1, 0)
    assert "contributes 0" in text


def _numbers(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


def test_worked_example_contains_the_numbers() -> None:
    gen = torch.Generator().manual_seed(3)
    feature = torch.randn(4, 16, 16, generator=gen)
    ex = explain_roi_align(feature, [13.0, 9.0, 47.0, 41.0], 0.25, 7, 2, aligned=False)
    text = ex.worked_example(3, 2, channel=1)
    nums = _numbers(text)

    def present(value: float) -> bool:
        return any(math.isclose(n, value, rel_tol=1e-5, abs_tol=1e-6) for n in nums)

    b = ex.bin(3, 2)
    assert present(float(b.pooled[1]))
    assert present(float(ex.pooled[1, 3, 2]))
    for s in b.samples:
        assert present(float(s.value[1]))
        assert present(s.xy_feature[0]) and present(s.xy_feature[1])
        assert present(s.fraction[0]) and present(s.fraction[1])
        for w in s.weights:
            assert present(w)
        for v in s.neighbor_values[:, 1].tolist():
            assert present(v)
        for r, c in s.neighbors:
            assert f"row {r}, col {c}" in text
    assert f"/ {b.count} =" in text
    # Changing the channel changes the values written out.
    assert ex.worked_example(3, 2, channel=0) != text
    with pytest.raises(IndexError):
        ex.worked_example(7, 0)
    with pytest.raises(IndexError):
        ex.worked_example(0, 0, channel=4)


def test_compare_align_pool() -> None:
    feature = torch.full((2, 20, 20), 3.0)
    cmp = compare_align_pool(feature, [16.0, 16.0, 48.0, 48.0], 0.25, 7, 2)
    torch.testing.assert_close(cmp.align.pooled, torch.full((2, 7, 7), 3.0))
    assert torch.equal(cmp.pool.pooled, torch.full((2, 7, 7), 3.0))
    assert cmp.mean_abs_difference == pytest.approx(0.0, abs=1e-6)

    gen = torch.Generator().manual_seed(4)
    feature = torch.randn(3, 20, 20, generator=gen)
    cmp = compare_align_pool(feature, [13.0, 9.0, 47.0, 41.0], 0.25, (7, 5), 2, True)
    assert torch.equal(cmp.difference, cmp.align.pooled - cmp.pool.pooled)
    assert cmp.mean_abs_difference > 0.01  # quantization really changes the result
    pool = cmp.pool
    # Quantized RoI: round(13/4)=3 .. round(47/4)=12 -> 10 cells; round(9/4)=2 .. round(41/4)=10 -> 9.
    assert pool.roi_start == (3, 2) and pool.roi_end == (12, 10) and pool.roi_size == (10, 9)
    assert pool.roi_rect_image == pytest.approx((10.0, 6.0, 50.0, 42.0))
    pb = pool.bin(0, 0)
    assert pb.cells == (3, 2, 5, 4) and not pb.empty
    assert pb.rect_image == pytest.approx((10.0, 6.0, 18.0, 14.0))
    region = feature[:, 2:4, 3:5].reshape(3, -1)
    assert torch.equal(pb.pooled, region.max(dim=1).values)


def test_roi_pool_empty_bins_give_zero() -> None:
    feature = torch.randn(2, 6, 6) - 10  # all negative, so 0 can only come from an empty bin
    ex = explain_roi_pool(feature, [20.0, 2.0, 40.0, 4.0], 1.0, (2, 2))
    assert bool(ex.empty.all())
    assert bool((ex.pooled == 0).all()) and bool((ex.argmax == -1).all())
    assert bool((ex.argmax_rowcol == -1).all())


def test_bad_inputs_raise() -> None:
    feature = torch.randn(2, 5, 5)
    with pytest.raises(ValueError, match="C, H, W"):
        explain_roi_align(torch.randn(5, 5), [0, 0, 1, 1], 1.0, 2)
    with pytest.raises(ValueError, match="floating"):
        explain_roi_pool(torch.zeros(1, 5, 5, dtype=torch.int64), [0, 0, 1, 1], 1.0, 2)
    with pytest.raises(ValueError, match="box"):
        explain_roi_align(feature, [0, 0, 1], 1.0, 2)
    with pytest.raises(ValueError, match="finite"):
        explain_roi_align(feature, [0, 0, math.nan, 1], 1.0, 2)
    with pytest.raises(ValueError, match="feature cells"):
        explain_roi_pool(feature, [0, 0, 1e12, 1], 1.0, 2)
    with pytest.raises(ValueError, match="spatial_scale"):
        explain_roi_align(feature, [0, 0, 1, 1], 0.0, 2)
    with pytest.raises(ValueError, match="output_size"):
        explain_roi_pool(feature, [0, 0, 1, 1], 1.0, (0, 2))
    with pytest.raises(ValueError, match="empty"):
        explain_roi_align(torch.zeros(1, 0, 4), [0, 0, 1, 1], 1.0, 2)
    with pytest.raises(IndexError):
        explain_roi_align(feature, [0, 0, 4, 4], 1.0, 2).bin(2, 0)
    with pytest.raises(MaskScopeError, match="sampling_ratio"):
        explain_roi_align(torch.randn(64, 8, 8), [0, 0, 1e5, 1e5], 1.0, 1, -1)


def test_speed_sanity_mask_rcnn_sized_roi() -> None:
    # A 14x14 mask-head RoI, sampling 2, 256 channels (not a timed assert: just make sure it runs).
    gen = torch.Generator().manual_seed(6)
    feature = torch.randn(256, 50, 68, generator=gen)
    box = torch.tensor([40.0, 30.0, 170.0, 150.0])
    explain_roi_align(feature, box, 0.25, 14, 2)  # warm-up
    t0 = time.perf_counter()
    ex = explain_roi_align(feature, box, 0.25, 14, 2)
    elapsed = time.perf_counter() - t0
    print(f"explain_roi_align 14x14, sampling 2, C=256: {elapsed * 1000:.1f} ms")
    ref = roi_align(feature[None], [box[None]], 14, 0.25, 2, False)[0]
    torch.testing.assert_close(ex.pooled, ref, atol=1e-5, rtol=1e-5)
    assert ex.sample_values.shape == (256, 14, 14, 2, 2)
    assert ex.neighbor_values.shape == (256, 14, 14, 2, 2, 4)
