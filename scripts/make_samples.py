"""Write the bundled sample images ``resources/samples/sample_NN.jpg``.

They are scenes from the same generator the demo model is trained on (engine.synthetic: shaded,
textured shapes on noise/gradient/stripe grounds), so the demo model has something it knows to
segment out of the box. Deterministic: the same seeds give the same files.

    python scripts/make_samples.py [--out resources/samples] [--count 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.synthetic import DEMO_CLASSES, generate_image  # noqa: E402

SIZE = (480, 640)  # height, width: a typical photo aspect ratio, small enough to ship
MAX_BYTES = 300_000
# Generator streams picked for variety: textured grounds (noise, stripes) and overlapping shapes.
STREAMS = (5, 4, 3, 10, 7, 8)


def make_samples(out: Path, count: int = 4, seed: int = 2024) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, stream in enumerate(STREAMS[:count]):
        rng = np.random.default_rng([seed, stream])
        sample = generate_image(rng, SIZE, DEMO_CLASSES, n_objects=(5, 9), radius_range=(0.07, 0.2))
        path = out / f"sample_{i + 1:02d}.jpg"
        bgr = cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)
        for quality in (92, 85, 75):  # stay under the size budget for the repository
            ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(data) <= MAX_BYTES:
                break
        path.write_bytes(data.tobytes())
        written.append(path)
        print(f"{path.relative_to(ROOT)}: {len(sample.labels)} shapes, {len(data) // 1024} KB")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "samples")
    parser.add_argument("--count", type=int, default=4, choices=range(1, len(STREAMS) + 1))
    args = parser.parse_args(argv)
    make_samples(args.out, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
