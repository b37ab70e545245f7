"""Masks <-> COCO polygons, with COCO's pixel convention.

Convention (the one pycocotools uses, checked in tests): a polygon lives in *pixel-edge*
coordinates, pixel (col x, row y) is the unit square [x, x+1] x [y, y+1], and a pixel belongs to
the rasterised polygon when its centre (x+0.5, y+0.5) lies inside. ``polygons_to_mask`` therefore
rasterises with pycocotools itself (``frPyObjects``), so our masks match what COCO tools compute.

``mask_to_polygons`` traces the outer boundary of each connected part with
``cv2.findContours`` (pixel-centre coordinates), then pushes every edge outwards by about half a
pixel (0.5 for horizontal/vertical edges, 0.35 for 45-degree edges, mitred at corners). The result
runs along the pixel edges, and rasterising it with pycocotools gives back the same pixels for
ordinary shapes (tests check IoU >= 0.98; most shapes come back exact). Plain cv2 contours through
pixel centres would lose half of every boundary pixel.

COCO polygons cannot express holes (several polygons of one annotation are *unioned*), so
``mask_to_polygons`` returns outer boundaries only: holes are filled. ``trace_polygons`` also says
whether the mask had holes so an exporter can keep such masks as RLE instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from engine.masks import CroppedMask

Polygon = list[float]  # flat [x0, y0, x1, y1, ...] in pixel-edge coordinates


def polygon_problem(poly: object) -> str | None:
    """Why ``poly`` is not a usable COCO polygon, or None when it is."""
    if not isinstance(poly, (list, tuple)):
        return f"a polygon must be a list of numbers, got {type(poly).__name__}"
    if len(poly) % 2:
        return f"a polygon needs an even number of coordinates, got {len(poly)}"
    if len(poly) < 6:
        return f"a polygon needs at least 3 points, got {len(poly) // 2}"
    for v in poly:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"polygon coordinates must be finite numbers, got {v!r}"
    return None


def polygons_to_mask(polygons: Sequence[Sequence[float]], image_size: tuple[int, int]) -> CroppedMask:
    """Rasterise COCO polygons (their union) exactly as pycocotools does, without a full-image array.

    Only the polygons' bounding box is rasterised: shifting a polygon by whole pixels does not
    change pycocotools' rasterisation, so the result equals ``frPyObjects`` on the full image.
    """
    height, width = int(image_size[0]), int(image_size[1])
    polys = []
    for poly in polygons:
        problem = polygon_problem(poly)
        if problem:
            raise ValueError(problem)
        polys.append(np.asarray(poly, dtype=np.float64))
    if not polys:
        return CroppedMask(0, 0, np.zeros((0, 0), bool), (height, width))
    xs = np.concatenate([p[0::2] for p in polys])
    ys = np.concatenate([p[1::2] for p in polys])
    bx0 = min(max(int(math.floor(xs.min())), 0), width)
    by0 = min(max(int(math.floor(ys.min())), 0), height)
    bx1 = min(max(int(math.ceil(xs.max())) + 1, 0), width)
    by1 = min(max(int(math.ceil(ys.max())) + 1, 0), height)
    if bx1 <= bx0 or by1 <= by0:
        return CroppedMask(0, 0, np.zeros((0, 0), bool), (height, width))
    shifted = []
    for p in polys:
        q = p.copy()
        q[0::2] -= bx0
        q[1::2] -= by0
        shifted.append(q.tolist())
    bh, bw = by1 - by0, bx1 - bx0
    rle = mask_utils.merge(mask_utils.frPyObjects(shifted, bh, bw))
    bits = mask_utils.decode(rle).astype(bool)
    return CroppedMask(bx0, by0, bits, (height, width)).tight()


def _offset_contour(pts: np.ndarray) -> np.ndarray:
    """Push a closed contour through pixel centres out onto the pixel edges (see module doc)."""
    n = len(pts)
    if n == 1:  # a single pixel: its square
        x, y = pts[0]
        return np.array([[x - 0.5, y - 0.5], [x + 0.5, y - 0.5], [x + 0.5, y + 0.5], [x - 0.5, y + 0.5]])
    nxt = np.arange(1, n + 1) % n
    prev = np.arange(-1, n - 1)  # -1 wraps to the last vertex
    signed_area2 = float(np.dot(pts[:, 0], pts[nxt, 1]) - np.dot(pts[nxt, 0], pts[:, 1]))
    if signed_area2 < 0:  # make (t_y, -t_x) the outward normal
        pts = pts[::-1]
    edge = pts[nxt] - pts  # edge i: pts[i] -> pts[i+1]
    t = edge / np.sqrt((edge * edge).sum(axis=1))[:, None]
    normal = np.empty_like(t)
    normal[:, 0], normal[:, 1] = t[:, 1], -t[:, 0]
    # 0.5 px for axis-aligned edges, 0.5/sqrt(2) for diagonal ones: keeps every boundary pixel
    # centre inside and every outside neighbour's centre outside, with the widest margins.
    dist = 0.5 * np.abs(normal).max(axis=1)
    na, da, ta = normal[prev], dist[prev], t[prev]  # incoming edge at each vertex; outgoing: normal, dist
    det = na[:, 0] * normal[:, 1] - na[:, 1] * normal[:, 0]
    turning = np.abs(det) > 1e-9
    safe = np.where(turning, det, 1.0)
    q = np.empty_like(pts)
    q[:, 0] = (da * normal[:, 1] - dist * na[:, 1]) / safe  # the two offset lines' intersection
    q[:, 1] = (na[:, 0] * dist - normal[:, 0] * da) / safe
    if turning.all():
        return pts + q
    forward = (ta * t).sum(axis=1) > 0
    straight = ~turning & forward
    q[straight] = da[straight, None] * na[straight]
    out = pts + q
    reverse = np.flatnonzero(~turning & ~forward)
    if len(reverse) == 0:
        return out
    # A one-pixel-wide spike: the contour turns back on itself. Give it a square cap.
    rows: list[np.ndarray] = []
    start = 0
    for i in reverse:
        rows.append(out[start:i])
        v = pts[i]
        rows.append((v + da[i] * na[i] + da[i] * ta[i])[None])
        rows.append((v + dist[i] * normal[i] + da[i] * ta[i])[None])
        start = int(i) + 1
    rows.append(out[start:])
    return np.concatenate(rows, axis=0)


def trace_polygons(mask: CroppedMask, tolerance: float = 0.0) -> tuple[list[Polygon], bool]:
    """Outer boundary polygons of ``mask`` (one per connected part) and whether it has holes.

    ``tolerance`` > 0 simplifies each boundary with Douglas-Peucker (pixels) for fewer vertices.
    """
    bits = mask.bits
    if bits.size == 0 or not bits.any():
        return [], False
    padded = np.zeros((bits.shape[0] + 2, bits.shape[1] + 2), np.uint8)
    padded[1:-1, 1:-1] = bits
    contours, hierarchy = cv2.findContours(padded, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    polygons: list[Polygon] = []
    has_holes = False
    # pixel (c, r) of the padded patch has its centre at image (x0 - 1 + c + 0.5, y0 - 1 + r + 0.5)
    shift = np.array([mask.x0 - 0.5, mask.y0 - 0.5])
    for contour, info in zip(contours, hierarchy[0], strict=True):
        if info[3] >= 0:  # has a parent: a hole
            has_holes = True
            continue
        if tolerance > 0 and len(contour) > 3:
            contour = cv2.approxPolyDP(contour, float(tolerance), True)
        pts = contour[:, 0, :].astype(np.float64) + shift
        polygons.append(np.round(_offset_contour(pts), 2).reshape(-1).tolist())
    return polygons, has_holes


def mask_to_polygons(mask: CroppedMask, tolerance: float = 0.0) -> list[Polygon]:
    """COCO polygons tracing ``mask`` along pixel edges; holes are filled (COCO cannot express them)."""
    return trace_polygons(mask, tolerance)[0]


def has_holes(mask: CroppedMask) -> bool:
    """True when the mask has holes, which a COCO polygon list would fill in."""
    return trace_polygons(mask)[1]
