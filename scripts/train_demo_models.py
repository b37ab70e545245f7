"""Train the demo models shipped in resources/models (Mask R-CNN and YOLACT on generated shapes).

Exact commands (CPU, from the repository root; each writes NAME.safetensors + NAME.json):

    python scripts/train_demo_models.py --arch maskrcnn   # -> resources/models/demo_maskrcnn.*
    python scripts/train_demo_models.py --arch yolact     # -> resources/models/demo_yolact.*

(``python main.py demo --train --arch both`` runs the same code.) Settings, also written into each
JSON sidecar under "demo" with the command line, the torch version and the final validation AP:

- Data: ``engine.synthetic.write_coco_dataset`` with the five DEMO_CLASSES (circle, square,
  triangle, star, ring), 800 images, 1-4 shapes each; Mask R-CNN: 128 px, data seed 1000;
  YOLACT: 160 px, data seed 2000. 5 % of the images (split seed 0) are held out for validation.
- Mask R-CNN ``maskrcnn_r18_fpn`` (GroupNorm ResNet-18 FPN, random init), network input 160 px
  (the 128 px images upscaled 1.25x; the shipped file's first 5 epochs ran at 128, its sidecar says so);
  5 epochs, batch 4, AdamW lr 6e-4 weight decay 1e-4, 100 warm-up iterations, cosine decay,
  gradient clip 10; flip 0.5, zoom jitter 0.75-1.25; training RoI sampling 128 per image,
  RPN 600/300 proposals before/after NMS (training only; inference keeps torchvision's values).
- YOLACT ``yolact_tiny`` (random init, 320 px input); 8 epochs, batch 8, AdamW lr 1e-3 weight
  decay 1e-4, 100 warm-up iterations, cosine, clip 10, BatchNorm with batch statistics; same
  augmentation.
- Zoom jitter resamples masks bilinearly like the image (before 2026-11-29: nearest, which moved
  them half a pixel; continuations record ``scale_jitter_masks``, absent: nearest).
- Seed 0 for initialisation, split, sampling and augmentation. Weights are stored as float16
  (loaded back into float32) to keep the two files small.

``--more-epochs N`` trains the shipped model N more epochs (same data and split, ``--lr-factor``
of the recipe's learning rate, default a third, cosine) and records that in its sidecar under "demo.continued".

``--quick N`` runs N iterations on 12 images (a smoke test of the pipeline; not a usable model).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.training.demo import DEMO_DIR, RECIPES, train_demo_models  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=(*RECIPES, "both"), default="both")
    p.add_argument("--out", type=Path, default=DEMO_DIR, help=f"output folder (default {DEMO_DIR})")
    p.add_argument("--work", type=Path, help="keep the generated data and epoch checkpoints here")
    p.add_argument("--quick", type=int, metavar="N", help="smoke test: N iterations on 12 images")
    p.add_argument("--more-epochs", type=int, metavar="N", help="continue the shipped model for N epochs")
    p.add_argument("--lr-factor", type=float, default=1 / 3, help="--more-epochs: fraction of the recipe's lr")
    p.add_argument("--device", help="cpu or cuda (default: CUDA when present)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = "python scripts/train_demo_models.py " + " ".join(shlex.quote(a) for a in argv)
    if args.more_epochs:
        from engine.training.callbacks import TqdmProgress
        from engine.training.demo import continue_demo_model
        from engine.training.evaluate import format_ap_table

        for name in list(RECIPES) if args.arch == "both" else [args.arch]:
            path, result = continue_demo_model(
                name, args.more_epochs, lr_factor=args.lr_factor, out_dir=args.out, work_dir=args.work,
                device=args.device, callbacks=[TqdmProgress(disable=args.quiet)], command=command.strip(),
            )  # fmt: skip
            if result.metrics:
                print(format_ap_table(result.metrics))
            print(f"{name}: {result.iterations} more iterations -> {path}")
        return 0
    return train_demo_models(args.arch, args.out, args.work, args.quick, args.device, command.strip(), args.quiet)


if __name__ == "__main__":
    sys.exit(main())
