"""Where instance labels go: next to their object, never on top of each other, always inside the view.

A pure function of rectangles (view coordinates), so it is tested without a window. Labels are
placed best first (highest score); each tries a few spots around its box (above, inside the top,
below, to the side), moved inside the view; a spot that overlaps a placed label is skipped. When
no spot fits, the short text (e.g. "cat" instead of "cat 0.93", then "c") is tried; a label that
still finds no room is hidden (its full text is the instance's tooltip on hover).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Rect = tuple[float, float, float, float]  # x, y, width, height


@dataclass(frozen=True)
class LabelRequest:
    box: Rect  # the instance's box in view coordinates
    texts: Sequence[str]  # full text first, then shorter forms
    priority: float = 0.0  # higher is placed first (the score)


@dataclass(frozen=True)
class PlacedLabel:
    index: int  # into the requests
    text: str
    rect: Rect


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(r: Rect, view: Rect) -> Rect | None:
    """``r`` moved into ``view``; None when it is bigger than the view."""
    x, y, w, h = r
    vx, vy, vw, vh = view
    if w > vw or h > vh:
        return None
    return (min(max(x, vx), vx + vw - w), min(max(y, vy), vy + vh - h), w, h)


def _candidates(box: Rect, w: float, h: float) -> list[Rect]:
    x, y, bw, bh = box
    return [
        (x, y - h, w, h),  # above, left-aligned (the usual place)
        (x, y, w, h),  # inside the top-left corner
        (x, y + bh, w, h),  # below
        (x + bw - w, y - h, w, h),  # above, right-aligned
        (x + bw, y, w, h),  # right of the box
        (x - w, y, w, h),  # left of the box
    ]


def place_labels(
    requests: Sequence[LabelRequest], view: Rect, measure: Callable[[str], tuple[float, float]]
) -> list[PlacedLabel]:
    """Positions of the labels that fit; ``measure(text)`` gives a label's (width, height)."""
    placed: list[PlacedLabel] = []
    order = sorted(range(len(requests)), key=lambda i: -requests[i].priority)
    for i in order:
        req = requests[i]
        if not _overlaps(req.box, view) and req.box[2] > 0:
            continue  # the object is scrolled out of view
        spot = None
        for text in req.texts:
            w, h = measure(text)
            for cand in _candidates(req.box, w, h):
                rect = _inside(cand, view)
                if rect is not None and not any(_overlaps(rect, p.rect) for p in placed):
                    spot = PlacedLabel(i, text, rect)
                    break
            if spot is not None:
                break
        if spot is not None:
            placed.append(spot)
    return sorted(placed, key=lambda p: p.index)
