"""Prototype toggle speed: switch one prototype off and recompute one YOLACT detection's mask, on CPU.

A 550 config (yolact_base / resnet50) has 138x138x32 prototypes. The trace here is built by the
real postprocess (engine.yolact.postprocess + trace.build_trace) from smooth random prototypes and
coefficients; image sizes: 550x550 and a 640x480 photo. Figures (median of repeated runs, after a
warm-up), target < 50 ms each:

- recompose_mask: the engine's recomputation (P @ c, sigmoid, crop, upsample to the image, > 0.5);
- compose_detection: everything the prototype viewer asks for per toggle (also the weighted
  prototypes, from the channel-first maps the viewer keeps, and the pixel difference to the
  prediction's mask).

    python bench/bench_prototype_toggle.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from timing import report, timed  # noqa: E402  (bench/ is on sys.path when run as a script)

TARGET_MS = 50.0
PROTO = (138, 138, 32)
DETECTIONS = 20


def synthetic_trace(image_size: tuple[int, int], seed: int = 0):
    """A YolactTrace from the real postprocess, with smooth non-negative prototypes."""
    import torch.nn.functional as F

    from engine.yolact.postprocess import absolute_boxes, assemble_masks
    from engine.yolact.trace import build_trace

    gen = torch.Generator().manual_seed(seed)
    hp, wp, k = PROTO
    coarse = torch.randn((1, k, hp // 8, wp // 8), generator=gen) * 2.0
    proto = F.relu(F.interpolate(coarse, (hp, wp), mode="bilinear", align_corners=False))[0].permute(1, 2, 0)
    proto = proto.contiguous()
    coeffs = torch.tanh(torch.randn((DETECTIONS, k), generator=gen))
    centre = 0.15 + 0.7 * torch.rand((DETECTIONS, 2), generator=gen)
    half = 0.05 + 0.2 * torch.rand((DETECTIONS, 2), generator=gen)
    boxes = torch.cat([centre - half, centre + half], dim=1)
    det = {
        "box": boxes,
        "mask": coeffs,
        "class": torch.zeros(DETECTIONS, dtype=torch.int64),
        "score": torch.linspace(0.9, 0.2, DETECTIONS),
        "proto": proto,
    }
    h, w = image_size
    assembled = assemble_masks(proto, coeffs, boxes)
    return build_trace(proto, det, assembled, absolute_boxes(boxes, w, h), (550, 550), image_size)


def main() -> int:
    from engine.inspect import compose_detection, prototype_grid
    from engine.yolact.trace import recompose_mask

    torch.set_num_threads(1)  # the GUI thread's share of the CPU; more threads only help
    worst = 0.0
    for size in ((550, 550), (480, 640)):
        trace = synthetic_trace(size)
        reference = compose_detection(trace, 0).mask
        k = trace.num_prototypes
        # Switch off the prototype with the largest |coefficient| of detection 0: the biggest change.
        off = int(np.argmax(np.abs(trace.coefficients[0])))
        enabled = np.ones(k, bool)
        enabled[off] = False
        label = f"{PROTO[0]}x{PROTO[1]}x{PROTO[2]} prototypes, image {size[1]}x{size[0]}"
        ms = timed(lambda t=trace, e=enabled: recompose_mask(t, 0, e))
        report(f"recompose_mask, 1 prototype off ({label})", ms, TARGET_MS)
        maps = prototype_grid(trace).maps

        def viewer(t=trace, e=enabled, r=reference, m=maps) -> None:
            compose_detection(t, 0, e, reference_mask=r, prototype_maps=m).weighted  # noqa: B018 - computed on use

        ms_full = timed(viewer)
        report(f"compose_detection for the viewer ({label})", ms_full, TARGET_MS)
        worst = max(worst, ms, ms_full)
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
