"""Prompts: time per box/point prompt against a full predict, and a simulated annotator (NoC).

    python bench/bench_prompts.py                  # everything (a few minutes on 2 busy cores)
    python bench/bench_prompts.py --skip-r50       # demo models only
    python bench/bench_prompts.py --images 20      # short annotator run (the report needs >= 100)
    python bench/bench_prompts.py --only-paste     # (c) alone: the mask paste's ceiling and speed

(a) Timing, torch on 1 thread, CPU. Each model gets one image; ``predict`` is timed on it, then
the first box prompt (which computes and caches the image's features), then the median of later
box prompts (heads only) and point prompts. Ratio lines: prompt / predict of the same image in the
same run. R50-FPN has random weights (no download) at 1333x800: with random weights nearly
nothing passes the score threshold, so its ``predict`` skips most of the mask head, which makes the
ratio pessimistic. Targets: < 150 ms per box prompt for R50-FPN, < 50 ms for the demo models.

(b) Simulated annotator, on ``--images`` held-out generated images per demo model (engine.synthetic,
the model's own image size, seed ``HELDOUT_SEED`` + architecture index; the demo models were
trained on seeds 1000 and 2000, read from their JSON sidecars and checked here). For every ground
truth (GT) instance the annotator starts from an empty mask; IoU is mask IoU with that instance's GT
(its visible pixels). Actions, each counting 1:

- *vertex*: one click of a polygon vertex. A polygon of n vertices costs n actions. The simulated
  polygon is the GT's outer contour simplified by Douglas-Peucker (OpenCV ``approxPolyDP``) with
  one of 24 tolerances from 0.3 to 20 px; the annotator is credited with the cheapest tolerance.
- *stroke*: one brush (paint or erase) stroke. The simulated stroke picks the largest 8-connected
  error region (missing or extra pixels), and sets to their GT value the region's pixels within
  ``STROKE_RADIUS`` (1/8 of the image side: 16 px at 128 px) of the region's most interior pixel
  (a short stroke of at most about a quarter of the image; long boundary slivers need several).
- *accept*: accepting one prediction. *box*: dragging one box; the simulated box is the GT's tight
  box with each side moved by up to ``BOX_JITTER`` of the box size (uniform, seeded).
- *click*: one point prompt at the GT's most interior pixel (max of the distance transform).
  *cycle*: one Tab to the next point candidate.

The simulated stroke is idealised: it follows the GT edge exactly over its length. That is a fair
model of a short stroke fixing an edge, and it is the same for every strategy; but it would make
painting a whole small object from nothing one action, so strategy 1 starts with a polygon.

Strategies (each then corrects with strokes until the IoU target or the cap):
1. brush/polygon only: the cheapest polygon (vertex clicks), then strokes;
2. accept predictions then correct: accept the prediction (score >= the model's threshold) that
   best overlaps the GT if its IoU >= 0.5, else as strategy 1;
3. box prompt then correct: 1 box (``segment_box``), then strokes;
4. point prompt with cycling then correct: 1 click, i cycles to candidate i (``segment_point``, up
   to 8 candidates; the annotator is credited with the cheapest candidate), then strokes; with no
   candidate, the click is lost and strategy 1 follows.

NoC@85 / NoC@90: mean over GT instances of the actions needed to reach IoU >= 0.85 / 0.90, counted
as ``CAP`` (20) when not reached within it; "<=5 @90": share of instances reaching 0.90 within 5
actions. For YOLACT, strategy 3 runs with both prior rules (engine.yolact.prompt).
Targets: box prompt NoC@90 <= 1.5 and at least 30 % fewer actions than strategy 1.

(c) Mask R-CNN's paste, with a perfect mask head: every held-out ground truth RoIAligned (as the
training targets are made) on its jittered box, pasted back by torchvision's ``paste_masks_in_image``
and by ours (engine.maskrcnn.paste); mean IoU with the ground truth and the share >= 0.90 is the
best either paste lets a model reach. Then both pastes timed on 100 boxes in a 1333x800 image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.timing import report, timed  # noqa: E402
from engine.maskrcnn.paste import paste_masks_cropped  # noqa: E402
from engine.models import load_segmenter  # noqa: E402
from engine.synthetic import DEMO_CLASSES, generate_dataset, generate_image, masks_to_boxes  # noqa: E402
from engine.training.demo import DEMO_DIR, RECIPES, demo_path  # noqa: E402
from engine.training.demo_samples import mask_iou  # noqa: E402

HELDOUT_SEED = 7100
CAP = 20
TARGETS = (0.85, 0.90)
BOX_JITTER = 0.04
MATCH_IOU = 0.5
TOLERANCES = np.geomspace(0.3, 20, 24)
TARGET_MS = {"r50": 150.0, "demo": 50.0}
MODELS_DIR = DEMO_DIR  # --models: candidate demo models elsewhere


# --- (a) timing ---------------------------------------------------------------------------------
def time_model(name: str, seg, image: np.ndarray, target: float, predict_repeats: int, repeats: int) -> None:
    h, w = image.shape[:2]
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(repeats):
        x1, y1 = rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7)
        boxes.append([x1, y1, x1 + rng.uniform(0.05, 0.3) * w, y1 + rng.uniform(0.05, 0.3) * h])
    points = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(repeats)]
    predict_ms = timed(lambda: seg.predict(image), predict_repeats)  # after a warm-up run
    seg.clear_prompt_cache()
    start = time.perf_counter()
    seg.segment_box(image, boxes[0])
    first_ms = (time.perf_counter() - start) * 1000
    it = iter(boxes * 2)
    box_ms = timed(lambda: seg.segment_box(image, next(it)), repeats)
    start = time.perf_counter()
    seg.segment_point(image, *points[0])
    first_point_ms = (time.perf_counter() - start) * 1000
    pit = iter(points * 2)
    point_ms = timed(lambda: seg.segment_point(image, *next(pit)), repeats)
    print(f"{name}: image {w}x{h}, predict {predict_ms:.1f} ms (median of {predict_repeats})")
    print(f"{name}: first box prompt (computes the feature cache) {first_ms:.1f} ms")
    report(f"{name}: box prompt (median of {repeats}, cached features)", box_ms, target)
    print(f"{name}: box prompt / predict ratio {box_ms / predict_ms:.3f} ({predict_ms / box_ms:.1f}x faster)")
    print(f"{name}: first point prompt {first_point_ms:.1f} ms, later point prompts {point_ms:.1f} ms (median)")


def timing(skip_r50: bool) -> None:
    torch.set_num_threads(1)
    print("== (a) timing, CPU, 1 thread ==")
    if not skip_r50:
        from engine.maskrcnn import create

        torch.manual_seed(0)
        seg = create("maskrcnn_resnet50_fpn", "random", "cpu")
        image = generate_image(np.random.default_rng(1), (800, 1333)).image
        time_model("R50-FPN random 1333x800", seg, image, TARGET_MS["r50"], 2, 10)
    for arch in RECIPES:
        seg = load_segmenter(demo_path(arch, MODELS_DIR), device="cpu")
        size = RECIPES[arch].image_size
        image = next(generate_dataset(1, size, DEMO_CLASSES, seed=HELDOUT_SEED + 99)).image
        time_model(f"demo_{arch} {size}x{size}", seg, image, TARGET_MS["demo"], 20, 30)


# --- (b) simulated annotator --------------------------------------------------------------------
def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of ``mask`` farthest from its boundary."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


class Annotator:
    """Simulated corrections for one image size (see the module docstring)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.radius = min(size) / 8
        self.yy, self.xx = np.mgrid[0 : size[0], 0 : size[1]]

    def stroke(self, current: np.ndarray, gt: np.ndarray) -> np.ndarray | None:
        best = None
        for err, value in ((gt & ~current, True), (current & ~gt, False)):
            n, labels, stats, _ = cv2.connectedComponentsWithStats(err.astype(np.uint8), connectivity=8)
            if n > 1:
                k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
                if best is None or stats[k, cv2.CC_STAT_AREA] > best[0]:
                    best = (stats[k, cv2.CC_STAT_AREA], labels == k, value)
        if best is None:
            return None
        _, region, value = best
        x, y = interior_point(region)
        disc = (self.yy - y) ** 2 + (self.xx - x) ** 2 <= self.radius**2
        out = current.copy()
        out[region & disc] = value
        return out

    def strokes_needed(self, start: np.ndarray, gt: np.ndarray, budget: int) -> dict[float, int | None]:
        """Strokes from ``start`` to reach each IoU target (None: not within ``budget``)."""
        need: dict[float, int | None] = dict.fromkeys(TARGETS)
        mask, n = start, 0
        while True:
            value = mask_iou(mask, gt)
            for t in TARGETS:
                if need[t] is None and value >= t:
                    need[t] = n
            if all(v is not None for v in need.values()) or n >= budget:
                return need
            mask = self.stroke(mask, gt)
            if mask is None:
                return need
            n += 1

    def after(self, base: int, start: np.ndarray, gt: np.ndarray) -> dict[float, int]:
        """Total actions per target: ``base`` actions that gave ``start``, then strokes (capped)."""
        need = self.strokes_needed(start, gt, max(CAP - base, 0))
        return {t: CAP if v is None else min(CAP, base + v) for t, v in need.items()}

    def draw(self, gt: np.ndarray) -> dict[float, int]:
        """Strategy 1: the cheapest polygon, then strokes."""
        best = dict.fromkeys(TARGETS, CAP)
        contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        outer = max(contours, key=cv2.contourArea)
        seen: set[int] = set()
        for tol in TOLERANCES[::-1]:  # coarse (few vertices) first
            poly = cv2.approxPolyDP(outer, float(tol), True)
            n = len(poly)
            if n < 3 or n in seen or n >= CAP:
                continue
            seen.add(n)
            mask = np.zeros(gt.shape, np.uint8)
            cv2.fillPoly(mask, [poly], 1)
            got = self.after(n, mask.astype(bool), gt)
            best = {t: min(best[t], got[t]) for t in TARGETS}
        return best


def _cheapest(options: list[dict[float, int]]) -> dict[float, int]:
    return {t: min(o[t] for o in options) for t in TARGETS}


def annotate_model(arch: str, n_images: int, rules: list[str | None], jitter: float) -> list[tuple[str, list, list]]:
    meta = json.loads(demo_path(arch, MODELS_DIR).with_suffix(".json").read_text())
    train_seed = int(meta["demo"]["data"]["seed"])
    seed = HELDOUT_SEED + list(RECIPES).index(arch)
    if seed == train_seed:
        raise SystemExit(f"held-out seed {seed} is the training seed of demo_{arch}")
    seg = load_segmenter(demo_path(arch, MODELS_DIR), device="cpu")
    size = RECIPES[arch].image_size
    ann = Annotator((size, size))
    rows: dict[str, list] = {"1 brush/polygon": [], "2 accept+correct": []}
    for rule in rules:
        rows[f"3 box+correct{'' if rule is None else f' ({rule})'}"] = []
    rows["4 point+cycle+correct"] = []
    first_iou: dict[str, list[float]] = {k: [] for k in rows}
    rng = np.random.default_rng(seed)
    for sample in generate_dataset(n_images, size, DEMO_CLASSES, seed=seed):
        image = sample.image
        preds = [inst.mask.to_full() for inst in seg.predict(image).instances]
        for gt, box in zip(sample.masks, masks_to_boxes(sample.masks), strict=True):
            s1 = ann.draw(gt)
            rows["1 brush/polygon"].append(s1)
            # 2: accept the best-overlapping prediction, or draw.
            overlaps = [mask_iou(p, gt) for p in preds]
            if overlaps and max(overlaps) >= MATCH_IOU:
                best = preds[int(np.argmax(overlaps))]
                rows["2 accept+correct"].append(ann.after(1, best, gt))
                first_iou["2 accept+correct"].append(max(overlaps))
            else:
                rows["2 accept+correct"].append(s1)
            # 3: a slightly imprecise box.
            bw, bh = box[2] - box[0], box[3] - box[1]
            drawn = box + rng.uniform(-jitter, jitter, 4) * [bw, bh, bw, bh]
            for rule in rules:
                if rule is not None:
                    seg.prior_rule = rule
                mask = seg.segment_box(image, drawn).mask.to_full()
                key = f"3 box+correct{'' if rule is None else f' ({rule})'}"
                rows[key].append(ann.after(1, mask, gt))
                first_iou[key].append(mask_iou(mask, gt))
            # 4: click the most interior pixel, cycle to the cheapest candidate.
            x, y = interior_point(gt)
            cands = [c.mask.to_full() for c in seg.segment_point(image, x, y)]
            if cands:
                rows["4 point+cycle+correct"].append(_cheapest([ann.after(1 + i, m, gt) for i, m in enumerate(cands)]))
                first_iou["4 point+cycle+correct"].append(mask_iou(cands[0], gt))
            else:
                rows["4 point+cycle+correct"].append({t: min(CAP, 1 + s1[t]) for t in TARGETS})
    out = []
    for name, results in rows.items():
        out.append((name, results, first_iou[name]))
    return out


def annotator(n_images: int, jitter: float, archs: list[str]) -> None:
    print(f"\n== (b) simulated annotator, {n_images} held-out images per demo model, cap {CAP} ==")
    print(f"box jitter {jitter:.0%} of the box size per side; stroke radius 1/8 of the image side")
    header = (
        f"{'model':<16}{'strategy':<30}{'instances':>10}{'NoC@85':>8}{'NoC@90':>8}{'<=5 @90':>9}"
        f"{'1st IoU':>9}{'1st>=.9':>9}"
    )
    print(header)
    for arch in archs:
        rules = ["iou", "iou_conf"] if arch == "yolact" else [None]
        start = time.perf_counter()
        rows = annotate_model(arch, n_images, rules, jitter)
        noc90, se90 = {}, {}
        for name, results, first in rows:
            n85 = statistics.mean(r[0.85] for r in results)
            n90 = statistics.mean(r[0.90] for r in results)
            se90[name] = statistics.stdev(r[0.90] for r in results) / len(results) ** 0.5
            within = sum(r[0.90] <= 5 for r in results) / len(results)
            noc90[name] = n90
            first_txt = f"{statistics.mean(first):.3f}" if first else "-"
            good = f"{sum(v >= 0.9 for v in first) / len(first):.1%}" if first else "-"
            print(
                f"{'demo_' + arch:<16}{name:<30}{len(results):>10}{n85:>8.2f}{n90:>8.2f}{within:>9.1%}"
                f"{first_txt:>9}{good:>9}"
            )
        base = noc90["1 brush/polygon"]
        for name, value in noc90.items():
            if name.startswith("3"):
                print(
                    f"demo_{arch}: {name}: NoC@90 {value:.2f} +- {1.96 * se90[name]:.2f} (95 % normal interval) "
                    f"(target <= 1.5, ratio {value / 1.5:.2f}); "
                    f"{1 - value / base:.0%} fewer actions than brush/polygon (target >= 30%)"
                )
        print(f"demo_{arch}: annotator simulation took {time.perf_counter() - start:.0f} s")


# --- (c) the mask paste ------------------------------------------------------------------------
def paste_ceiling(n_images: int, jitter: float) -> None:
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    from torchvision.ops import roi_align

    print(f"\n== (c) Mask R-CNN paste with a perfect mask head, {n_images} held-out images ==")
    size = RECIPES["maskrcnn"].image_size
    rng = np.random.default_rng(HELDOUT_SEED)
    results: dict[str, list[float]] = {}
    for sample in generate_dataset(n_images, size, DEMO_CLASSES, seed=HELDOUT_SEED):
        for gt, box in zip(sample.masks, masks_to_boxes(sample.masks), strict=True):
            bw, bh = box[2] - box[0], box[3] - box[1]
            drawn = torch.from_numpy((box + rng.uniform(-jitter, jitter, 4) * [bw, bh, bw, bh]).astype(np.float32))
            pixels = torch.from_numpy(gt.astype(np.float32))[None, None]
            for aligned in (False, True):  # torchvision's targets; the cell-centre convention
                target = roi_align(pixels, [drawn[None]], (28, 28), 1.0, aligned=aligned)
                theirs = paste_masks_in_image(target, drawn[None], gt.shape)[0, 0].numpy() > 0.5
                ours = paste_masks_cropped(target, drawn[None], gt.shape)[0].to_full()
                name = "aligned=True " if aligned else "aligned=False"
                results.setdefault(f"targets {name}, torchvision paste", []).append(mask_iou(theirs, gt))
                results.setdefault(f"targets {name}, our paste", []).append(mask_iou(ours, gt))
    for name, values in results.items():
        v = np.array(values)
        print(f"{name:<44} mean IoU {v.mean():.3f}  >= 0.90: {np.mean(v >= 0.9):.1%}  ({len(v)} objects)")
    torch.set_num_threads(1)
    probs = torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    xy = torch.rand(100, 2, generator=torch.Generator().manual_seed(1)) * torch.tensor([1200.0, 700.0])
    boxes = torch.cat([xy, xy + 20 + 110 * torch.rand(100, 2, generator=torch.Generator().manual_seed(2))], 1)
    tv_ms = timed(lambda: paste_masks_in_image(probs, boxes, (800, 1333)) > 0.5, 5)
    our_ms = timed(lambda: paste_masks_cropped(probs, boxes, (800, 1333)), 5)
    print(
        f"paste 100 masks into 1333x800, 1 thread: torchvision (full-image masks) {tv_ms:.1f} ms, "
        f"ours (cropped) {our_ms:.1f} ms, ratio ours/torchvision {our_ms / tv_ms:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100, help="held-out images per demo model (default 100)")
    parser.add_argument("--skip-r50", action="store_true", help="no R50-FPN timing (the slowest part)")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-annotator", action="store_true")
    parser.add_argument("--arch", choices=(*RECIPES, "both"), default="both", help="(b): which demo models")
    parser.add_argument("--models", type=Path, default=DEMO_DIR, help="folder of demo_*.safetensors")
    parser.add_argument("--only-paste", action="store_true", help="only (c): the mask paste")
    parser.add_argument("--box-jitter", type=float, default=BOX_JITTER, help="box side error, fraction of its size")
    args = parser.parse_args(argv)
    global MODELS_DIR
    MODELS_DIR = args.models
    torch.set_num_threads(1)
    for arch in list(RECIPES) if args.arch == "both" else [args.arch]:
        if not demo_path(arch, MODELS_DIR).is_file():
            print(f"demo_{arch}: missing {demo_path(arch, MODELS_DIR)}")
            return 1
    if args.only_paste:
        paste_ceiling(args.images, args.box_jitter)
        return 0
    if not args.skip_timing:
        timing(args.skip_r50)
    if not args.skip_annotator:
        annotator(args.images, args.box_jitter, list(RECIPES) if args.arch == "both" else [args.arch])
    paste_ceiling(args.images, args.box_jitter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
