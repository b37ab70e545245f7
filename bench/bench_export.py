"""Export speed: a 1000-image project with 20 instances per image (masks in memory, no image files).

Prints one line per figure: COCO export with RLE masks (target < 10 s), with polygons, and the
baseline it is compared with (pycocotools encoding a full-image array per instance, measured on a
subset and scaled up).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.annotations import ClassList, ImageAnnotations  # noqa: E402
from engine.coco_io import export_coco  # noqa: E402
from engine.masks import CroppedMask  # noqa: E402

N_IMAGES, PER_IMAGE, H, W = 1000, 20, 480, 640
TARGET_S = 10.0
CLASSES = ["circle", "oval", "blob", "thing"]


def random_ellipse(rng: np.random.Generator) -> CroppedMask:
    """An ellipse drawn on its own small patch, placed inside the image."""
    ax, ay = int(rng.integers(6, 70)), int(rng.integers(6, 70))
    r = max(ax, ay)
    patch = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    cv2.ellipse(patch, (r, r), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    x0, y0 = int(rng.integers(0, W - patch.shape[1])), int(rng.integers(0, H - patch.shape[0]))
    return CroppedMask(x0, y0, patch.astype(bool), (H, W)).tight()


def make_project(seed: int = 0) -> list[ImageAnnotations]:
    rng = np.random.default_rng(seed)
    images = []
    for i in range(N_IMAGES):
        ann = ImageAnnotations(f"images/{i:06d}.jpg", W, H)
        for _ in range(PER_IMAGE):
            ann.add_new(CLASSES[int(rng.integers(len(CLASSES)))], random_ellipse(rng))
        images.append(ann)
    return images


def main() -> int:
    start = time.perf_counter()
    images = make_project()
    classes = ClassList(CLASSES)
    n = N_IMAGES * PER_IMAGE
    print(f"generated {N_IMAGES} images x {PER_IMAGE} instances in memory: {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export.json"
        stats = export_coco(out, images, classes, "rle")
        rle_s = stats.seconds
        size_mb = out.stat().st_size / 1e6
        print(
            f"export {N_IMAGES} images x {PER_IMAGE} instances: {rle_s:.2f} s (target < {TARGET_S:.0f} s, "
            f"ratio {rle_s / TARGET_S:.2f}; {size_mb:.1f} MB, {n / rle_s:,.0f} instances/s)"
        )
        from pycocotools.coco import COCO

        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(out))
        assert len(coco.anns) == n, len(coco.anns)
        print(f"check: pycocotools loads the {n} annotations in {time.perf_counter() - t:.2f} s")

        stats = export_coco(out, images, classes, "polygons")
        print(
            f"export {N_IMAGES} images x {PER_IMAGE} instances, polygons: {stats.seconds:.2f} s "
            f"(ratio {stats.seconds / rle_s:.2f} vs RLE; {stats.polygons} polygons, "
            f"{stats.rle_for_holes} kept as RLE; {out.stat().st_size / 1e6:.1f} MB)"
        )

    # Baseline: pycocotools on a full-image array per instance, on a subset.
    from engine.masks import encode_rle

    subset = images[:50]
    t = time.perf_counter()
    for ann in subset:
        for inst in ann:
            encode_rle(inst.mask.to_full())
    base_s = (time.perf_counter() - t) * N_IMAGES / len(subset)
    t = time.perf_counter()
    from engine.masks import encode_cropped

    for ann in subset:
        for inst in ann:
            encode_cropped(inst.mask)
    ours_s = (time.perf_counter() - t) * N_IMAGES / len(subset)
    print(
        f"RLE encoding alone, {n} masks: cropped codec {ours_s:.2f} s vs full-image pycocotools "
        f"{base_s:.2f} s (scaled from {len(subset)} images; ratio {ours_s / base_s:.2f})"
    )
    return 0 if rle_s < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
