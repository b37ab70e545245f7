"""Demo models: mask AP50 on held-out generated images and on the bundled samples, the per-shape
check of the samples, and CPU inference time per image.

    python bench/bench_demo_models.py            # 100 held-out images per model
    python bench/bench_demo_models.py --n 10     # short run

Targets: held-out mask AP50 >= 0.90 (Mask R-CNN) and >= 0.80 (YOLACT); on the bundled samples
(resources/samples/annotations.json) mask AP50 >= 0.95 for both, and every sample shape found with
the right class and mask IoU >= 0.9 at the window's default threshold. The held-out images come from
the same generator as the training data but with another seed (9000 + architecture index), so no
training image is among them. One line per figure, with its ratio to the target. Exit status 1
only when a model file is missing (a missed target shows as a ratio below 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.models import load_segmenter  # noqa: E402
from engine.synthetic import DEMO_CLASSES, write_coco_dataset  # noqa: E402
from engine.training.data import load_coco_source, read_rgb  # noqa: E402
from engine.training.demo import DEMO_DIR, RECIPES, demo_path  # noqa: E402
from engine.training.demo_samples import (  # noqa: E402
    ANNOTATIONS,
    DEFAULT_THRESHOLD,
    MIN_MASK_IOU,
    SAMPLES_DIR,
    check_prediction,
    load_ground_truth,
)
from engine.training.evaluate import evaluate_segmenter  # noqa: E402

TARGET_AP50 = {"maskrcnn": 0.90, "yolact": 0.80}
TARGET_SAMPLES_AP50 = 0.95
HELDOUT_SEED = 9000


def bench(arch: str, n_images: int, folder: Path, threads: int | None) -> bool:
    """Print the figures of one demo model; False when it could not run (model missing)."""
    path = demo_path(arch, folder)
    if not path.is_file():
        print(f"demo_{arch}: missing {path} (train it: python scripts/train_demo_models.py --arch {arch})")
        return False
    recipe = RECIPES[arch]
    seg = load_segmenter(path, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        seed = HELDOUT_SEED + list(RECIPES).index(arch)
        source = load_coco_source(write_coco_dataset(tmp, n_images, recipe.image_size, DEMO_CLASSES, seed))
        metrics = evaluate_segmenter(seg, source)
        images = [read_rgb(r.path) for r in source.records[: min(20, n_images)]]
        if threads:
            torch.set_num_threads(threads)
        seg.predict(images[0])  # warm-up
        times = []
        for img in images:
            t = time.perf_counter()
            seg.predict(img)
            times.append(time.perf_counter() - t)
    samples = evaluate_segmenter(seg, load_coco_source(SAMPLES_DIR / ANNOTATIONS))
    shapes = right = 0
    worst = 1.0
    for img_path, masks, names in load_ground_truth(SAMPLES_DIR):
        matches, _extra = check_prediction(seg.predict(read_rgb(img_path)), masks, names)
        shapes += len(matches)
        right += sum(m.ok for m in matches)
        worst = min([worst, *(m.iou if m.pred_label == m.gt_label else 0.0 for m in matches)])
    s_ap50 = samples["mask"]["AP50"]
    print(
        f"demo_{arch}: bundled samples mask AP50 {s_ap50:.3f} (target >= {TARGET_SAMPLES_AP50:.2f}, ratio "
        f"{s_ap50 / TARGET_SAMPLES_AP50:.2f}); {right}/{shapes} shapes right class with mask IoU >= {MIN_MASK_IOU} "
        f"at score >= {DEFAULT_THRESHOLD} (lowest IoU {worst:.3f})"
    )
    ap50 = metrics["mask"]["AP50"]
    target = TARGET_AP50[arch]
    ms = 1000 * statistics.median(times)
    print(
        f"demo_{arch}: mask AP50 {ap50:.3f} (target >= {target:.2f}, ratio {ap50 / target:.2f}) "
        f"mask AP {metrics['mask']['AP']:.3f} box AP50 {metrics['box']['AP50']:.3f} on {n_images} held-out images"
    )
    print(
        f"demo_{arch}: CPU inference {ms:.1f} ms/image median ({recipe.image_size} px images, "
        f"{torch.get_num_threads()} threads, {path.stat().st_size / 1e6:.1f} MB file)"
    )
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="held-out images per model (default 100)")
    p.add_argument("--arch", choices=(*RECIPES, "both"), default="both")
    p.add_argument("--models", type=Path, default=DEMO_DIR, help="folder with the demo models")
    p.add_argument("--threads", type=int, help="torch threads for the timing")
    args = p.parse_args()
    archs = list(RECIPES) if args.arch == "both" else [args.arch]
    ok = [bench(a, args.n, args.models, args.threads) for a in archs]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
