"""Progress events of a training run and the stock listeners: tqdm bar, JSON-lines log, and a
cancel-file watcher (lets a GUI stop a training subprocess without killing it mid-write)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm


@dataclass
class TrainEvent:
    """One progress report. ``kind``: 'start', 'step', 'skipped' (non-finite loss), 'eval',
    'checkpoint', 'epoch_end', 'cancelled', 'done'."""

    kind: str
    iteration: int  # optimizer steps taken so far (skipped steps included)
    total_iterations: int
    epoch: int  # 0-based epoch in progress (or just finished for 'epoch_end'/'checkpoint')
    epochs: int
    losses: dict[str, float] = field(default_factory=dict)
    loss: float = float("nan")
    lr: float = 0.0
    images_per_s: float = 0.0
    eta_s: float = float("nan")
    metrics: dict | None = None
    checkpoint: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


Callback = Callable[[TrainEvent], None]


def dispatch(callbacks: Iterable[Callback], event: TrainEvent) -> None:
    for cb in callbacks:
        cb(event)


class JsonlLogger:
    """Append every event as one JSON line (NaN written as null), flushed at once so a reader in
    another process sees progress live."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: TrainEvent) -> None:
        line = json.dumps(_finite(event.to_dict()))
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class CancelFileWatcher:
    """Set ``cancel`` once ``path`` exists; checked on every event (so once per iteration)."""

    def __init__(self, path: str | Path, cancel: threading.Event) -> None:
        self.path = Path(path)
        self.cancel = cancel

    def __call__(self, event: TrainEvent) -> None:
        if self.path.exists():
            self.cancel.set()


class TqdmProgress:
    """A tqdm bar over the iterations with the loss, lr and throughput; eval/checkpoint lines below."""

    def __init__(self, disable: bool = False) -> None:
        self.bar: tqdm | None = None
        self.disable = disable

    def __call__(self, event: TrainEvent) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=event.total_iterations, initial=event.iteration, unit="it", disable=self.disable)
        if event.kind in ("step", "skipped"):
            self.bar.n = event.iteration
            self.bar.set_postfix(
                epoch=f"{event.epoch + 1}/{event.epochs}",
                loss=f"{event.loss:.3f}",
                lr=f"{event.lr:.2e}",
                img_s=f"{event.images_per_s:.1f}",
            )
            self.bar.refresh()
        elif event.kind == "eval" and event.metrics:
            self.bar.write(f"epoch {event.epoch + 1}: " + format_metrics(event.metrics))
        elif event.kind == "checkpoint":
            self.bar.write(f"epoch {event.epoch + 1}: saved {event.checkpoint}")
        elif event.kind in ("done", "cancelled"):
            if event.message:
                self.bar.write(event.message)
            self.bar.close()


def format_metrics(metrics: dict) -> str:
    parts = []
    for kind in ("mask", "box"):
        m = metrics.get(kind)
        if m:
            parts.append(f"{kind} AP {m['AP']:.3f} AP50 {m['AP50']:.3f}")
    return ", ".join(parts) or "no metrics"
