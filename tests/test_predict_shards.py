"""Sharded prediction: ``predict`` under torchrun (each rank its share, rank 0 writes one merged file)
and ``merge-results`` after separate ``--shard`` runs, which refuses overlapping or mismatched shards."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cli import main
from engine.coco_results import images_path_for
from engine.maskrcnn import create
from engine.synthetic import generate_image

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["circle", "square"]


def _checkpoint(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    seg = create("maskrcnn_r18_fpn", "random", "cpu", CLASSES, 0.5, min_size=96, max_size=128)
    with torch.no_grad():  # scores spread out: some detections pass the threshold
        seg.model.roi_heads.box_predictor.cls_score.weight.mul_(30)
    return seg.save(folder / f"model{seed}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("shards")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for i, size in enumerate(((90, 110), (96, 96), (80, 120), (100, 90))):
        Image.fromarray(generate_image(rng, size).image).save(images / f"im{i}.png")
    (images / "im2b.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")  # sorted 4th of 5: im0 im1 im2 im2b im3
    return {"images": images, "weights": _checkpoint(root, 0), "other": _checkpoint(root, 1)}


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def predict(setup: dict, out: Path, *extra: str, weights: str = "weights") -> tuple[int, str, str]:
    return cli(
        "predict", str(setup["images"]), "--weights", str(setup[weights]), "--device", "cpu", "--no-progress",
        "--score-thresh", "0.3", "--out", str(out), *extra,
    )  # fmt: skip


def read(out: Path) -> tuple[list, dict]:
    return json.loads(out.read_text()), json.loads(images_path_for(out).read_text())


@pytest.fixture(scope="module")
def full(setup, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "all.json"
    code, _, err = predict(setup, out)
    assert code == 0, err
    results, listing = read(out)
    assert [im["id"] for im in listing["images"]] == [1, 2, 3, 5] and len(results) > 0
    assert listing["shard"] == {"start": 0, "stop": 5, "total": 5}
    return out


def test_torchrun_ranks_share_the_list_and_rank0_writes_one_file(tmp_path, setup, full):
    out = tmp_path / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "main.py",
        "predict", str(setup["images"]), "--weights", str(setup["weights"]), "--device", "cpu",
        "--score-thresh", "0.3", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("wrote ") == 1 and "im2b.png" in r.stderr  # rank 1's failure reported by rank 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.images.json", "ddp.json"]
    results, listing = read(out)
    want_results, want_listing = read(full)
    assert results == want_results  # the same detections, in image order
    assert listing["images"] == want_listing["images"] and listing["failed"] == want_listing["failed"]
    assert listing["shard"] == {"start": 0, "stop": 5, "total": 5}


def test_merge_results_of_separate_shards_equals_one_run(tmp_path, setup, full):
    parts = []
    for spec in ("0:2", "2:4", "4:"):
        part = tmp_path / f"part{spec.replace(':', '_')}.json"
        assert predict(setup, part, "--shard", spec)[0] == 0
        parts.append(part)
    merged = tmp_path / "merged.json"
    # shards in any order; one named by its image list
    code, stdout, err = cli("merge-results", str(parts[2]), str(images_path_for(parts[0])), str(parts[1]),
                            "--out", str(merged))  # fmt: skip
    assert code == 0, err
    assert "merged 3 shards" in stdout and "no shard covers" not in err
    results, listing = read(merged)
    want_results, want_listing = read(full)
    assert results == want_results
    assert listing["images"] == want_listing["images"] and listing["shard"] == want_listing["shard"]
    assert [f["path"] for f in listing["failed"]] == [f["path"] for f in want_listing["failed"]]
    # a missing middle shard merges with a note
    code, _, err = cli("merge-results", str(parts[0]), str(parts[2]), "--out", str(tmp_path / "gap.json"))
    assert code == 0 and "no shard covers images 2:4" in err


@pytest.fixture(scope="module")
def shard_files(setup, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_shards")
    runs = {"a": ("--shard", "0:3"), "b": ("--shard", "2:5"), "c": ("--shard", "3:5")}
    files = {}
    for name, extra in runs.items():
        files[name] = root / f"{name}.json"
        assert predict(setup, files[name], *extra)[0] == 0
    files["other"] = root / "other.json"
    assert predict(setup, files["other"], "--shard", "3:5", weights="other")[0] == 0
    files["short"] = root / "short.json"  # a different image list: one file
    code, _, err = cli("predict", str(setup["images"] / "im3.png"), "--weights", str(setup["weights"]),
                       "--device", "cpu", "--score-thresh", "0.3", "--out", str(files["short"]))  # fmt: skip
    assert code == 0, err
    return files


@pytest.mark.parametrize(
    "names, message",
    [
        (("a", "b"), "is in both"),  # image ids 3 overlaps
        (("a", "other"), "differ in their weights"),
        (("c", "short"), "is image 5 in"),  # im3.png: id 5 in the folder run, 1 in the one-file run
        (("a", "a"), "named twice"),
        (("a", "missing"), "not found"),
    ],
)
def test_merge_refuses_inconsistent_shards(tmp_path, shard_files, names, message):
    paths = [str(shard_files.get(n, tmp_path / f"{n}.json")) for n in names]
    out = tmp_path / "m.json"
    code, _, err = cli("merge-results", *paths, "--out", str(out))
    assert code == 1 and message in err, err
    assert not out.exists()


def test_merge_refuses_tampered_shards(tmp_path, shard_files):
    a, c = shard_files["a"], shard_files["c"]
    code, _, err = cli("merge-results", str(a), str(c), "--out", str(a))
    assert code == 1 and "is one of the shards" in err
    # a result whose image its shard does not list
    bad = tmp_path / "bad.json"
    results, listing = read(c)
    bad.write_text(json.dumps([*results, {**results[0], "image_id": 2}]))
    images_path_for(bad).write_text(json.dumps(listing))
    code, _, err = cli("merge-results", str(a), str(bad), "--out", str(tmp_path / "m.json"))
    assert code == 1 and "image ids [2] missing from its own image list" in err
    # overlapping recorded ranges even where the overlapping image failed to load in both
    listing_b = {**listing, "images": [], "shard": {"start": 2, "stop": 5, "total": 5}}
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    images_path_for(empty).write_text(json.dumps(listing_b))
    code, _, err = cli("merge-results", str(a), str(empty), "--out", str(tmp_path / "m.json"))
    assert code == 1 and "covers images 0:3" in err and "overlap" in err
    # the command is reachable through main.py; not JSON at all
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "main.py", "merge-results", str(a), str(bad), "--out", str(tmp_path / "m.json")]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "missing from its own image list" in r.stderr, r.stderr
    images_path_for(bad).write_text("{")
    code, _, err = cli("merge-results", str(a), str(bad), "--out", str(tmp_path / "m.json"))
    assert code == 1 and "not a readable image list" in err
