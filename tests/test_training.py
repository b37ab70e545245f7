"""Fine-tuning engine: data loading and augmentation, schedule, trainer (checkpoints, resume, cancel,
non-finite steps, freezing), class-head re-initialisation, and the train CLI."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from engine.checkpoint import read_header_metadata
from engine.errors import DataError
from engine.masks import CroppedMask
from engine.segmenter import Instance, Prediction, Segmenter
from engine.synthetic import write_coco_dataset
from engine.training.callbacks import JsonlLogger, TrainEvent
from engine.training.data import (
    AugmentConfig,
    InstanceDataset,
    load_coco_source,
    scale_jitter,
    split_by_image,
)
from engine.training.schedule import LRSchedule, build_optimizer
from engine.training.setup import freeze_backbone, load_matching
from engine.training.state import load_train_state, save_train_state
from engine.training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


# --- a tiny segmenter: per-pixel classes, instances = connected components -------------------------
class TinyNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 8, 3, padding=1),
                bn1=nn.BatchNorm2d(8),
                relu=nn.ReLU(),
                layer1=nn.Conv2d(8, 8, 3, padding=1),
                relu1=nn.ReLU(),
            )
        )
        self.head = nn.Conv2d(8, num_classes + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class TinySegmenter(Segmenter):
    """Semantic segmentation net behind the Segmenter interface (fast enough for unit tests)."""

    architecture = "tiny"
    backbone_stages = (("backbone.conv1.", "backbone.bn1."), ("backbone.layer1.",))
    class_head_prefixes = ("head.",)

    def __init__(self, class_names, device="cpu", score_thresh=0.5):
        super().__init__(TinyNet(len(class_names)), "tiny", class_names, device, score_thresh)
        self.loss_scale = 1.0  # tests set NaN to provoke a non-finite loss

    def losses(self, images, targets):
        h = max(i.shape[1] for i in images)
        w = max(i.shape[2] for i in images)
        x = torch.zeros(len(images), 3, h, w, device=self.device)
        sem = torch.zeros(len(images), h, w, dtype=torch.long, device=self.device)
        for b, (img, t) in enumerate(zip(images, targets, strict=True)):
            x[b, :, : img.shape[1], : img.shape[2]] = img
            for m, lab in zip(t["masks"], t["labels"], strict=True):
                sem[b, : m.shape[0], : m.shape[1]][m.bool()] = int(lab) + 1
        logits = self.model(x)
        ce = nn.functional.cross_entropy(logits, sem)
        return {"loss_seg": ce * self.loss_scale, "loss_l2": 1e-4 * logits.pow(2).mean()}

    def _predict(self, image, trace):
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255).unsqueeze(0).to(self.device)
        probs = self.model(x).softmax(1)[0].cpu().numpy()
        cls = probs.argmax(0)
        instances = []
        for c in range(1, probs.shape[0]):
            n, comp = cv2.connectedComponents((cls == c).astype(np.uint8))
            for k in range(1, n):
                m = comp == k
                if m.sum() < 4:
                    continue
                score = float(probs[c][m].mean())
                if score < self.score_thresh:
                    continue
                cm = CroppedMask.from_full(m)
                x0, y0, bw, bh = cm.bbox_xywh()
                box = np.array([x0, y0, x0 + bw, y0 + bh], np.float32)
                instances.append(Instance(c - 1, score, box, cm))
        instances.sort(key=lambda i: -i.score)
        return Prediction(image.shape[:2], instances, self.class_names)


@pytest.fixture(scope="module")
def shapes_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shapes")
    return write_coco_dataset(out, 10, 64, ("circle", "square"), seed=3)


# --- data ----------------------------------------------------------------------------------------
def test_split_is_seeded_disjoint_and_complete():
    ids = list(range(1, 21))
    tr, va = split_by_image(ids, 0.25, seed=7)
    assert sorted(tr + va) == ids and not set(tr) & set(va) and len(va) == 5
    assert split_by_image(ids, 0.25, seed=7) == (tr, va)
    assert split_by_image(ids, 0.25, seed=8) != (tr, va)
    assert split_by_image([4, 9], 0.1, seed=0)[1] != []  # at least one validation image
    assert split_by_image([4], 0.5, seed=0) == ([4], [])  # ...but never the only one


def test_dataset_targets_match_annotations(shapes_set):
    src = load_coco_source(shapes_set)
    assert src.classes == ["circle", "square"] and len(src.records) == 10
    ds = InstanceDataset(src.records)
    img, t = ds[0]
    assert img.dtype == torch.float32 and img.shape == (3, 64, 64) and 0 <= img.min() and img.max() <= 1
    n = len(src.records[0].annotations)
    assert t["masks"].shape == (n, 64, 64) and t["masks"].dtype == torch.uint8
    for m, box, ann in zip(t["masks"], t["boxes"], src.records[0].annotations, strict=True):
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        assert int(m.sum()) == ann["area"]
    assert t["labels"].tolist() == [a["category_id"] - 1 for a in src.records[0].annotations]


def test_flip_and_zoom_move_image_masks_and_boxes_together(shapes_set):
    src = load_coco_source(shapes_set)
    plain = InstanceDataset(src.records)
    flipped = InstanceDataset(src.records, AugmentConfig(hflip=1.0, scale=(1.0, 1.0)))
    (a, ta), (b, tb) = plain[1], flipped[1]
    assert torch.equal(b, a.flip(-1)) and torch.equal(tb["masks"], ta["masks"].flip(-1))
    x1, y1, x2, y2 = ta["boxes"].unbind(1)
    assert torch.equal(tb["boxes"], torch.stack([64 - x2, y1, 64 - x1, y2], 1))
    # zoom out by 0.5: content halves, canvas stays 64x64, masks still line up with boxes
    rng = np.random.default_rng(0)
    img = (a.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    zi, zm = scale_jitter(img, ta["masks"].numpy().astype(bool), 0.5, rng)
    assert zi.shape == img.shape and zm.shape == (len(zm), 64, 64)
    assert np.allclose(zm.sum((1, 2)), ta["masks"].numpy().sum((1, 2)) / 4, rtol=0.35)
    aug = InstanceDataset(src.records, AugmentConfig(0.5, (0.6, 1.4)), seed=1)
    aug.set_epoch(2)
    x, t = aug[3]
    assert torch.equal(x, aug[3][0])  # same (seed, epoch, index), same sample
    for m, box in zip(t["masks"], t["boxes"], strict=True):
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_bad_data_gives_clear_errors(tmp_path, shapes_set):
    with pytest.raises(DataError, match="not found"):
        load_coco_source(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json.*not valid JSON"):
        load_coco_source(bad)
    coco = json.loads(shapes_set.read_text())
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**coco, "annotations": []}))
    with pytest.raises(DataError, match="no annotated images"):
        load_coco_source(empty, shapes_set.parent / "images")
    nocat = tmp_path / "nocat.json"
    nocat.write_text(json.dumps({**coco, "categories": [], "annotations": []}))
    with pytest.raises(DataError, match="no categories"):
        load_coco_source(nocat, shapes_set.parent / "images")
    missing = tmp_path / "missing.json"
    missing.write_text(
        json.dumps(
            {**coco, "images": coco["images"] + [{"id": 999, "file_name": "gone.png", "width": 64, "height": 64}]}
        )
    )
    with pytest.raises(DataError, match="1 image file.*gone.png"):
        load_coco_source(missing, shapes_set.parent / "images")


# --- schedule and optimizer state ----------------------------------------------------------------
def test_schedule_warmup_step_and_cosine():
    s = LRSchedule(0.1, 100, "step", warmup_iters=10, warmup_factor=0.01, milestones=(0.5, 0.8), gamma=0.1)
    assert s.lr(0) == pytest.approx(0.001) and s.lr(5) == pytest.approx(0.1 * (0.01 * 0.5 + 0.5))
    assert s.lr(10) == pytest.approx(0.1) and s.lr(49) == pytest.approx(0.1)
    assert s.lr(50) == pytest.approx(0.01) and s.lr(80) == pytest.approx(0.001)
    c = LRSchedule(0.1, 110, "cosine", warmup_iters=10)
    assert c.lr(10) == pytest.approx(0.1) and c.lr(60) == pytest.approx(0.05) and c.lr(110) == pytest.approx(0)
    lrs = [c.lr(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    with pytest.raises(ValueError):
        LRSchedule(0.1, 10, "linear")


@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_optimizer_state_round_trips_without_pickle(tmp_path, kind):
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    opt = build_optimizer(net.parameters(), kind, lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    save_train_state(tmp_path / "ck.safetensors", opt, None, {"epoch": 3, "iteration": 7})
    opt2 = build_optimizer(net.parameters(), kind, lr=0.5)
    pos = load_train_state(tmp_path / "ck.safetensors", opt2, None)
    assert pos == {"epoch": 3, "iteration": 7}
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for k in a["state"]:
        for key, v in a["state"][k].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][k][key]))


# --- trainer -------------------------------------------------------------------------------------
def _tiny(classes=("circle", "square")):
    torch.manual_seed(0)
    return TinySegmenter(list(classes))


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=2, lr=0.05, warmup_iters=2, val_fraction=0.2, seed=1, eval_every=1)
    return TrainConfig(**{**base, **kw})


def test_trainer_learns_checkpoints_and_reports(tmp_path, shapes_set):
    src = load_coco_source(shapes_set)
    seg = _tiny()
    events: list[TrainEvent] = []
    res = Trainer(
        seg, src, _cfg(epochs=3), tmp_path / "run", [events.append, JsonlLogger(tmp_path / "log.jsonl")]
    ).fit()
    steps = [e for e in events if e.kind == "step"]
    assert res.iterations == 12 and len(steps) == 12 and not res.cancelled  # 8 train images / 2 x 3 epochs
    assert set(steps[0].losses) == {"loss_seg", "loss_l2"} and steps[-1].eta_s == pytest.approx(0.0)
    assert steps[0].lr < steps[2].lr and all(e.images_per_s > 0 for e in steps)
    assert res.history[-1]["losses"]["loss_seg"] < res.history[0]["losses"]["loss_seg"]
    assert [e.kind for e in events].count("eval") == 3 and "AP50" in res.metrics["mask"]
    # every epoch leaves a checkpoint (2 kept) with optimizer state, plus the final weights
    run = tmp_path / "run"
    names = sorted(p.name for p in run.glob("epoch_*"))
    assert names == [f"epoch_00{k}.{s}" for k in (2, 3) for s in ("json", "safetensors", "train_state.safetensors")]
    assert (run / "epoch_003.train_state.safetensors").is_file() and res.checkpoint == run / "model_final.safetensors"
    meta = json.loads((run / "model_final.json").read_text())
    assert read_header_metadata(run / "model_final.safetensors") == meta  # the sidecar is only a copy
    assert meta["architecture"] == "tiny" and meta["class_names"] == ["circle", "square"]
    assert meta["epoch"] == 3 and meta["seed"] == 1 and meta["training"]["config"]["batch_size"] == 2
    assert meta["metrics"]["mask"]["AP50"] == res.metrics["mask"]["AP50"]
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == len(events) and json.loads(lines[-1])["kind"] == "done"


def test_resume_continues_exactly(tmp_path, shapes_set):
    src = load_coco_source(shapes_set)
    cfg = _cfg(epochs=2, eval_every=0, val_fraction=0.0, optimizer="adamw", lr=0.01)
    full = _tiny()
    Trainer(full, src, cfg, tmp_path / "full").fit()
    cancel = threading.Event()

    def stop(e: TrainEvent) -> None:
        if e.iteration == 5:  # mid second epoch
            cancel.set()

    assert Trainer(_tiny(), src, cfg, tmp_path / "half", [stop], cancel).fit().cancelled
    resumed = _tiny()  # fresh weights: resume must restore them, the optimizer and the position
    res = Trainer(resumed, src, cfg, tmp_path / "resumed").fit(resume=tmp_path / "half" / "last.safetensors")
    assert res.iterations == 10 and not res.cancelled
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_resume_from_the_safetensors_alone(tmp_path, shapes_set, caplog):
    """A checkpoint copied without its .json and train state still resumes: weights and position
    from its header, the optimizer afresh (a warning says so)."""
    src = load_coco_source(shapes_set)
    cfg = _cfg(epochs=2, eval_every=0, val_fraction=0.0, optimizer="adamw", lr=0.01)
    full = _tiny()
    Trainer(full, src, cfg, tmp_path / "full").fit()
    ckpt = tmp_path / "full" / "epoch_001.safetensors"
    lone = tmp_path / "lone" / ckpt.name
    lone.parent.mkdir()
    lone.write_bytes(ckpt.read_bytes())
    with_state = tmp_path / "with_state"
    with_state.mkdir()
    for p in (ckpt, *ckpt.parent.glob("epoch_001.train_state.*")):
        (with_state / p.name).write_bytes(p.read_bytes())  # no epoch_001.json
    exact = _tiny()
    assert Trainer(exact, src, cfg, tmp_path / "r1").fit(resume=with_state / ckpt.name).iterations == 10
    for (k, a), b in zip(full.model.state_dict().items(), exact.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    with caplog.at_level("WARNING"):
        res = Trainer(_tiny(), src, cfg, tmp_path / "r2").fit(resume=lone)
    assert res.iterations == 10 and not res.cancelled
    assert "fresh optimizer state" in caplog.text and "epoch 1, iteration 5" in caplog.text


def test_train_state_is_written_before_the_checkpoint(tmp_path, shapes_set, monkeypatch):
    """The model checkpoint is the commit point of a save: a kill before it leaves no checkpoint
    without its state; a kill after it leaves a checkpoint that resumes."""
    import engine.checkpoint
    import engine.training.state

    order: list[str] = []
    for module in (engine.checkpoint, engine.training.state):
        real = module.atomic_write_bytes

        def record(path, data, real=real):
            order.append(Path(path).name)
            real(path, data)

        monkeypatch.setattr(module, "atomic_write_bytes", record)
    Trainer(_tiny(), load_coco_source(shapes_set), _cfg(epochs=1, val_fraction=0.0), tmp_path / "run").fit()
    assert order[:2] == ["epoch_001.train_state.safetensors", "epoch_001.safetensors"]
    assert order[2:] == ["model_final.train_state.safetensors", "model_final.safetensors"]


def test_cancel_stops_within_an_iteration_and_saves(tmp_path, shapes_set):
    src = load_coco_source(shapes_set)
    cancel = threading.Event()
    seen = []

    def stop_after_three(e: TrainEvent) -> None:
        seen.append(e.kind)
        if e.kind == "step" and e.iteration == 3:
            cancel.set()

    res = Trainer(_tiny(), src, _cfg(epochs=5), tmp_path / "c", [stop_after_three], cancel).fit()
    assert res.cancelled and res.iterations == 3 and seen[-1] == "cancelled"
    assert (tmp_path / "c" / "last.safetensors").is_file()
    assert json.loads((tmp_path / "c" / "last.json").read_text())["training"]["cancelled"] is True
    # set while the data loop is fetching a batch: the dataset raises and the run ends there
    cancel2 = threading.Event()
    tr = Trainer(_tiny(), src, _cfg(), None, (), cancel2)
    real = tr.train_set.records[0].path
    orig = tr.train_set.__class__.__getitem__

    def get(self, i):
        if self.records[i].path == real:
            cancel2.set()
        return orig(self, i)

    tr.train_set.__class__ = type("Hooked", (InstanceDataset,), {"__getitem__": get})
    res2 = tr.fit()
    assert res2.cancelled and res2.iterations < 8


def test_non_finite_loss_skips_the_step(tmp_path, shapes_set):
    src = load_coco_source(shapes_set)
    seg = _tiny()
    before = {k: v.clone() for k, v in seg.model.state_dict().items()}
    seg.loss_scale = float("nan")
    kinds = []
    res = Trainer(seg, src, _cfg(epochs=1, val_fraction=0.0), None, [lambda e: kinds.append(e.kind)]).fit()
    assert res.skipped_steps == 5 and kinds.count("skipped") == 5 and kinds.count("step") == 0
    for k, v in seg.model.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(v, before[k]), k


def test_freeze_backbone_stages(tmp_path, shapes_set):
    seg = _tiny()
    frozen = freeze_backbone(seg, 1)
    assert frozen == ["backbone.conv1.weight", "backbone.conv1.bias", "backbone.bn1.weight", "backbone.bn1.bias"]
    before = {k: v.clone() for k, v in seg.model.state_dict().items()}
    Trainer(seg, load_coco_source(shapes_set), _cfg(epochs=1, freeze=1, val_fraction=0.0)).fit()
    after = seg.model.state_dict()
    assert torch.equal(after["backbone.conv1.weight"], before["backbone.conv1.weight"])
    assert not torch.equal(after["backbone.layer1.weight"], before["backbone.layer1.weight"])
    # BatchNorm keeps its running statistics by default (eval mode during training)
    assert torch.equal(after["backbone.bn1.running_mean"], before["backbone.bn1.running_mean"])
    assert len(freeze_backbone(_tiny(), -1)) == 6


def test_class_mismatch_is_refused_and_heads_reinitialised(shapes_set):
    src = load_coco_source(shapes_set)
    with pytest.raises(DataError, match="classes"):
        Trainer(_tiny(("a", "b", "c")), src)
    old = _tiny(("a", "b", "c"))
    new = _tiny(("circle", "square"))
    new.model.backbone.conv1.weight.data.zero_()
    loaded, left = load_matching(new.model, old.model.state_dict(), new.class_head_prefixes)
    assert "backbone.conv1.weight" in loaded and left == ["head.weight", "head.bias"]
    assert torch.equal(new.model.backbone.conv1.weight, old.model.backbone.conv1.weight)


def test_determinism_same_seed_same_weights(shapes_set):
    src = load_coco_source(shapes_set)
    a, b = _tiny(), _tiny()
    Trainer(a, src, _cfg(epochs=1, val_fraction=0.0)).fit()
    Trainer(b, src, _cfg(epochs=1, val_fraction=0.0)).fit()
    for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y)


# --- real architectures and the command line --------------------------------------------------------
def _small_maskrcnn(classes, size=64):
    from engine.maskrcnn import create

    torch.manual_seed(0)
    return create("maskrcnn_r18_fpn", "random", "cpu", list(classes), min_size=size, max_size=size)


def test_freeze_prefixes_match_real_architectures():
    from engine.yolact import create as create_yolact

    seg = _small_maskrcnn(["a"])
    names = freeze_backbone(seg, 2)
    assert names and all(
        n.startswith(("backbone.body.conv1.", "backbone.body.bn1.", "backbone.body.layer1.")) for n in names
    )
    assert any(n.startswith("backbone.body.layer1.") for n in names)
    trainable = [n for n, p in seg.model.named_parameters() if p.requires_grad]
    assert any(n.startswith("backbone.body.layer2.") for n in trainable) and "backbone.fpn" in " ".join(trainable)
    y = create_yolact("yolact_tiny", "random", "cpu", ["a", "b"])
    ynames = freeze_backbone(y, -1)
    assert any(n.startswith("backbone.layers.3.") for n in ynames) and any(
        n.startswith("backbone.conv1") for n in ynames
    )
    assert not any(n.startswith(("fpn.", "proto_net.", "prediction_layers.")) for n in ynames)


def test_build_for_training_keeps_backbone_and_reinitialises_heads(tmp_path):
    from engine.training.setup import build_for_training

    base = _small_maskrcnn(["circle", "square", "star"])
    ckpt = base.save(tmp_path / "base.safetensors")
    same = build_for_training(["circle", "square", "star"], weights=ckpt)
    assert same.class_names == ["circle", "square", "star"]
    assert torch.equal(
        same.model.roi_heads.box_predictor.cls_score.weight, base.model.roi_heads.box_predictor.cls_score.weight
    )
    new = build_for_training(["ring", "cross"], "maskrcnn", weights=ckpt)
    assert new.class_names == ["ring", "cross"] and new.model.roi_heads.box_predictor.cls_score.out_features == 3
    b0, b1 = base.model.state_dict(), new.model.state_dict()
    assert torch.equal(b0["backbone.body.layer1.0.conv1.weight"], b1["backbone.body.layer1.0.conv1.weight"])
    assert torch.equal(b0["roi_heads.box_head.fc6.weight"], b1["roi_heads.box_head.fc6.weight"])
    assert new.model.transform.min_size == (64,)  # the checkpoint's input size carries over
    with pytest.raises(Exception, match="yolact"):
        build_for_training(["a"], "yolact", weights=ckpt)


def test_train_and_eval_cli_end_to_end(tmp_path, capsys):
    from engine.cli import main as cli_main

    data = write_coco_dataset(tmp_path / "data", 6, 64, ("circle", "square"), seed=9)
    out = tmp_path / "out"
    rc = cli_main(
        ["train", "--coco", str(data), "--model", "yolact", "--config", "yolact_tiny", "--weights", "random",
         "--epochs", "1", "--batch-size", "2", "--max-iters", "2", "--freeze", "2", "--val-fraction", "0.34",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "finished: 2 iterations" in text and "mask" in text and (out / "model_final.safetensors").is_file()
    meta = json.loads((out / "model_final.json").read_text())
    assert meta["class_names"] == ["circle", "square"] and meta["training"]["config"]["freeze"] == 2
    assert json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])["kind"] == "done"
    rc = cli_main(["eval", "--coco", str(data), "--weights", str(out / "model_final.safetensors"), "--val-split",
                   "--json", str(tmp_path / "m.json")])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and "AP50" in text and "circle" in text
    assert json.loads((tmp_path / "m.json").read_text())["images"] == 2  # the held-out third of 6
    # resume the run for more iterations: settings (freeze, split...) come from the checkpoint, which
    # describes itself: a kill before its readable .json copy was written does not stop a resume
    (out / "epoch_001.json").unlink()
    rc = cli_main(["train", "--coco", str(data), "--resume", str(out / "epoch_001.safetensors"), "--epochs", "2",
                   "--max-iters", "3", "--out", str(tmp_path / "out2"), "--quiet"])  # fmt: skip
    assert rc == 0 and "finished: 3 iterations" in capsys.readouterr().out
    assert json.loads((tmp_path / "out2" / "model_final.json").read_text())["training"]["config"]["freeze"] == 2


def test_train_cli_errors_are_clear(tmp_path, capsys):
    from engine.cli import main as cli_main

    data = write_coco_dataset(tmp_path / "data", 2, 48, ("circle",), seed=1)
    coco = json.loads(data.read_text())
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**coco, "annotations": []}))
    rc = cli_main(["train", "--coco", str(empty), "--images", str(data.parent / "images"), "--model", "maskrcnn",
                   "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "empty.json" in err and "no annotated images" in err
    rc = cli_main(["train", "--coco", str(data), "--out", str(tmp_path / "o")])
    assert rc == 1 and "--model" in capsys.readouterr().err
    rc = cli_main(["train", "--coco", str(data), "--model", "maskrcnn", "--config", "maskrcnn_r18_fpn",
                   "--weights", "random", "--epochs", "0", "--out", str(tmp_path / "o")])  # fmt: skip
    assert rc == 1 and "--epochs must be at least 1" in capsys.readouterr().err


def test_project_folder_is_a_training_source(tmp_path, shapes_set):
    import shutil

    from engine.training.data import load_data

    project = tmp_path / "proj"
    shutil.copytree(shapes_set.parent / "images", project)
    shutil.copy(shapes_set, project / "annotations.json")
    src = load_data(project, None)
    ref = load_coco_source(shapes_set)
    assert src.classes == ref.classes and len(src.records) == len(ref.records)
    a = InstanceDataset(src.records)[0][1]
    b = InstanceDataset(ref.records)[0][1]
    assert torch.equal(a["masks"], b["masks"]) and torch.equal(a["labels"], b["labels"])
    (tmp_path / "new_project").mkdir()
    with pytest.raises(DataError, match="no annotations file"):
        load_data(tmp_path / "new_project", None)


def test_demo_training_smoke_writes_half_precision_model(tmp_path):
    from engine.models import load_segmenter
    from engine.synthetic import DEMO_CLASSES
    from engine.training.demo import train_demo_model

    path, result = train_demo_model("yolact", tmp_path, quick_iters=1, device="cpu", command="pytest smoke")
    assert path == tmp_path / "demo_yolact.safetensors" and result.iterations == 1
    from safetensors.torch import load_file

    stored = load_file(str(path))
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["weights_dtype"] == "float16" and meta["demo"]["command"] == "pytest smoke"
    assert meta["demo"]["data"]["seed"] == 2000 and meta["demo"]["recipe"]["train"]["batch_size"] == 8
    seg = load_segmenter(path)
    assert seg.class_names == list(DEMO_CLASSES) and next(seg.model.parameters()).dtype == torch.float32
    w = seg.model.state_dict()
    k = next(k for k, v in stored.items() if v.is_floating_point() and v.numel() > 10)
    assert torch.equal(w[k], stored[k].float())


def test_continuing_a_demo_model_trains_and_records_it(tmp_path, monkeypatch):
    import dataclasses

    from safetensors.torch import load_file

    from engine.training import demo

    path, _ = demo.train_demo_model("yolact", tmp_path, quick_iters=1, device="cpu", command="pytest smoke")
    before = load_file(str(path))
    small = dataclasses.replace(
        demo.RECIPES["yolact"], train_images=6, train=dataclasses.replace(demo.RECIPES["yolact"].train, batch_size=2)
    )
    monkeypatch.setitem(demo.RECIPES, "yolact", small)
    path2, result = demo.continue_demo_model("yolact", 1, out_dir=tmp_path, device="cpu", command="pytest more")
    assert path2 == path and result.iterations > 0 and not result.cancelled
    after = load_file(str(path))
    assert {v.dtype for v in after.values() if v.is_floating_point()} == {torch.float16}
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["demo"]["command"] == "pytest smoke"  # the original recipe stays recorded
    assert meta["demo"]["continued"][-1]["command"] == "pytest more"
    assert meta["demo"]["continued"][-1]["iterations"] == result.iterations


def test_demo_maskrcnn_trains_and_predicts_at_its_input_size(tmp_path, monkeypatch):
    import dataclasses

    from engine.models import load_segmenter
    from engine.training import demo

    recipe = demo.RECIPES["maskrcnn"]
    assert recipe.input_size != recipe.image_size  # upscaled: the case the sidecar must carry
    seen: list[tuple] = []
    fit = demo.Trainer.fit

    def spy(self):  # the network input while training
        seen.append(tuple(self.segmenter.model.transform.min_size))
        return fit(self)

    monkeypatch.setattr(demo.Trainer, "fit", spy)
    path, _ = demo.train_demo_model("maskrcnn", tmp_path, quick_iters=1, device="cpu")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["min_size"] == meta["max_size"] == recipe.input_size
    assert load_segmenter(path).model.transform.min_size == (recipe.input_size,)
    # A file trained at another size (the shipped one began at 128) continues at the recipe's.
    path.with_suffix(".json").write_text(json.dumps({**meta, "min_size": 128, "max_size": 128}))
    small = dataclasses.replace(recipe, train_images=4, train=dataclasses.replace(recipe.train, batch_size=2))
    monkeypatch.setitem(demo.RECIPES, "maskrcnn", small)
    demo.continue_demo_model("maskrcnn", 1, out_dir=tmp_path, device="cpu")
    assert seen == [(recipe.input_size,), (recipe.input_size,)]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["min_size"] == recipe.input_size and meta["demo"]["continued"][-1]["input_size"] == recipe.input_size


@pytest.mark.parametrize("factor", [0.75, 1.25, 1.6])
def test_zoom_keeps_masks_on_their_objects(factor):
    """The zoomed mask's centroid stays on the zoomed object's (bright pixels') centroid; nearest
    resampling (floor(x / factor)) would move it about half a pixel right and down."""
    yy, xx = np.mgrid[0:96, 0:96]
    disc = (xx - 47.3) ** 2 + (yy - 45.8) ** 2 <= 14.2**2
    image = np.repeat((disc * 255).astype(np.uint8)[..., None], 3, axis=2)
    # Offsets drawn from one seed: zooming in crops a random window, zooming out pads at one.
    zi, zm = scale_jitter(image, disc[None], factor, np.random.default_rng(3))
    pad = int(image[..., 0].mean())  # zooming out fills the border with the mean colour
    weight = np.clip(zi[..., 0].astype(np.float64) - pad, 0, None)
    ty, tx = np.nonzero(zm[0])
    assert abs(tx.mean() - (weight * xx).sum() / weight.sum()) < 0.15
    assert abs(ty.mean() - (weight * yy).sum() / weight.sum()) < 0.15
