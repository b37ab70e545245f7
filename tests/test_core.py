"""Shared engine pieces: compact masks, RLE, checkpoints, atomic writes, classes, CLI dispatch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.classes import COCO_CATEGORY_IDS, COCO_CLASSES, category_ids_for
from engine.errors import MaskScopeError, WeightsError
from engine.fileio import atomic_write_text
from engine.masks import CroppedMask, decode_rle

ROOT = Path(__file__).resolve().parents[1]


def _disk(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_cropped_mask_round_trips_full_and_rle():
    full = _disk(60, 80, 30, 50, 12)
    cm = CroppedMask.from_full(full)
    assert cm.bits.shape == (25, 25)  # stored at object size, not image size
    assert (cm.x0, cm.y0) == (38, 18)
    assert np.array_equal(cm.to_full(), full)
    assert cm.area == int(full.sum())
    rle = cm.to_rle()
    assert isinstance(rle["counts"], str)
    assert np.array_equal(decode_rle(rle), full)
    assert CroppedMask.from_rle(rle).area == cm.area
    assert cm.bbox_xywh() == [38.0, 18.0, 25.0, 25.0]


def test_uncompressed_rle_decodes():
    full = _disk(20, 30, 10, 10, 5)
    # Build uncompressed counts (column-major run lengths starting with zeros).
    flat = full.flatten(order="F").astype(np.uint8)
    counts, prev, run = [], 0, 0
    for v in flat:
        if v != prev:
            counts.append(run)
            run, prev = 0, v
        run += 1
    counts.append(run)
    assert np.array_equal(decode_rle({"size": [20, 30], "counts": counts}), full)


def test_empty_mask_is_empty_everywhere():
    cm = CroppedMask.from_full(np.zeros((10, 10), bool))
    assert cm.area == 0 and cm.bits.shape == (0, 0)
    assert not cm.to_full().any()
    assert cm.bbox_xywh() == [0.0, 0.0, 0.0, 0.0]
    rle = cm.to_rle()
    assert mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}) == 0


def test_checkpoint_round_trip_and_errors(tmp_path):
    state = {"a.weight": torch.randn(3, 4), "b.bias": torch.arange(5.0)}
    state["tied"] = state["a.weight"]  # shared storage must not break saving
    path = save_checkpoint(tmp_path / "model", state, {"architecture": "maskrcnn", "class_names": ["x"]})
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    tensors, meta = load_checkpoint(path)
    assert torch.equal(tensors["a.weight"], state["a.weight"]) and meta["class_names"] == ["x"]

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="bad.safetensors"):
        load_checkpoint(bad)
    path.with_suffix(".json").unlink()  # only a readable copy: the metadata is in the header
    assert load_checkpoint(path)[1] == meta
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(tmp_path / "plain.safetensors"))  # no header metadata, no sidecar
    with pytest.raises(WeightsError, match="metadata"):
        load_checkpoint(tmp_path / "plain.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_atomic_write_keeps_old_file_when_disk_is_full(tmp_path, monkeypatch):
    target = tmp_path / "annotations.json"
    atomic_write_text(target, json.dumps({"v": 1}))

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(MaskScopeError, match="No space left"):
        atomic_write_text(target, json.dumps({"v": 2}))
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["annotations.json"]  # no temp file left behind


def test_coco_classes_and_category_ids():
    assert len(COCO_CLASSES) == 80 and COCO_CLASSES[0] == "person" and COCO_CLASSES[-1] == "toothbrush"
    assert COCO_CATEGORY_IDS[11] == 13 and COCO_CATEGORY_IDS[-1] == 90
    assert category_ids_for(list(COCO_CLASSES)) == list(COCO_CATEGORY_IDS)
    assert category_ids_for(["circle", "square"]) == [1, 2]


def test_cli_without_command_prints_help():
    result = subprocess.run(
        [sys.executable, "main.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "maskscope" in result.stdout


def test_rle_of_patch_without_pixels_is_empty():
    cm = CroppedMask(3, 4, np.zeros((5, 6), bool), (20, 30))  # a patch with a shape but no set pixel
    rle = cm.to_rle()
    assert rle["size"] == [20, 30]
    assert not decode_rle(rle).any()


def test_atomic_write_into_impossible_folder_names_the_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MaskScopeError, match="Could not write .*out.json"):
        atomic_write_text(blocker / "sub" / "out.json", "{}")


def test_atomic_write_keeps_permissions(tmp_path):
    new = tmp_path / "new.json"
    atomic_write_text(new, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    os.chmod(new, 0o640)
    atomic_write_text(new, "[]")
    assert new.stat().st_mode & 0o777 == 0o640
