"""Label placement: no overlaps, inside the view, short text or hidden when dense."""

from __future__ import annotations

import random

from app.label_layout import LabelRequest, _overlaps, place_labels


def measure(text: str) -> tuple[float, float]:
    return 7.0 * len(text), 14.0


def test_a_lone_label_sits_above_its_box():
    (p,) = place_labels([LabelRequest((50, 50, 40, 30), ["cat 0.93"])], (0, 0, 400, 300), measure)
    assert p.rect == (50, 36, 56.0, 14.0) and p.text == "cat 0.93"


def test_labels_at_the_edge_stay_inside_the_view():
    view = (0, 0, 200, 100)
    placed = place_labels(
        [LabelRequest((-20, -10, 40, 30), ["person 0.99"]), LabelRequest((180, 80, 40, 40), ["dog 0.5"])], view, measure
    )
    assert len(placed) == 2
    for p in placed:
        x, y, w, h = p.rect
        assert x >= 0 and y >= 0 and x + w <= 200 and y + h <= 100


def test_neighbours_do_not_overlap_and_the_best_keeps_its_full_text():
    reqs = [LabelRequest((100, 100, 30, 30), [f"class{k} 0.{k}", f"class{k}", "c"], k / 10) for k in range(1, 9)]
    placed = place_labels(reqs, (0, 0, 400, 300), measure)
    assert all(not _overlaps(a.rect, b.rect) for a in placed for b in placed if a is not b)
    best = next(p for p in placed if p.index == 7)
    assert best.text == "class8 0.8"
    assert len(placed) < len(reqs) or any(p.text != reqs[p.index].texts[0] for p in placed)


def test_random_dense_scenes_never_overlap():
    rng = random.Random(3)
    for _ in range(50):
        reqs = [
            LabelRequest((rng.uniform(-50, 350), rng.uniform(-50, 250), rng.uniform(5, 80), rng.uniform(5, 80)),
                         [f"name{k} 0.{k}", f"name{k}", "n"], rng.random())
            for k in range(40)
        ]  # fmt: skip
        placed = place_labels(reqs, (0, 0, 320, 240), measure)
        assert all(not _overlaps(a.rect, b.rect) for a in placed for b in placed if a is not b)
        assert all(0 <= p.rect[0] and p.rect[0] + p.rect[2] <= 320 for p in placed)
