"""Training subprocess for the GUI: ``python -m engine.training.worker_main --job JOB.json``.

The GUI runs fine-tuning in this separate process so that a crash, an out-of-memory kill or a
hard cancel can never take the window down. The job file (``TrainJob``) names the data, the model,
its starting weights and the training settings. Progress comes back as one JSON object per line
on stdout (everything else the libraries print goes to stderr):

- ``{"kind": "status", "message"}``: what the worker is doing (loading data, building the model...)
- ``{"kind": "setup", "model", "device", "classes", "train_images", "val_images", "out_dir"}``
- ``{"kind": "start", "iteration", "total_iterations", "epochs"}``
- ``{"kind": "progress", "iteration", "total_iterations", "epoch", "epochs", "losses", "loss",
  "lr", "images_per_s", "eta_s", "skipped"}`` after every iteration
- ``{"kind": "eval", "stage": "before"|"after", "epoch", "metrics"}``: COCO AP on the held-out
  images, of the starting weights and after training (engine.training.evaluate)
- ``{"kind": "checkpoint", "path", "epoch"}``
- ``{"kind": "done", "cancelled", "checkpoint", "iterations", "metrics", "message"}`` (exit 0)
- ``{"kind": "error", "message", "error_type", "traceback"}`` (exit 1 for a user-fixable
  ``MaskScopeError``, 2 for anything else)

Cancel: a line ``cancel`` on stdin (or the job's ``cancel_file`` appearing) sets the trainer's
cancel event: it stops before the next iteration and saves ``last.safetensors``. With
``--exit-with-parent`` a closed stdin (the GUI went away) cancels the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO

from engine.errors import DataError, MaskScopeError

JOB_VERSION = 1
# The training settings a job may set (engine.training.trainer.TrainConfig fields).
TRAIN_KEYS = (
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "warmup_iters",
    "clip_grad_norm",
    "amp",
    "seed",
    "val_fraction",
    "freeze",
    "train_bn",
    "hflip",
    "scale",
    "max_iters",
    "eval_every",
    "keep_checkpoints",
)


@dataclass
class TrainJob:
    """Everything one training run needs; written by the GUI, read by the worker."""

    out_dir: str
    coco: str | None = None  # a COCO instances JSON ...
    images: str | None = None  # ... and its image folder (default: beside the JSON)
    project: str | None = None  # or a MaskScope project folder (read from its store in one read transaction)
    architecture: str | None = None  # maskrcnn | yolact; None: taken from a .safetensors ``weights``
    config: str | None = None
    weights: str | None = None  # our .safetensors, a .pth, "random", or None: the config's default
    device: str = "auto"  # auto | cpu | cuda[:N]
    train: dict = field(default_factory=dict)  # TrainConfig fields (TRAIN_KEYS); lr None: default
    threads: int | None = None  # torch CPU threads; None: torch's default
    eval_before: bool = True  # score the starting weights on the held-out images first
    cancel_file: str | None = None
    resume: str | None = None  # continue a run from this checkpoint of it (its training state beside it)
    version: int = JOB_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, path: str | Path) -> Path:
        from engine.fileio import atomic_write_text

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict, origin: str = "job") -> TrainJob:
        if not isinstance(data, dict):
            raise DataError(f"{origin}: a training job must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DataError(f"{origin}: unknown job fields {unknown}")
        if not data.get("out_dir"):
            raise DataError(f"{origin}: the job names no output folder (out_dir)")
        if bool(data.get("coco")) == bool(data.get("project")):
            raise DataError(f"{origin}: give exactly one data source, 'coco' (with 'images') or 'project'")
        if int(data.get("version", JOB_VERSION)) > JOB_VERSION:
            raise DataError(f"{origin}: job version {data['version']} is newer than this MaskScope understands")
        train = data.get("train") or {}
        if not isinstance(train, dict):
            raise DataError(f"{origin}: 'train' must be an object of training settings")
        bad = sorted(set(train) - set(TRAIN_KEYS))
        if bad:
            raise DataError(f"{origin}: unknown training settings {bad}; known: {', '.join(TRAIN_KEYS)}")
        return cls(**data)

    @classmethod
    def read(cls, path: str | Path) -> TrainJob:
        from engine.jsonio import read_json_file

        path = Path(path)
        try:  # the shared reader: regular files only, size and depth limits
            data = read_json_file(path, DataError)
        except DataError as exc:
            raise DataError(f"not a valid training job file: {exc}") from exc
        return cls.from_dict(data, str(path))


# --- the stdout protocol -----------------------------------------------------------------------
def _finite(value):
    """JSON has no NaN/Infinity: write null (the reader shows 'unknown')."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class Channel:
    """Writes protocol messages, one JSON object per line, flushed at once."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, kind: str, **payload) -> None:
        line = json.dumps(_finite({"kind": kind, **payload}), separators=(",", ":"))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def claim_stdout() -> IO[str]:
    """The real stdout becomes the protocol channel; fd 1 and ``sys.stdout`` now go to stderr, so
    nothing a library prints (pycocotools, warnings, C code) can corrupt a protocol line."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1)


def watch_stdin(stream: IO[str], cancel: threading.Event, cancel_on_eof: bool) -> threading.Thread:
    """Set ``cancel`` on a line 'cancel' (or, with ``cancel_on_eof``, when stdin closes)."""

    def loop() -> None:
        try:
            for line in stream:
                if line.strip().lower() == "cancel":
                    cancel.set()
        except (OSError, ValueError):
            pass
        if cancel_on_eof:
            cancel.set()

    thread = threading.Thread(target=loop, name="stdin-control", daemon=True)
    thread.start()
    return thread


class ProtocolCallback:
    """Trainer events -> protocol messages (see the module docstring)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def __call__(self, event) -> None:
        send = self.channel.send
        position = {
            "iteration": event.iteration,
            "total_iterations": event.total_iterations,
            "epoch": event.epoch,
            "epochs": event.epochs,
        }
        if event.kind == "start":
            send("start", **position, message=event.message)
        elif event.kind in ("step", "skipped"):
            send(
                "progress",
                **position,
                losses=event.losses,
                loss=event.loss,
                lr=event.lr,
                images_per_s=event.images_per_s,
                eta_s=event.eta_s,
                skipped=event.kind == "skipped",
                message=event.message,
            )
        elif event.kind == "eval":
            send("eval", stage="after", epoch=event.epoch + 1, iteration=event.iteration, metrics=event.metrics)
        elif event.kind == "checkpoint":
            send("checkpoint", path=event.checkpoint, epoch=event.epoch + 1, iteration=event.iteration)
        elif event.kind == "epoch_end":
            send("epoch_end", epoch=event.epoch + 1, iteration=event.iteration)
        # 'done' / 'cancelled' are sent by run_job with the whole result.


# --- the run ---------------------------------------------------------------------------------------
def _train_config(job: TrainJob, architecture: str):
    from engine.cli.train import DEFAULT_LR
    from engine.training.trainer import TrainConfig

    settings = dict(job.train)
    if settings.get("lr") is None:
        optimizer = settings.get("optimizer", "sgd")
        settings["lr"] = DEFAULT_LR["adamw"] if optimizer == "adamw" else DEFAULT_LR.get((architecture, "sgd"), 0.005)
    try:
        return TrainConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise DataError(f"invalid training settings {settings} ({exc})") from exc


def run_job(job: TrainJob, channel: Channel, cancel: threading.Event) -> int:
    """Train as ``job`` says, reporting on ``channel``. Returns the exit code (0: done or cancelled)."""
    import torch

    from engine.fileio import remove_stale_temp_files
    from engine.training.callbacks import Callback, CancelFileWatcher
    from engine.training.data import Cancelled, load_data
    from engine.training.setup import build_for_training
    from engine.training.trainer import Trainer, seed_everything

    if job.threads:
        torch.set_num_threads(max(1, int(job.threads)))
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out)  # temp files of checkpoint saves that a kill interrupted
    device = None if job.device in (None, "", "auto") else job.device

    channel.send("status", message=f"Reading {job.project or job.coco}")
    source = load_data(job.project, job.coco, job.images)
    channel.send("status", message="Building the model")
    seed_everything(int(job.train.get("seed", 0)))  # seeded initialisation of new class heads
    if job.resume:
        from engine.models import load_segmenter

        segmenter = load_segmenter(job.resume, device=device)
        if list(segmenter.class_names) != list(source.classes):
            raise DataError(
                f"{job.resume} was trained on classes {segmenter.class_names}, the data has {source.classes} now; "
                "start a new run instead of resuming."
            )
    else:
        segmenter = build_for_training(source.classes, job.architecture, job.config, job.weights, device)
    config = _train_config(job, segmenter.architecture)
    callbacks: list[Callback] = [ProtocolCallback(channel)]
    if job.cancel_file:
        callbacks.insert(0, CancelFileWatcher(job.cancel_file, cancel))
    run_info = {"command": "gui", "data": str(job.project or job.coco)}
    trainer = Trainer(segmenter, source, config, out, callbacks, cancel, None, run_info)
    channel.send(
        "setup",
        model=segmenter.describe(),
        architecture=segmenter.architecture,
        device=str(segmenter.device),
        classes=list(source.classes),
        train_images=len(trainer.train_set),
        val_images=len(trainer.val_ids),
        out_dir=str(out),
        config=config.to_dict(),
    )

    before = None
    try:
        if job.eval_before and not job.resume and trainer.val_ids and not cancel.is_set():
            channel.send("status", message=f"Scoring the starting weights on {len(trainer.val_ids)} held-out images")
            before = trainer.validate()
            channel.send("eval", stage="before", epoch=0, iteration=0, metrics=before)
        cancelled = cancel.is_set()
    except Cancelled:
        cancelled = True
    if cancelled:
        channel.send("done", cancelled=True, checkpoint=None, iterations=0, metrics=None,
                     message="Cancelled before training started.")  # fmt: skip
        return 0

    if job.resume:
        channel.send("status", message=f"Resuming from {Path(job.resume).name}")
    result = trainer.fit(resume=job.resume)
    ckpt = str(result.checkpoint) if result.checkpoint else None
    state = "Cancelled" if result.cancelled else "Finished"
    message = f"{state} after {result.iterations} iterations" + (f"; weights in {ckpt}" if ckpt else "")
    summary = {
        "checkpoint": ckpt,
        "cancelled": result.cancelled,
        "iterations": result.iterations,
        "images_per_s": result.images_per_s,
        "metrics_before": before,
        "metrics": result.metrics,
    }
    (out / "result.json").write_text(json.dumps(_finite(summary), indent=2), encoding="utf-8")
    channel.send(
        "done",
        cancelled=result.cancelled,
        checkpoint=ckpt,
        iterations=result.iterations,
        epochs_completed=result.epochs_completed,
        images_per_s=result.images_per_s,
        skipped_steps=result.skipped_steps,
        metrics=result.metrics,
        message=message,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.training.worker_main",
        description="Run one training job (the GUI's training process); progress as JSON lines on stdout.",
    )
    parser.add_argument("--job", type=Path, required=True, help="the job file (TrainJob as JSON)")
    parser.add_argument("--exit-with-parent", action="store_true", help="cancel the run when stdin closes")
    args = parser.parse_args(argv)

    channel = Channel(claim_stdout())
    cancel = threading.Event()
    watch_stdin(sys.stdin, cancel, args.exit_with_parent)
    channel.send("status", message="Worker started", pid=os.getpid())
    try:
        job = TrainJob.read(args.job)
        return run_job(job, channel, cancel)
    except MaskScopeError as exc:
        channel.send("error", message=str(exc), error_type=type(exc).__name__, traceback=traceback.format_exc())
        return 1
    except Exception as exc:  # the GUI shows it; the traceback goes along for a bug report
        channel.send(
            "error", message=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__,
            traceback=traceback.format_exc(),
        )  # fmt: skip
        return 2


if __name__ == "__main__":
    sys.exit(main())
