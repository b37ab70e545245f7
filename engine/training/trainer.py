"""Fine-tune any ``Segmenter`` on a COCO instances set.

One loop for CPU, CUDA (AMP) and ``torchrun`` (DDP): seeded split and sampling, warm-up plus step
or cosine schedule, gradient clipping, non-finite steps skipped, cancel within one iteration,
a checkpoint (safetensors + JSON, optimizer state beside it) every epoch, resume from any of them.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from engine.errors import DataError, WeightsError
from engine.segmenter import Segmenter
from engine.training.callbacks import Callback, TrainEvent, dispatch
from engine.training.data import AugmentConfig, Cancelled, CocoSource, InstanceDataset, collate, split_by_image
from engine.training.ddp import DistContext, wrap_ddp
from engine.training.evaluate import evaluate_segmenter
from engine.training.schedule import LRSchedule, build_optimizer
from engine.training.setup import freeze_backbone, set_batchnorm_eval
from engine.training.state import resume_train_state, save_train_state
from engine.training.sync_bn import convert_sync_batchnorm, revert_sync_batchnorm

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 2
    optimizer: str = "sgd"  # or "adamw"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # or "step" / "constant"
    warmup_iters: int = 50
    warmup_factor: float = 0.001
    milestones: tuple[float, ...] = (0.7, 0.9)  # step schedule, fractions of all iterations
    gamma: float = 0.1
    clip_grad_norm: float | None = 10.0
    amp: bool = True  # mixed precision; used on CUDA only
    seed: int = 0
    val_fraction: float = 0.2
    freeze: int = 0  # backbone stages frozen from the stem up; -1: the whole backbone
    train_bn: bool = False  # False: BatchNorm uses running statistics (small batches)
    hflip: float = 0.5
    scale: tuple[float, float] = (0.75, 1.25)
    num_workers: int = 0
    max_iters: int | None = None  # stop early after this many iterations
    eval_every: int = 1  # epochs between validations; the last epoch is always validated
    eval_score_thresh: float = 0.05
    keep_checkpoints: int = 2  # epoch checkpoints kept on disk (oldest removed)
    ddp_find_unused: bool = False  # DDP: allow parameters without gradient in a step (slower)
    sync_bn: bool = False  # DDP with train_bn: BatchNorm statistics over the global batch (SyncBatchNorm)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        for key in ("milestones", "scale"):
            if key in kw and kw[key] is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)


@dataclass
class TrainResult:
    checkpoint: Path | None  # final (or last, when cancelled) weights
    metrics: dict | None  # last validation
    iterations: int
    epochs_completed: int
    cancelled: bool
    images_per_s: float  # training steps only (validation and saving excluded)
    skipped_steps: int
    history: list[dict] = field(default_factory=list)  # per epoch: mean losses, metrics


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Fine-tunes ``segmenter`` in place on ``source``. Call ``fit()``; progress goes to
    ``callbacks`` (on rank 0); set ``cancel`` from any thread to stop within one iteration."""

    def __init__(
        self,
        segmenter: Segmenter,
        source: CocoSource,
        config: TrainConfig | None = None,
        out_dir: str | Path | None = None,
        callbacks: Iterable[Callback] = (),
        cancel: threading.Event | None = None,
        dist: DistContext | None = None,
        run_info: dict | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.source = source
        self.config = config or TrainConfig()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        self.cancel = cancel or threading.Event()
        self.dist = dist
        self.run_info = dict(run_info or {})
        if list(segmenter.class_names) != list(source.classes):
            raise DataError(
                f"{source.json_path}: the model predicts {segmenter.class_names} but the data has classes "
                f"{source.classes}; build the model for the data's classes (engine.training.setup.build_for_training)."
            )
        cfg = self.config
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if cfg.sync_bn and not cfg.train_bn:
            raise ValueError(
                "sync_bn synchronises the batch statistics of training BatchNorm layers; it needs train_bn "
                "(without it BatchNorm uses its running statistics and there is nothing to synchronise)"
            )
        self.train_ids, self.val_ids = split_by_image([r.image_id for r in source.records], cfg.val_fraction, cfg.seed)
        train_records = [r for r in source.subset(self.train_ids) if r.annotations]
        if not train_records:
            raise DataError(f"{source.json_path}: no annotated image left for training after the validation split")
        scale_min, scale_max = cfg.scale
        augment = AugmentConfig(cfg.hflip, (scale_min, scale_max))
        # Under DDP a rank must not leave the loop on its own: cancel is agreed on collectively.
        self.train_set = InstanceDataset(train_records, augment, cfg.seed, None if dist else self.cancel)

    # --- helpers ----------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.dist is None or self.dist.is_main

    def _emit(self, event: TrainEvent) -> None:
        if self.is_main:
            dispatch(self.callbacks, event)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """Index batches of one epoch: a seeded shuffle, or this rank's DistributedSampler shard."""
        n = len(self.train_set)
        if self.dist is not None:
            sampler: torch.utils.data.DistributedSampler[int] = torch.utils.data.DistributedSampler(
                self.train_set, self.dist.world_size, self.dist.rank, shuffle=True, seed=self.config.seed
            )
            sampler.set_epoch(epoch)
            order = list(sampler)
        else:
            g = torch.Generator().manual_seed(self.config.seed * 100003 + epoch)
            order = torch.randperm(n, generator=g).tolist()
        bs = self.config.batch_size
        return [order[i : i + bs] for i in range(0, len(order), bs)]

    def _train_mode(self, runner: torch.nn.Module | None) -> None:
        (runner if runner is not None else self.segmenter.model).train()
        # Frozen BatchNorm (no gradient to its affine parameters) keeps its running statistics.
        set_batchnorm_eval(self.segmenter.model, frozen_only=self.config.train_bn)

    def _cancelled(self) -> bool:
        flag = self.cancel.is_set()
        return not self.dist.all_true(not flag) if self.dist is not None else flag

    def _metadata(self, epoch: int, iteration: int, total: int, metrics: dict | None) -> dict:
        cfg = self.config
        return {
            "epoch": epoch,
            "seed": cfg.seed,
            "metrics": metrics,
            "training": {
                "epochs": cfg.epochs,
                "iteration": iteration,
                "total_iterations": total,
                "config": cfg.to_dict(),
                "dataset": str(self.source.json_path),
                "train_images": len(self.train_set),
                "val_images": len(self.val_ids),
                "world_size": self.dist.world_size if self.dist else 1,
                "base_weights": self.segmenter.weights_source,
                **self.run_info,
            },
        }

    def _save(self, name: str, optimizer, scaler, position: dict, meta: dict) -> Path:
        assert self.out_dir is not None
        path = self.out_dir / f"{name}.safetensors"
        # Optimizer state first: the self-describing model checkpoint, written last, commits the save.
        save_train_state(path, optimizer, scaler, position)
        meta["training"]["position"] = position  # lets the checkpoint resume on its own
        return self.segmenter.save(path, extra=meta)

    def _prune(self, keep: int) -> None:
        assert self.out_dir is not None
        ckpts = sorted(p for p in self.out_dir.glob("epoch_*.safetensors") if "." not in p.stem)
        for old in ckpts[: max(len(ckpts) - keep, 0)]:
            stem = old.with_suffix("")
            for p in (old, stem.with_suffix(".json"), *stem.parent.glob(stem.name + ".train_state.*")):
                p.unlink(missing_ok=True)

    def validate(self) -> dict | None:
        """COCO AP on the validation split (rank 0 only; None without validation images)."""
        if not self.val_ids or not self.is_main:
            return None
        # Under DDP the other ranks wait at a barrier meanwhile: no leaving half-way there.
        cancel = self.cancel if self.dist is None else None
        return evaluate_segmenter(
            self.segmenter, self.source, self.val_ids, score_thresh=self.config.eval_score_thresh, cancel=cancel
        )

    # --- the loop ---------------------------------------------------------------------------
    def fit(self, resume: str | Path | None = None) -> TrainResult:
        cfg = self.config
        seed_everything(cfg.seed + (self.dist.rank if self.dist else 0))
        frozen = freeze_backbone(self.segmenter, cfg.freeze)
        if not (cfg.sync_bn and self.dist is not None):
            return self._fit(resume, frozen)
        model = self.segmenter.model
        synced = convert_sync_batchnorm(model, cpu=self.segmenter.device.type == "cpu")
        if not synced:
            log.warning("sync_bn: no BatchNorm layer of %s trains; nothing to synchronise", self.segmenter.describe())
        try:
            return self._fit(resume, frozen)
        finally:
            revert_sync_batchnorm(model)

    def _fit(self, resume: str | Path | None, frozen: list[str]) -> TrainResult:
        cfg = self.config
        seg = self.segmenter
        device = seg.device
        params = [p for p in seg.model.parameters() if p.requires_grad]
        optimizer = build_optimizer(params, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
        use_amp = bool(cfg.amp and device.type == "cuda")
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        per_epoch = len(self._epoch_batches(0))
        total = cfg.epochs * per_epoch
        if cfg.max_iters is not None:
            total = min(total, cfg.max_iters)
        schedule = LRSchedule(
            cfg.lr, total, cfg.schedule, min(cfg.warmup_iters, total // 2), cfg.warmup_factor, cfg.milestones, cfg.gamma
        )

        epoch, iteration = 0, 0
        if resume is not None:
            epoch, iteration = self._resume(resume, optimizer, scaler)
        runner = wrap_ddp(seg, self.dist, cfg.ddp_find_unused) if self.dist is not None else None
        losses_fn: Callable = runner if runner is not None else seg.losses
        world = self.dist.world_size if self.dist else 1

        self._emit(TrainEvent("start", iteration, total, epoch, cfg.epochs, message=f"{len(frozen)} frozen tensors"))
        history: list[dict] = []
        metrics: dict | None = None
        skipped = 0
        train_time, train_images = 0.0, 0
        dt_avg = None
        cancelled = False
        last_path: Path | None = None
        while epoch < cfg.epochs and iteration < total and not cancelled:
            batches = self._epoch_batches(epoch)[max(iteration - epoch * per_epoch, 0) :]
            self.train_set.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(
                self.train_set, batch_sampler=batches, collate_fn=collate, num_workers=cfg.num_workers
            )
            self._train_mode(runner)
            sums: dict[str, float] = {}
            steps = 0
            t_prev = time.perf_counter()
            it = iter(loader)
            while iteration < total:
                if self._cancelled():
                    cancelled = True
                    break
                try:
                    images, targets = next(it)
                except StopIteration:
                    break
                except Cancelled:
                    cancelled = True
                    break
                images = [im.to(device, non_blocking=True) for im in images]
                targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
                lr = schedule.apply(optimizer, iteration)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    loss_dict = losses_fn(images, targets)
                loss = sum(v.float() for v in loss_dict.values())
                # One device-to-host copy per step for the check and the progress report (each
                # float() of a CUDA tensor would wait for the GPU on its own).
                parts = [loss, *loss_dict.values()]
                reported = torch.stack([v.detach().float().reshape(()) for v in parts]).tolist()
                finite = math.isfinite(reported[0])
                if self.dist is not None:
                    finite = self.dist.all_true(finite)
                optimizer.zero_grad(set_to_none=True)
                step_ok = finite
                if finite or self.dist is not None:
                    # Under DDP every rank must run backward (gradients are all-reduced in it);
                    # a non-finite step is then thrown away on all ranks alike.
                    scaler.scale(loss if finite else loss * 0).backward()
                if finite:
                    if cfg.clip_grad_norm:
                        scaler.unscale_(optimizer)
                        norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
                        step_ok = use_amp or bool(torch.isfinite(norm))  # the scaler checks under AMP
                    if step_ok:
                        scaler.step(optimizer)
                        scaler.update()
                if not step_ok:
                    optimizer.zero_grad(set_to_none=True)
                    skipped += 1
                iteration += 1
                now = time.perf_counter()
                dt = now - t_prev
                t_prev = now
                n_img = len(images) * world
                train_time += dt
                train_images += n_img
                dt_avg = dt if dt_avg is None else 0.9 * dt_avg + 0.1 * dt
                values = dict(zip(loss_dict, reported[1:], strict=True))
                if step_ok:
                    steps += 1
                    for k, v in values.items():
                        sums[k] = sums.get(k, 0.0) + v
                self._emit(
                    TrainEvent(
                        "step" if step_ok else "skipped",
                        iteration,
                        total,
                        epoch,
                        cfg.epochs,
                        values,
                        reported[0],
                        lr,
                        n_img / dt_avg if dt_avg > 0 else 0.0,
                        (total - iteration) * dt_avg,
                        message="" if step_ok else "non-finite loss or gradient: step skipped",
                    )
                )
            del it, loader
            if self.dist is not None:
                self.dist.sync_buffers(seg.model)
            if cancelled:
                break
            finished_epoch = iteration >= (epoch + 1) * per_epoch
            last = iteration >= total
            if finished_epoch or last:
                if self.is_main and self.val_ids and (last or (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0)):
                    try:
                        metrics = self.validate()
                    except Cancelled:
                        cancelled = True
                        break
                    self._emit(TrainEvent("eval", iteration, total, epoch, cfg.epochs, metrics=metrics))
                mean_losses = {k: v / max(steps, 1) for k, v in sums.items()}
                history.append({"epoch": epoch + 1, "iteration": iteration, "losses": mean_losses, "metrics": metrics})
                next_epoch = epoch + 1 if finished_epoch else epoch
                if self.out_dir is not None and self.is_main:
                    meta = self._metadata(epoch + 1, iteration, total, metrics)
                    pos = {"epoch": next_epoch, "iteration": iteration, "seed": cfg.seed}
                    last_path = self._save(f"epoch_{epoch + 1:03d}", optimizer, scaler, pos, meta)
                    self._prune(max(cfg.keep_checkpoints, 1))
                    self._emit(TrainEvent("checkpoint", iteration, total, epoch, cfg.epochs, checkpoint=str(last_path)))
                if self.dist is not None:
                    self.dist.barrier()
                self._emit(TrainEvent("epoch_end", iteration, total, epoch, cfg.epochs, metrics=metrics))
                epoch = next_epoch

        final: Path | None = None
        if self.out_dir is not None and self.is_main:
            meta = self._metadata(epoch, iteration, total, metrics)
            meta["training"]["cancelled"] = cancelled
            pos = {"epoch": epoch, "iteration": iteration, "seed": cfg.seed}
            final = self._save("last" if cancelled else "model_final", optimizer, scaler, pos, meta)
        if self.dist is not None:
            self.dist.barrier()
        kind = "cancelled" if cancelled else "done"
        msg = f"{kind} after {iteration} iterations" + (f"; weights in {final}" if final else "")
        ckpt = str(final) if final else None
        self._emit(TrainEvent(kind, iteration, total, epoch, cfg.epochs, metrics=metrics, checkpoint=ckpt, message=msg))
        seg.model.eval()
        return TrainResult(
            final or last_path,
            metrics,
            iteration,
            len(history),
            cancelled,
            train_images / train_time if train_time > 0 else 0.0,
            skipped,
            history,
        )

    def _resume(self, path: str | Path, optimizer, scaler) -> tuple[int, int]:
        from engine.checkpoint import load_checkpoint

        tensors, meta = load_checkpoint(path)
        seg = self.segmenter
        if meta["architecture"] != seg.architecture or list(meta["class_names"]) != list(seg.class_names):
            raise WeightsError(f"{path}: checkpoint of another model or class list; cannot resume this run from it.")
        state = seg.model.state_dict()
        try:
            seg.model.load_state_dict({k: v.to(state[k].dtype) for k, v in tensors.items() if k in state}, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path}: weights do not fit the model ({exc})") from exc
        pos = resume_train_state(path, meta, optimizer, scaler)
        # Optimizer state tensors must live beside their parameters.
        for st in optimizer.state.values():
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    st[k] = v.to(seg.device)
        return int(pos["epoch"]), int(pos["iteration"])
