"""YOLACT-550 (ResNet-50) predict against Mask R-CNN ResNet-50-FPN predict, same image, one process.

Both through the app's ``Segmenter.predict`` (preprocess, network, NMS, compact masks, Instance
list), on one generated 800x600 image, random weights (nothing is downloaded). Random heads give
no confident detections, so both are biased towards a realistic count: YOLACT's class logits get
a positive bias on a few classes (many priors then pass Detect's 0.05 and Fast NMS returns its
cap of 100, as eval.py with --score_threshold 0 does on a busy image); Mask R-CNN's box classifier
is scaled x40 as in bench_maskrcnn_trace.py, with torchvision's 0.05 score threshold (cap 100).
Runs are interleaved (yolact, maskrcnn, yolact, ...) so load changes hit both.

Peak memory, measured in a fresh subprocess per model: on CPU the process's peak resident set
(VmHWM: weights + activations + the Python/torch runtime), printed with the delta over the
RSS right after importing torch; on CUDA ``torch.cuda.max_memory_allocated`` (tensors only).

    python bench/bench_yolact_vs_maskrcnn.py [--runs 5] [--warmup 2] [--device cpu|cuda] [--threads N]
                                             [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.models import create_segmenter  # noqa: E402
from engine.synthetic import generate_image  # noqa: E402

TARGET_RATIO = 0.6


def build(name: str, device: str | None):
    """The two segmenters, biased so that detections come out of random weights."""
    torch.manual_seed(0)
    if name == "yolact":
        seg = create_segmenter("yolact", "yolact_resnet50", weights="random", device=device, score_thresh=0)
        c = seg.cfg.num_classes
        with torch.no_grad():
            bias = seg.model.prediction_layers[0].conf_layer.bias.view(3, c)
            bias[:, 1 + torch.randperm(c - 1)[:5]] += 5
    else:
        seg = create_segmenter("maskrcnn", "maskrcnn_resnet50_fpn", weights="random", device=device, score_thresh=0.05)
        with torch.no_grad():
            seg.model.roi_heads.box_predictor.cls_score.weight.mul_(40)
    return seg


def bench_image() -> np.ndarray:
    return generate_image(np.random.default_rng(0), (600, 800), n_objects=(6, 10)).image


def _peak_rss_mb() -> float:
    """This process's peak resident set: VmHWM (per address space, so not inherited through exec the
    way ru_maxrss is on Linux), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(name: str, device: str | None) -> int:
    """Build one model, predict twice, print its peak memory as JSON."""
    base = _peak_rss_mb()
    seg = build(name, device)
    image = bench_image()
    cuda = seg.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        n = len(seg.predict(image))
    out = {"maxrss_mb": _peak_rss_mb(), "base_mb": base, "instances": n}
    if cuda:
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))
    return 0


def measure_memory(name: str, device: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--threads", str(torch.get_num_threads())]
    cmd += ["--device", device] if device else []
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the two memory subprocesses")
    parser.add_argument("--child", choices=["yolact", "maskrcnn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        return child(args.child, args.device)

    segs = {"yolact": build("yolact", args.device), "maskrcnn": build("maskrcnn", args.device)}
    image = bench_image()
    device = segs["yolact"].device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    counts = {}
    for _ in range(args.warmup):
        for name, seg in segs.items():
            counts[name] = len(seg.predict(image))
    times: dict[str, list[float]] = {name: [] for name in segs}
    for _ in range(args.runs):
        for name, seg in segs.items():
            sync()
            start = time.perf_counter()
            seg.predict(image)
            sync()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}

    print(
        f"image 800x600, device {device}, {torch.get_num_threads()} threads, random weights (biased heads), "
        f"median of {args.runs} runs after {args.warmup} warm-up"
    )
    labels = {"yolact": "yolact_resnet50 (550x550)", "maskrcnn": "maskrcnn_resnet50_fpn (min_size 800)"}
    for name in segs:
        print(
            f"{labels[name]:>38}: median {med[name] * 1000:8.1f} ms  (min {min(times[name]) * 1000:.1f} ms, "
            f"{counts[name]} instances)"
        )
    ratio = med["yolact"] / med["maskrcnn"]
    print(f"yolact/maskrcnn predict time: {ratio:.2f}x (target <= {TARGET_RATIO:.2f}x)")
    if not args.no_memory:
        del segs
        for name in ("yolact", "maskrcnn"):
            mem = measure_memory(name, args.device)
            delta = mem["maxrss_mb"] - mem["base_mb"]
            line = f"{labels[name]:>38}: peak RSS {mem['maxrss_mb']:.0f} MB (+{delta:.0f} MB over the process"
            line += " after importing torch)"
            if "cuda_peak_mb" in mem:
                line += f", CUDA peak allocated {mem['cuda_peak_mb']:.0f} MB"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
