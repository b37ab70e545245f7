"""Write the bundled samples ``resources/samples/sample_NN.jpg`` and their ground truth
``resources/samples/annotations.json`` (COCO, written with engine.coco_io).

The samples come from the demo models' training distribution with a held-out seed (see
engine.training.demo_samples for the recipe and the streams kept). ``--screen N`` re-runs the
screening that picked them: candidates 0..N-1, each checked with both demo models (right class and
mask IoU >= 0.9 for every shape at the window's default threshold, no extra detection above it).

    python scripts/make_samples.py                 # write the samples and annotations.json
    python scripts/make_samples.py --screen 260    # list the candidates both demo models get right
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.training.demo_samples import (  # noqa: E402
    SAMPLES_DIR,
    check_prediction,
    decode_jpeg,
    encode_jpeg,
    generate_sample,
    write_samples,
)


def screen(n: int) -> None:
    """Print every candidate stream and whether both demo models get all of its shapes right."""
    import torch

    from engine.models import load_segmenter
    from engine.training.demo import RECIPES, demo_path

    torch.set_num_threads(1)
    segs = {arch: load_segmenter(demo_path(arch), device="cpu", score_thresh=0.05) for arch in RECIPES}
    for stream in range(n):
        sample = generate_sample(stream)
        image = decode_jpeg(encode_jpeg(sample.image))  # what the shipped JPEG will give the models
        names = [sample.classes[int(k)] for k in sample.labels]
        verdicts = []
        for arch, seg in segs.items():
            matches, extra = check_prediction(seg.predict(image), sample.masks, names)
            ok = all(m.ok for m in matches) and extra == 0
            shapes = " ".join(f"{m.gt_label}->{m.pred_label}:{m.iou:.3f}" for m in matches)
            verdicts.append((ok, f"{arch}[{shapes}; extra {extra}]"))
        mark = "KEEP" if all(ok for ok, _ in verdicts) else "    "
        print(f"{mark} {stream:4d} " + " ".join(text for _, text in verdicts), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    parser.add_argument("--screen", type=int, metavar="N", help="screen candidates 0..N-1 instead of writing")
    args = parser.parse_args(argv)
    if args.screen:
        screen(args.screen)
        return 0
    for path in write_samples(args.out):
        print(f"{path}: {path.stat().st_size // 1024} KB")
    print(f"{args.out / 'annotations.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
