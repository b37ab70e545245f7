"""Fine-tuning: teach the demo model a class it has never seen, on 30 images, within 10 CPU minutes.

    python bench/bench_finetune.py                 # Mask R-CNN demo model, 10 min budget
    python bench/bench_finetune.py --quick         # short run: 2 min budget, fewer test images
    python bench/bench_finetune.py --arch yolact

1. 30 generated images of ``engine.synthetic.UNSEEN_CLASS`` ("cross"; the demo models know only
   circle, square, triangle, star, ring) and 30 more as the test set (other seed).
2. Mask AP50 of that class before (the demo model has no such class: ~0) and after fine-tuning with
   the ordinary ``Trainer`` (classes ["cross"]: class heads re-initialised, the rest kept; stem and
   first stage frozen; Mask R-CNN with the demo recipe's training-time RoI sampling), stopped at the
   time budget. Target: from ~0 to >= 0.6.
3. Training throughput of the Trainer against a bare loop over the same dataset and model
   (torchvision's ``model(images, targets)`` for Mask R-CNN, ``losses`` for YOLACT; same optimizer
   and BatchNorm mode, no schedule, callbacks, clipping or checks). Target: ratio >= 0.9. Measured in rounds of one
   run each, back to back in this process, in alternating order; wall-clock and CPU-time ratios
   per round and their medians (CPU time is far less disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.models import load_segmenter  # noqa: E402
from engine.synthetic import UNSEEN_CLASS, write_coco_dataset  # noqa: E402
from engine.training.callbacks import TrainEvent  # noqa: E402
from engine.training.data import AugmentConfig, InstanceDataset, collate, load_coco_source  # noqa: E402
from engine.training.demo import DEMO_DIR, RECIPES, apply_training_sampling, demo_path  # noqa: E402
from engine.training.evaluate import evaluate_segmenter  # noqa: E402
from engine.training.setup import build_for_training, freeze_backbone, set_batchnorm_eval  # noqa: E402
from engine.training.trainer import TrainConfig, Trainer  # noqa: E402

TRAIN_SEED, TEST_SEED = 7100, 7200
TARGET_AP50, TARGET_RATIO = 0.6, 0.9


def finetune_config(arch: str, epochs: int) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        batch_size=4,
        optimizer="adamw",
        lr=2e-4 if arch == "maskrcnn" else 5e-4,
        weight_decay=1e-4,
        schedule="cosine",
        warmup_iters=20,
        val_fraction=0.0,  # scored on the separate test set
        freeze=2,
        seed=0,
        eval_every=0,
    )


class TimeBudget:
    """Callback: cancel once ``seconds`` of training have passed (the model keeps what it learnt)."""

    def __init__(self, seconds: float, cancel: threading.Event) -> None:
        self.seconds, self.cancel, self.start = seconds, cancel, None

    def __call__(self, event: TrainEvent) -> None:
        if event.kind == "start":
            self.start = time.perf_counter()
        elif self.start is not None and time.perf_counter() - self.start > self.seconds:
            self.cancel.set()


class StepClock:
    """Wall and process CPU time of every optimizer step (a callback for the Trainer, ``tick`` for
    the bare loop). CPU time counts only this process's work, so other load on a shared machine
    disturbs it far less than the wall clock."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def tick(self) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def __call__(self, event: TrainEvent) -> None:
        if event.kind == "step":
            self.tick()

    def rates(self, batch: int, warmup: int) -> tuple[float, float]:
        """(images/s of wall time, images/s of CPU time) after ``warmup`` steps."""
        wall, cpu = self.wall[warmup:], self.cpu[warmup:]
        images = (len(wall) - 1) * batch
        return images / (wall[-1] - wall[0]), images / max(cpu[-1] - cpu[0], 1e-9)


def bare_loop(seg, dataset: InstanceDataset, cfg: TrainConfig, iters: int) -> StepClock:
    """A plain training loop: batches of the dataset, forward, sum, backward, step."""
    model = seg.model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(dataset), generator=g).tolist()
    batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate)
    model.train()
    if not cfg.train_bn:  # the same work as the Trainer: BatchNorm on running statistics
        set_batchnorm_eval(model)
    clock = StepClock()
    while len(clock.wall) < iters:
        for images, targets in loader:
            if seg.architecture == "maskrcnn":  # torchvision's own interface: labels 1..N
                tv = [{"boxes": t["boxes"], "labels": t["labels"] + 1, "masks": t["masks"]} for t in targets]
                losses = model(images, tv)
            else:
                losses = seg.losses(images, targets)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            clock.tick()
            if len(clock.wall) >= iters:
                break
    return clock


def student(arch: str, weights: Path):
    """The demo model set up for the new class, with the demo recipe's training-time RoI sampling."""
    return apply_training_sampling(build_for_training([UNSEEN_CLASS], arch, weights=weights, device="cpu"))


def throughput(arch: str, weights: Path, source, cfg: TrainConfig, iters: int, rounds: int) -> list[dict]:
    """Per round: Trainer and bare loop, ``iters`` steps each (2 warm-up steps not counted), in
    alternating order (Trainer first in odd rounds) so that a drift in machine load favours neither."""
    rows = []
    for r in range(rounds):
        row = {"round": r + 1, "first": "Trainer" if r % 2 == 0 else "bare loop"}
        for which in ("trainer", "bare") if r % 2 == 0 else ("bare", "trainer"):
            seg = student(arch, weights)
            if which == "trainer":
                clock = StepClock()
                run_cfg = TrainConfig(**{**cfg.to_dict(), "max_iters": iters, "epochs": 1000, "clip_grad_norm": None})
                Trainer(seg, source, run_cfg, None, [clock]).fit()
            else:
                freeze_backbone(seg, cfg.freeze)
                ds = InstanceDataset(source.records, AugmentConfig(cfg.hflip, cfg.scale), cfg.seed)
                clock = bare_loop(seg, ds, cfg, iters)
            row[which] = clock.rates(cfg.batch_size, 2)
        rows.append(row)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=tuple(RECIPES), default="maskrcnn")
    p.add_argument("--models", type=Path, default=DEMO_DIR)
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    p.add_argument("--epochs", type=int, default=60, help="epochs of the schedule (cut by the budget)")
    p.add_argument("--test-images", type=int, default=30)
    p.add_argument("--speed-iters", type=int, default=8, help="steps per throughput run")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds (Trainer and bare loop each)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    p.add_argument("--quick", action="store_true", help="2 min budget, 10 test images, 5-step speed runs")
    p.add_argument("--speed-only", action="store_true", help="only the Trainer vs bare-loop throughput")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.minutes, args.test_images, args.speed_iters, args.epochs = 2.0, 10, 5, 12
    weights = demo_path(args.arch, args.models)
    if not weights.is_file():
        print(f"finetune_{args.arch}: missing {weights} (python scripts/train_demo_models.py --arch {args.arch})")
        return 1
    size = RECIPES[args.arch].image_size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = load_coco_source(write_coco_dataset(tmp / "train", 30, size, [UNSEEN_CLASS], TRAIN_SEED))
        test = load_coco_source(write_coco_dataset(tmp / "test", args.test_images, size, [UNSEEN_CLASS], TEST_SEED))

        if args.speed_only:
            report_throughput(
                args.arch, weights, train, finetune_config(args.arch, args.epochs), args.speed_iters, args.rounds
            )
            return 0
        demo = load_segmenter(weights, device="cpu")
        before = evaluate_segmenter(demo, test)["per_class"][UNSEEN_CLASS]["mask_AP50"]

        torch.manual_seed(0)
        seg = student(args.arch, weights)
        cfg = finetune_config(args.arch, args.epochs)
        cancel = threading.Event()
        start = time.perf_counter()
        result = Trainer(seg, train, cfg, None, [TimeBudget(args.minutes * 60, cancel)], cancel).fit()
        minutes = (time.perf_counter() - start) / 60
        after = evaluate_segmenter(seg, test)["per_class"][UNSEEN_CLASS]["mask_AP50"]
        print(
            f"finetune_{args.arch}: '{UNSEEN_CLASS}' mask AP50 {before:.3f} -> {after:.3f} "
            f"(target >= {TARGET_AP50}, ratio {after / TARGET_AP50:.2f}) after {result.iterations} iterations, "
            f"{minutes:.1f} min CPU, 30 training images, {args.test_images} test images"
        )
        report_throughput(args.arch, weights, train, cfg, args.speed_iters, args.rounds)
    return 0


def report_throughput(arch: str, weights: Path, train, cfg: TrainConfig, iters: int, rounds: int) -> None:
    """One line per round, then the medians of the per-round ratios (each ratio compares two runs
    measured back to back in this process)."""
    rows = throughput(arch, weights, train, cfg, iters, rounds)
    wall_ratios, cpu_ratios = [], []
    for row in rows:
        (tw, tc), (bw, bc) = row["trainer"], row["bare"]
        wall_ratios.append(tw / bw)
        cpu_ratios.append(tc / bc)
        print(
            f"finetune_{arch} round {row['round']} ({row['first']} first): Trainer {tw:.2f} images/s "
            f"({tc:.2f} per CPU s), bare loop {bw:.2f} ({bc:.2f} per CPU s); "
            f"ratio {wall_ratios[-1]:.2f} wall, {cpu_ratios[-1]:.2f} CPU"
        )
    trainer = statistics.median(r["trainer"][0] for r in rows)
    bare = statistics.median(r["bare"][0] for r in rows)
    print(
        f"finetune_{arch}: Trainer {trainer:.2f} images/s vs bare loop {bare:.2f} images/s "
        f"(ratio {statistics.median(wall_ratios):.2f} wall, {statistics.median(cpu_ratios):.2f} CPU time, "
        f"median of {rounds} rounds; target >= {TARGET_RATIO}, {iters} steps per run, "
        f"{torch.get_num_threads()} torch threads)"
    )


if __name__ == "__main__":
    sys.exit(main())
