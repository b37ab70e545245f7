"""DistributedDataParallel on the real engines: two CPU processes under torchrun (gloo) train the
small Mask R-CNN (maskrcnn_r18_fpn) and yolact_tiny on tiny images for a few steps and end with
identical weights; SyncBatchNorm matches one process's BatchNorm over the same global batch.
This file is also the worker torchrun launches (``--worker KIND DATA OUT``)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.synthetic import write_coco_dataset
from engine.training.sync_bn import SYNC_TYPES

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("circle", "square")
SIZE = 64  # network input side: a few steps of either model take well under a second per rank


def build(kind: str, classes: list[str]):
    if kind == "maskrcnn":
        from engine.maskrcnn import create

        return create("maskrcnn_r18_fpn", "random", "cpu", classes, min_size=SIZE, max_size=SIZE)
    from engine.yolact.config import _scaled, get_config
    from engine.yolact.model import Yolact
    from engine.yolact.segmenter import YolactSegmenter

    base = get_config("yolact_tiny").with_num_classes(len(classes))
    cfg = dataclasses.replace(base, max_size=SIZE, pred_scales=_scaled(get_config("yolact_base").pred_scales, SIZE))
    return YolactSegmenter(Yolact(cfg), classes, device="cpu")


def train_config(kind: str):
    from engine.training.trainer import TrainConfig

    # 8 images, no validation: 4 per rank and epoch, 2 steps of 2; 2 epochs
    common = dict(epochs=2, batch_size=2, optimizer="adamw", lr=1e-3, warmup_iters=1, val_fraction=0.0, seed=3)
    if kind == "maskrcnn":
        return TrainConfig(**common)
    # YOLACT trains its BatchNorm, synchronised; the stem (conv1/bn1) is frozen and must stay so.
    return TrainConfig(**common, train_bn=True, sync_bn=True, freeze=1)


class LayerProbe:
    """Callback: after the first step, which norm layers the model has and a trained BatchNorm's
    running mean (equal on both ranks only when the statistics are synchronised)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.seen: dict = {}

    def __call__(self, event) -> None:
        if event.kind != "step" or self.seen:
            return
        mods = dict(self.model.named_modules())
        self.seen = {
            "sync": sorted(n for n, m in mods.items() if isinstance(m, SYNC_TYPES)),
            "plain_bn": sorted(n for n, m in mods.items() if type(m) is nn.BatchNorm2d),
            "plain_bn_training": sorted(n for n, m in mods.items() if type(m) is nn.BatchNorm2d and m.training),
        }
        if "backbone.layers.0.0.bn1" in mods:
            self.seen["trained_running_mean"] = mods["backbone.layers.0.0.bn1"].running_mean.tolist()


def _worker_train(kind: str, data_json: str, out: str) -> None:
    from engine.training.data import load_coco_source
    from engine.training.ddp import init_distributed, shutdown
    from engine.training.trainer import Trainer

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    assert ctx is not None and ctx.world_size == 2 and ctx.backend == "gloo"
    src = load_coco_source(data_json)
    torch.manual_seed(100 + ctx.rank)  # different init per rank: DDP must broadcast rank 0's
    seg = build(kind, list(src.classes))
    if ctx.rank == 0:
        save_file({k: v.contiguous() for k, v in seg.model.state_dict().items()}, str(Path(out) / "init.safetensors"))
    probe = LayerProbe(seg.model)

    class EveryRank(Trainer):
        def _emit(self, event) -> None:  # callbacks run on rank 0 only; the probe on every rank
            probe(event)

    res = EveryRank(seg, src, train_config(kind), None, dist=ctx).fit()
    state = {k: v.contiguous() for k, v in seg.model.state_dict().items()}
    save_file(state, str(Path(out) / f"rank{ctx.rank}.safetensors"))
    after = {
        "iterations": res.iterations,
        "skipped": res.skipped_steps,
        "probe": probe.seen,
        "sync_after_fit": sum(isinstance(m, SYNC_TYPES) for m in seg.model.modules()),
    }
    (Path(out) / f"rank{ctx.rank}.json").write_text(json.dumps(after))
    shutdown(ctx)


def _worker_bn(out: str) -> None:
    """Each rank normalises its half of one batch with SyncBatchNorm; one plain BatchNorm over the
    whole batch (computed on every rank) must give the same outputs, input gradients, summed
    weight gradients and running statistics."""
    from engine.training.ddp import init_distributed, shutdown
    from engine.training.sync_bn import GlooSyncBatchNorm, convert_sync_batchnorm

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    assert ctx is not None
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5, 5) * 3 + 1
    w_out = torch.randn(6, 4, 5, 5)  # a loss that weighs each output element differently
    ref = nn.BatchNorm2d(4)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    holder = nn.Sequential(nn.BatchNorm2d(4))
    holder.load_state_dict({f"0.{k}": v for k, v in ref.state_dict().items()})
    assert convert_sync_batchnorm(holder, cpu=True) == ["0"] and type(holder[0]) is GlooSyncBatchNorm
    holder.train()
    part = slice(3 * ctx.rank, 3 * ctx.rank + 3)
    xr = x.clone().requires_grad_(True)
    y_ref = ref(xr)  # one training forward: the running statistics move once, as on the ranks
    (y_ref * w_out).sum().backward()
    xs = x[part].clone().requires_grad_(True)
    ys = holder[0](xs)
    (ys * w_out[part]).sum().backward()
    grads = torch.stack([holder[0].weight.grad, holder[0].bias.grad])
    torch.distributed.all_reduce(grads)
    errors = {
        "output": (ys - y_ref[part]).abs().max().item(),
        "input_grad": (xs.grad - xr.grad[part]).abs().max().item(),
        "weight_grad": (grads[0] - ref.weight.grad).abs().max().item(),
        "bias_grad": (grads[1] - ref.bias.grad).abs().max().item(),
        "running_mean": (holder[0].running_mean - ref.running_mean).abs().max().item(),
        "running_var": (holder[0].running_var - ref.running_var).abs().max().item(),
    }
    (Path(out) / f"bn{ctx.rank}.json").write_text(json.dumps(errors))
    shutdown(ctx)


def _torchrun(tmp_path: Path, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(Path(__file__)), "--worker", *args,
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def _identical_ranks(out: Path) -> dict[str, torch.Tensor]:
    a = load_file(str(out / "rank0.safetensors"))
    b = load_file(str(out / "rank1.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    init = load_file(str(out / "init.safetensors"))
    assert init.keys() == a.keys()  # the checkpoint layout is that of the plain model
    moved = [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], init[k])]
    assert len(moved) > len(a) // 2, f"only {len(moved)} of {len(a)} tensors trained"
    return a


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_coco_dataset(tmp_path_factory.mktemp("ddp_data"), 8, 48, CLASSES, seed=4)


def test_maskrcnn_r18_two_processes_end_with_identical_weights(tmp_path, data):
    _torchrun(tmp_path, "maskrcnn", str(data), str(tmp_path))
    _identical_ranks(tmp_path)
    for rank in (0, 1):
        info = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert info["iterations"] == 4 and info["skipped"] == 0  # 2 epochs x 2 steps per rank


def test_yolact_tiny_two_processes_sync_bn_and_frozen_stem(tmp_path, data):
    _torchrun(tmp_path, "yolact", str(data), str(tmp_path))
    weights = _identical_ranks(tmp_path)
    init = load_file(str(tmp_path / "init.safetensors"))
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["iterations"] == r1["iterations"] == 4
    probe = r0["probe"]
    # the frozen stem BatchNorm stayed a plain, eval-mode BatchNorm with its statistics untouched
    assert probe["plain_bn"] == ["backbone.bn1"] and probe["plain_bn_training"] == []
    for buf in ("running_mean", "running_var", "weight", "bias"):
        assert torch.equal(weights[f"backbone.bn1.{buf}"], init[f"backbone.bn1.{buf}"]), buf
    # every other BatchNorm was synchronised, and back to plain BatchNorm2d after fit
    assert "backbone.layers.0.0.bn1" in probe["sync"] and len(probe["sync"]) > 10
    assert r0["sync_after_fit"] == r1["sync_after_fit"] == 0
    # synchronised statistics: both ranks' running means agree after a step on different images
    assert probe["trained_running_mean"] == r1["probe"]["trained_running_mean"]
    trained = "backbone.layers.0.0.bn1.running_mean"
    assert not torch.equal(weights[trained], init[trained])


def test_sync_batchnorm_on_cpu_matches_batchnorm_over_the_global_batch(tmp_path):
    _torchrun(tmp_path, "bn", str(tmp_path))
    for rank in (0, 1):
        errors = json.loads((tmp_path / f"bn{rank}.json").read_text())
        assert all(v < 1e-4 for v in errors.values()), (rank, errors)


# --- single-process checks of the SyncBatchNorm plumbing (no torchrun) -------------------------
def test_convert_sync_batchnorm_leaves_frozen_layers_and_reverts(data):
    from engine.training.setup import freeze_backbone
    from engine.training.sync_bn import GlooSyncBatchNorm, convert_sync_batchnorm, revert_sync_batchnorm

    seg = build("yolact", list(CLASSES))
    freeze_backbone(seg, 1)
    before = {k: v.data_ptr() for k, v in seg.model.state_dict().items()}
    names = convert_sync_batchnorm(seg.model, cpu=True)
    mods = dict(seg.model.named_modules())
    assert "backbone.bn1" not in names and type(mods["backbone.bn1"]) is nn.BatchNorm2d
    assert len(names) == 19 and all(type(mods[n]) is GlooSyncBatchNorm for n in names)
    # the same tensors (an optimizer built before keeps working), the same checkpoint names
    assert {k: v.data_ptr() for k, v in seg.model.state_dict().items()} == before
    assert revert_sync_batchnorm(seg.model) == 19
    assert not any(isinstance(m, SYNC_TYPES) for m in seg.model.modules())
    assert {k: v.data_ptr() for k, v in seg.model.state_dict().items()} == before


def test_train_bn_keeps_a_frozen_stage_batchnorm_frozen(data, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_training import TinySegmenter

    from engine.training.data import load_coco_source
    from engine.training.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    seg = TinySegmenter(list(CLASSES))
    bn = seg.model.backbone.bn1
    start = {k: v.clone() for k, v in bn.state_dict().items()}
    cfg = TrainConfig(epochs=1, batch_size=2, lr=0.05, warmup_iters=1, val_fraction=0.0, train_bn=True, freeze=1)
    Trainer(seg, load_coco_source(data), cfg).fit()
    for k, v in bn.state_dict().items():
        assert torch.equal(v, start[k]), k  # batch statistics would have moved running_mean/var
    # the same run with the stage trainable does move them (the check above can fail)
    seg = TinySegmenter(list(CLASSES))
    Trainer(seg, load_coco_source(data), dataclasses.replace(cfg, freeze=0)).fit()
    assert not torch.equal(seg.model.backbone.bn1.running_mean, torch.zeros(8))


def test_sync_bn_needs_train_bn(data):
    import argparse

    from engine.cli import build_parser
    from engine.cli.train import build_config
    from engine.errors import DataError
    from engine.training.data import load_coco_source
    from engine.training.trainer import TrainConfig, Trainer

    with pytest.raises(ValueError, match="needs train_bn"):
        Trainer(build("yolact", list(CLASSES)), load_coco_source(data), TrainConfig(sync_bn=True))
    args = build_parser().parse_args(["train", "--coco", str(data), "--out", "x", "--sync-bn"])
    with pytest.raises(DataError, match="--sync-bn needs --train-bn"):
        build_config(args, "yolact")
    args = build_parser().parse_args(["train", "--coco", str(data), "--out", "x", "--sync-bn", "--train-bn"])
    assert isinstance(args, argparse.Namespace) and build_config(args, "yolact").sync_bn


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "--worker":
    if sys.argv[2] == "bn":
        _worker_bn(sys.argv[3])
    else:
        _worker_train(sys.argv[2], sys.argv[3], sys.argv[4])
