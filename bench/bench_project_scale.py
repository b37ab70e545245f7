"""The project store at dataset scale, against MaskScope 0.1's JSON autosave measured in the same run.

Builds a project of ``--images`` x ``--instances`` (default 10,000 x 20) generated instances in a
temporary folder, then prints one line per figure:
- edit commit latency (median, p99): an edit (one instance of one image reshaped, as a brush
  stroke does) from hand-off to the writer thread until it is committed;
- worst GUI-thread stall during 200 edits: the time the calling thread spends per edit (the
  diff and the hand-off; the writer thread does the encoding and the commit);
- open time (the store opened and the file list's per-image summaries read);
- export time (COCO, RLE, written atomically);
- resident memory after open (a fresh process opens the project: ``--measure-open``).
The baseline is 0.1's design on the same data: every edit rewrote the whole project as one COCO
JSON (``build_coco`` + atomic write) on the GUI thread, and opening parsed that JSON.

    python bench/bench_project_scale.py                  # 10,000 x 20 (a few minutes on 2 cores)
    python bench/bench_project_scale.py --images 1000    # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.annotations import AnnotatedInstance, ClassList  # noqa: E402
from engine.coco_io import build_coco, dumps, load_coco  # noqa: E402
from engine.fileio import atomic_write_text  # noqa: E402
from engine.masks import CroppedMask  # noqa: E402
from engine.project import Project, store_path_for  # noqa: E402
from engine.store.store import ProjectStore  # noqa: E402

IMAGE_SIZE = (480, 640)  # (height, width); no image files are needed: sizes are in the store
CLASSES = ["person", "car", "dog", "cat", "bicycle"]


def _blob(rng: np.random.Generator) -> CroppedMask:
    h, w = (int(v) for v in rng.integers(12, 80, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    bits = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 < 1.0
    x0, y0 = int(rng.integers(0, IMAGE_SIZE[1] - w)), int(rng.integers(0, IMAGE_SIZE[0] - h))
    return CroppedMask(x0, y0, bits, IMAGE_SIZE)


def build(folder: Path, images: int, instances: int) -> float:
    """Write the project straight through the store (one transaction per 500 images)."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    store = ProjectStore(store_path_for(folder))
    store.sync_classes(ClassList(CLASSES).categories)
    for first in range(0, images, 500):
        with store.transaction():
            for k in range(first, min(first + 500, images)):
                insts = [
                    (j, AnnotatedInstance(j + 1, CLASSES[(k + j) % len(CLASSES)], _blob(rng), source="import"))
                    for j in range(instances)
                ]
                store.write_image(f"img_{k:05d}.jpg", IMAGE_SIZE, insts, (), [i.id for _, i in insts])
    store.close()
    return time.perf_counter() - start


def measure_open(folder: Path) -> None:
    """(Run in a fresh process.) Open time and resident memory after open, as JSON on stdout."""
    start = time.perf_counter()
    project = Project.open(folder, background=True)
    run = project.active_run
    summaries = project.summaries(run)
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "images": len(summaries)}))
    project.close()


def edits(folder: Path, count: int) -> tuple[list[float], list[float]]:
    """``count`` brush-like edits through a background writer: (caller stalls, commit latencies) in ms."""
    rng = np.random.default_rng(1)
    project = Project.open(folder, background=True)
    names = [f"img_{k:05d}.jpg" for k in rng.integers(0, _image_count(project), count)]
    stalls = []
    for name in names:
        ann = project.annotations(name)  # switching images reads one image: not part of the edit
        target = ann.instances[int(rng.integers(0, len(ann)))]
        mask = _blob(rng)
        start = time.perf_counter()
        ann.replace(target.with_mask(mask))
        stalls.append((time.perf_counter() - start) * 1000)
        time.sleep(0.005)  # a user does not stroke 200 times in one millisecond
    project.flush()
    latencies = [s * 1000 for s in project.writer.latencies[-count:]]
    project.close()
    return stalls, latencies


def _image_count(project: Project) -> int:
    return len(project.store.images())


def baseline(folder: Path, json_path: Path) -> tuple[float, float]:
    """0.1's design: open = parse the project JSON; every edit = rewrite all of it (build + write)."""
    start = time.perf_counter()
    dataset = load_coco(json_path)
    open_s = time.perf_counter() - start
    classes = ClassList(dataset.categories)
    start = time.perf_counter()
    coco, _ = build_coco(dataset.images, classes, "auto")
    atomic_write_text(folder / "autosave.json", dumps(coco))
    return open_s, time.perf_counter() - start


def line(name: str, value: float, unit: str, target: float, base: float | None = None) -> None:
    ratio = f", {value / base:.4f}x of 0.1's {base:.1f} {unit}" if base else ""
    ok = "ok" if value < target else "OVER TARGET"
    print(f"{name}: {value:.1f} {unit} (target < {target:g} {unit}{ratio}) {ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--measure-open", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_open:
        measure_open(args.measure_open)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        built = build(folder, args.images, args.instances)
        print(f"built {args.images:,} images x {args.instances} instances in {built:.1f} s")
        opened = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--measure-open", str(folder)], check=True, capture_output=True, text=True
            ).stdout
        )
        project = Project.open(folder)
        start = time.perf_counter()
        stats = project.export(folder / "export.json", "rle")
        export_s = time.perf_counter() - start
        project.close()
        base_open, base_edit = baseline(folder, folder / "export.json")
        stalls, latencies = edits(folder, args.edits)
        p99 = float(np.percentile(latencies, 99))
        line("edit commit latency median", statistics.median(latencies), "ms", 10, base_edit * 1000)
        line("edit commit latency p99", p99, "ms", 10, base_edit * 1000)
        line(f"worst GUI-thread stall in {args.edits} edits", max(stalls), "ms", 16, base_edit * 1000)
        line("open time (store + file-list summaries)", opened["seconds"], "s", 2, base_open)
        line(f"export time ({stats.annotations:,} annotations)", export_s, "s", 15)
        line("resident memory after open", opened["rss_mb"], "MB", 500)


if __name__ == "__main__":
    main()
