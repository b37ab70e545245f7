"""``python main.py predict``: folders and files in, COCO results JSON (+ image list) out."""

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
from pycocotools.coco import COCO

from engine.cli import main
from engine.coco_results import images_path_for, prediction_results
from engine.maskrcnn import create
from engine.masks import CroppedMask, decode_rle
from engine.models import load_segmenter
from engine.segmenter import Instance, Prediction
from engine.synthetic import generate_image

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small random Mask R-CNN whose scores spread out, saved in our safetensors format."""
    torch.manual_seed(0)
    seg = create("maskrcnn_r18_fpn", "random", "cpu", CLASSES, 0.5, min_size=128, max_size=160)
    with torch.no_grad():
        seg.model.roi_heads.box_predictor.cls_score.weight.mul_(30)
    return seg.save(tmp_path_factory.mktemp("ckpt") / "small")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    for name, size in (("b2.png", (120, 150)), ("a10.jpg", (128, 128)), ("sub/c.png", (100, 140))):
        (root / name).parent.mkdir(exist_ok=True)
        Image.fromarray(generate_image(rng, size).image).save(root / name)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return root


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["predict", *args])
    return code, out.getvalue(), err.getvalue()


def load_results(out: Path) -> tuple[COCO, list[dict], dict]:
    listing = json.loads(images_path_for(out).read_text())
    gt = COCO()
    gt.dataset = {"images": listing["images"], "categories": listing["categories"], "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        res = gt.loadRes(str(out))
    return res, json.loads(out.read_text()), listing


def test_folder_with_a_broken_file(tmp_path, checkpoint, folder):
    out = tmp_path / "results.json"
    code, stdout, stderr = run_cli(
        str(folder), "--weights", str(checkpoint), "--score-thresh", "0.6", "--device", "cpu", "--out", str(out)
    )
    assert code == 0, stderr
    assert "broken.png" in stderr and "1 of 3 images could not be read" in stderr
    assert "wrote" in stdout and images_path_for(out) == tmp_path / "results.images.json"

    res, entries, listing = load_results(out)
    assert [im["file_name"] for im in listing["images"]] == ["a10.jpg", "b2.png"]  # natural order
    assert [im["id"] for im in listing["images"]] == [1, 2]
    assert (listing["images"][1]["width"], listing["images"][1]["height"]) == (150, 120)
    assert listing["categories"] == [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    assert listing["failed"][0]["path"].endswith("broken.png")
    assert listing["model"]["config"] == "maskrcnn_r18_fpn"
    assert len(entries) == len(res.anns) > 0
    for e in entries:
        assert e["image_id"] in (1, 2) and e["category_id"] in (1, 2, 3) and e["score"] > 0.6
        assert isinstance(e["segmentation"]["counts"], str) and len(e["bbox"]) == 4

    # The same image through the API gives the same entries.
    seg = load_segmenter(checkpoint, device="cpu", score_thresh=0.6)
    pred = seg.predict(np.asarray(Image.open(folder / "a10.jpg").convert("RGB")))
    mine = prediction_results(pred, 1, seg.category_ids)
    assert mine == [e for e in entries if e["image_id"] == 1]
    full = decode_rle(mine[0]["segmentation"])
    assert np.array_equal(full, pred.instances[0].mask.to_full())


def test_files_recursive_and_shard(tmp_path, checkpoint, folder):
    out = tmp_path / "r"
    code, _, stderr = run_cli(
        str(folder), "--recursive", "--shard", "1:4", "--weights", str(checkpoint), "--no-progress",
        "--score-thresh", "0", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    _, entries, listing = load_results(out)
    # Sorted: a10.jpg, b2.png, broken.png, sub/c.png; ids follow the full listing.
    assert [(im["id"], im["file_name"]) for im in listing["images"]] == [(2, "b2.png"), (4, "sub/c.png")]
    assert {e["image_id"] for e in entries} == {2, 4} and "broken.png" in stderr
    assert len(entries) == 2 * 50  # threshold 0 keeps the config's top 50 per image

    single = tmp_path / "one.json"
    code, _, _ = run_cli(str(folder / "sub" / "c.png"), "--weights", str(checkpoint), "--out", str(single))
    assert code == 0
    listing = json.loads((tmp_path / "one.images.json").read_text())
    assert listing["images"][0]["file_name"] == "c.png" and listing["failed"] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["EMPTY"], "No images found"),
        (["MISSING"], "No such file or folder"),
        (["BROKEN"], "None of the 1 images could be read"),
        (["IMAGE", "--weights", "nowhere.pth"], "not found"),
        (["IMAGE", "--score-thresh", "1.5"], "between 0 and 1"),
        (["IMAGE", "--config", "maskrcnn_r18_fpn"], "no published weights"),
        (["IMAGE", "--shard", "5:9"], "selects none"),
    ],
)
def test_bad_input_exits_nonzero(tmp_path, folder, checkpoint, args, message):
    (tmp_path / "empty").mkdir()
    paths = {
        "EMPTY": str(tmp_path / "empty"),
        "MISSING": str(tmp_path / "missing"),
        "BROKEN": str(folder / "broken.png"),
        "IMAGE": str(folder / "a10.jpg"),
    }
    args = [paths.get(a, a) for a in args]
    if "--weights" not in args and "--config" not in args:
        args += ["--weights", str(checkpoint)]
    out = tmp_path / "out.json"
    code, _, stderr = run_cli(*args, "--out", str(out))
    assert code == 1 and message in stderr
    assert not out.exists()


def test_unknown_model_is_refused(tmp_path, folder):
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(io.StringIO()) as err:
        main(["predict", str(folder), "--model", "detr", "--out", str(tmp_path / "x.json")])
    assert info.value.code == 2 and "invalid choice: 'detr'" in err.getvalue()


def test_subprocess_main_py(tmp_path, checkpoint, folder):
    out = tmp_path / "sub.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "main.py", "predict", str(folder / "b2.png"), "--model", "maskrcnn",
         "--weights", str(checkpoint), "--score-thresh", "0.6", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res, entries, _ = load_results(out)
    assert len(res.anns) == len(entries) > 0


def test_results_entries_and_paths():
    assert images_path_for("a/results.json") == Path("a/results.images.json")
    assert images_path_for("out") == Path("out.images.json")
    bits = np.zeros((4, 5), bool)
    bits[1:3, 2:4] = True
    empty = Instance(0, 0.25, np.array([3, 2, 8, 6], np.float32), CroppedMask(3, 2, np.zeros((4, 5), bool), (10, 12)))
    full = Instance(1, 0.5, np.array([3.5, 2, 8, 6.25], np.float32), CroppedMask(3, 2, bits, (10, 12)))
    pred = Prediction((10, 12), [full, empty], ["a", "b"])
    a, b = prediction_results(pred, 7, [11, 22])
    assert (a["image_id"], a["category_id"], a["score"], a["bbox"]) == (7, 22, 0.5, [3.5, 2.0, 4.5, 4.25])
    assert np.array_equal(decode_rle(a["segmentation"]), full.mask.to_full())
    assert b["category_id"] == 11 and not decode_rle(b["segmentation"]).any()
    assert b["segmentation"]["size"] == [10, 12]


def test_predict_into_a_project_stores_a_run_for_review(tmp_path, checkpoint, folder):
    import shutil

    from engine.project import Project

    project_dir = tmp_path / "project"
    shutil.copytree(folder, project_dir)
    code, stdout, stderr = run_cli(
        "--project", str(project_dir), "--weights", str(checkpoint), "--score-thresh", "0.6", "--device", "cpu"
    )
    assert code == 0, stderr
    assert "stored run #1 (2 images)" in stderr and "wrote" not in stdout  # no --out: the store only
    project = Project.open(project_dir)
    (run,) = project.runs()
    assert run.class_names == CLASSES and run.settings["score_threshold"] == 0.6 and run.weights_sha256
    stored = project.predictions("a10.jpg")
    seg = load_segmenter(checkpoint, device="cpu", score_thresh=0.6)
    pred = seg.predict(np.asarray(Image.open(project_dir / "a10.jpg").convert("RGB")))
    assert [p.label for p in stored] == [i.label for i in pred.instances]
    assert all(p.review == "pending" for p in stored)
    assert np.array_equal(stored[0].mask().to_full(), pred.instances[0].mask.to_full())
    assert project.status("a10.jpg") == "predicted"
    project.close()
    # with --out too, and PATHs outside the project refused before anything runs
    out = tmp_path / "r.json"
    assert (
        run_cli(str(project_dir), "--project", str(project_dir), "--weights", str(checkpoint), "--out", str(out))[0]
        == 0
    )
    assert out.is_file() and len(Project.open(project_dir).runs()) == 2
    code, _, stderr = run_cli(str(folder), "--project", str(project_dir), "--weights", str(checkpoint))
    assert code == 1 and "not inside the project" in stderr and len(Project.open(project_dir).runs()) == 2
    assert run_cli(str(folder), "--weights", str(checkpoint))[0] == 1  # neither --out nor --project
