"""Issue 13, items 1-4: every file a command reads goes through one strict path.

Each test reproduces a case the hostile-input corpus found (ground truths that ``eval`` scored,
JSON that ended in a RecursionError, file names that left the image folder, NaN/int64 weights,
torch's weights_only advice, checkpoints split by a kill, temp files left by kill -9, a FIFO named
like an image, GIF files loaded but not listed) with generated inputs.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from engine import imageio, jsonio
from engine.checkpoint import load_checkpoint, read_header_metadata, save_checkpoint, sidecar_path
from engine.cli import main as cli_main
from engine.coco_io import read_json
from engine.errors import AnnotationError, DataError, ImageLoadError, WeightsError
from engine.fileio import atomic_write_text, is_our_temp_name, remove_stale_temp_files
from engine.imageio import IMAGE_EXTENSIONS, list_images, load_image, read_image_size
from engine.jsonio import nesting_depth, read_json_file
from engine.models import load_segmenter
from engine.paths import name_problem, path_inside
from engine.project import Project
from engine.synthetic import write_coco_dataset
from engine.torch_weights import read_state_dict
from engine.training.data import load_coco_source, load_data

ROOT = Path(__file__).resolve().parents[1]
HAS_FIFO = hasattr(os, "mkfifo")


def _finishes(fn: Callable[[], object], seconds: float = 20.0) -> object:
    """Run ``fn`` in a thread: a regression that opens a FIFO would block for ever, not fail."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked (opened a special file?)"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> Path:
    """A valid generated COCO set (RLE masks) of 3 images, images in ``images/``."""
    return write_coco_dataset(tmp_path_factory.mktemp("gt"), 3, 48, ("circle", "square"), seed=5)


def _variant(gt: Path, tmp: Path, edit: Callable[[dict], None], name: str = "bad.json") -> Path:
    coco = json.loads(gt.read_text())
    edit(coco)
    out = tmp / name
    out.write_text(json.dumps(coco))
    return out


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = cli_main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _set(path: str, value: object) -> Callable[[dict], None]:
    """An edit that sets coco[a][i][b]... for a dotted path like 'annotations.0.image_id'."""

    def edit(coco: dict) -> None:
        *parents, last = path.split(".")
        node: object = coco
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
        node[int(last) if isinstance(node, list) else last] = value  # type: ignore[index]

    return edit


def _duplicate(key: str) -> Callable[[dict], None]:
    def edit(coco: dict) -> None:
        extra = copy.deepcopy(coco[key][0])
        if key == "images":
            extra["file_name"] = "other.png"
        if key == "categories":
            extra["name"] = "other"
        coco[key].append(extra)

    return edit


# (case, edit of a valid ground truth, what the message must say: the JSON path and the cause)
BAD_GROUND_TRUTHS = [
    ("dangling image id", _set("annotations.0.image_id", 9999), r"annotations\[0\] \(id 1\): 'image_id' 9999 is not"),
    ("unknown category", _set("annotations.0.category_id", 77), r"annotations\[0\] \(id 1\): 'category_id' 77 is not"),
    (
        "RLE counts do not add up",
        _set("annotations.0.segmentation", {"size": [48, 48], "counts": [100, 5]}),
        r"annotations\[0\] \(id 1\)\.segmentation: RLE run lengths add up to 105 pixels, the image has 2304",
    ),
    (
        "garbage RLE string",
        _set("annotations.0.segmentation", {"size": [48, 48], "counts": "!!not RLE~~"}),
        r"annotations\[0\] \(id 1\)\.segmentation: RLE counts: character",
    ),
    (
        "polygon under 6 coordinates",
        _set("annotations.0.segmentation", [[1, 2, 30, 4]]),
        r"annotations\[0\] \(id 1\)\.segmentation\[0\]: a polygon needs at least 3 points",
    ),
    (
        "polygon with an odd number of coordinates",
        _set("annotations.0.segmentation", [[1, 2, 30, 4, 20, 30, 7]]),
        r"segmentation\[0\]: a polygon needs an even number of coordinates, got 7",
    ),
    ("duplicate annotation id", _duplicate("annotations"), r"duplicate annotation id 1"),
    ("duplicate image id", _duplicate("images"), r"images\[3\] \(id 1\): duplicate image id 1"),
    ("duplicate category id", _duplicate("categories"), r"categories\[2\] \(id 1\): duplicate category id 1"),
]


@pytest.mark.parametrize("case,edit,message", BAD_GROUND_TRUTHS, ids=[c[0] for c in BAD_GROUND_TRUTHS])
def test_eval_and_train_refuse_what_import_refuses(tmp_path, capsys, gt, tiny_train_set, case, edit, message):
    import re

    bad = _variant(gt, tmp_path, edit)
    images = str(gt.parent / "images")
    weights = str(tiny_train_set["weights"])
    rc, out, err = _run(capsys, ["eval", "--coco", str(bad), "--images", images, "--weights", weights])
    assert rc == 1 and "AP50" not in out, (case, out)
    assert re.search(message, err), err
    assert "the data set was not loaded" in err
    rc, out, err = _run(
        capsys, ["train", "--coco", str(bad), "--images", images, "--weights", weights, "--out", str(tmp_path / "o")]
    )
    assert rc == 1 and re.search(message, err), err
    assert not (tmp_path / "o" / "model_final.safetensors").exists()
    # ... exactly as import words it: the same reader, the same JSON path.
    with pytest.raises(AnnotationError, match=message):
        Project.open(tmp_path).plan_import(bad)


def test_a_valid_ground_truth_still_evaluates(tmp_path, capsys, gt, tiny_train_set):
    """The refusals above come from the data, not from the setup: the unedited file scores."""
    rc, out, err = _run(
        capsys,
        ["eval", "--coco", str(gt), "--weights", str(tiny_train_set["weights"]), "--device", "cpu"],
    )
    assert rc == 0 and "AP50" in out, err
    source = load_coco_source(gt)
    assert [len(r.annotations) for r in source.records] == [
        sum(a["image_id"] == i["id"] for a in json.loads(gt.read_text())["annotations"])
        for i in json.loads(gt.read_text())["images"]
    ]


# --- JSON depth and size limits ------------------------------------------------------------------
DEEP = 100_000


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare list", "inside the images key"])
def test_deeply_nested_json_gives_a_clear_message(tmp_path, capsys, gt, wrapped):
    body = "[" * DEEP + "]" * DEEP
    deep = tmp_path / "deep.json"
    deep.write_text('{"images": ' + body + ', "annotations": [], "categories": []}' if wrapped else body)
    for command in (["eval", "--weights", "x.safetensors"], ["train", "--out", str(tmp_path / "o")]):
        rc, _, err = _run(capsys, [*command, "--coco", str(deep), "--images", str(gt.parent / "images")])
        assert rc == 1 and f"nested {DEEP + wrapped} levels deep" in err and "Recursion" not in err, err
    with pytest.raises(AnnotationError, match="nested .* levels deep; MaskScope reads at most 64"):
        Project.open(tmp_path).plan_import(deep)  # import and labelme go through the same reader


def test_nesting_depth_ignores_brackets_inside_strings():
    assert nesting_depth(b'{"a": [[1, 2]]}') == 3
    assert nesting_depth(b'{"a": "[[[[[[{{{{"}') == 1
    assert nesting_depth(b'["\\"[[[[", ["\\\\"], [[]]]') == 3  # escaped quote, escaped backslash
    assert nesting_depth(b'"just a string"') == 0
    assert nesting_depth(("[" * 500 + "]" * 500).encode()) == 500


def test_json_size_limit_is_checked_before_reading(tmp_path, monkeypatch, gt):
    monkeypatch.setattr(jsonio, "MAX_JSON_BYTES", 1000)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"images": [], "annotations": [], "categories": [], "info": {"x": "y" * 2000}}))
    with pytest.raises(AnnotationError, match=r"big.json: the file is 2\d\d\d bytes, more than the 1000 bytes"):
        read_json(big)
    with pytest.raises(DataError, match="more than the 1000 bytes"):
        load_coco_source(big, gt.parent / "images")
    small = tmp_path / "small.json"
    small.write_text("[1, 2]")
    assert read_json_file(small) == [1, 2]


# --- file names stay inside the image folder ------------------------------------------------------
@pytest.mark.parametrize(
    "name,cause",
    [
        ("../outside.png", "points outside the image folder"),
        ("/etc/passwd", "is an absolute path"),
        ("sub/../../outside.png", "points outside the image folder"),
        ("..\\outside.png", "points outside the image folder"),
        ("C:\\Windows\\win.ini", "is an absolute path"),
    ],
)
def test_loader_refuses_file_names_outside_the_image_folder(tmp_path, capsys, gt, tiny_train_set, name, cause):
    # A real image where "../outside.png" points, so following the name would have worked.
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for p in (gt.parent / "images").iterdir():
        (data / "images" / p.name).write_bytes(p.read_bytes())
    first = sorted((gt.parent / "images").iterdir())[0]
    (data / "outside.png").write_bytes(first.read_bytes())
    bad = _variant(gt, data, _set("images.0.file_name", name), "annotations.json")
    with pytest.raises(DataError, match=rf"images\[0\] \(id 1\): file_name .*{cause}.*; refused"):
        load_coco_source(bad)
    rc, out, err = _run(capsys, ["eval", "--coco", str(bad), "--weights", str(tiny_train_set["weights"])])
    assert rc == 1 and cause in err and "AP50" not in out
    rc, _, err = _run(capsys, ["train", "--coco", str(bad), "--model", "maskrcnn", "--out", str(tmp_path / "o")])
    assert rc == 1 and cause in err


def test_project_with_an_escaping_file_name_is_no_training_source(tmp_path, gt):
    project = tmp_path / "proj"
    project.mkdir()
    (tmp_path / "outside.png").write_bytes(sorted((gt.parent / "images").iterdir())[0].read_bytes())
    _variant(gt, project, _set("images.0.file_name", "../outside.png"), "annotations.json")
    with pytest.raises(DataError, match="points outside the image folder"):
        load_data(project, None)


def test_path_inside_keeps_harmless_names():
    assert path_inside("/data", "sub/./a.png") == Path("/data/sub/a.png")
    assert path_inside("/data", "sub\\b.png") == Path("/data/sub/b.png")
    assert path_inside("/data", "a/../b.png") == Path("/data/b.png")
    for bad in ("", "..", ".", "/abs.png", "a\x00b.png", "\\\\server\\share\\x.png"):
        assert name_problem(bad), bad


# --- weights ----------------------------------------------------------------------------------------
def _bad_copy(src: Path, dst: Path, change: Callable[[str, torch.Tensor], torch.Tensor]) -> Path:
    tensors, meta = load_checkpoint(src)
    return save_checkpoint(dst, {k: change(k, v) for k, v in tensors.items()}, meta)


def test_all_nan_checkpoint_is_refused_naming_the_tensor(tmp_path, capsys, tiny_train_set, gt):
    bad = _bad_copy(tiny_train_set["weights"], tmp_path / "nan.safetensors", lambda k, v: torch.full_like(v, np.nan))
    with pytest.raises(WeightsError, match=r"nan.safetensors: tensor '([\w.]+)' holds \d+ NaN or infinite") as info:
        load_segmenter(bad)
    named = str(info.value).split("'")[1]
    assert named in load_checkpoint(tiny_train_set["weights"])[0]  # a real tensor of the file
    rc, out, err = _run(capsys, ["eval", "--coco", str(gt), "--weights", str(bad)])
    assert rc == 1 and "NaN or infinite" in err and "AP50" not in out


def test_one_infinite_value_is_found(tmp_path, tiny_train_set):
    def poison(key: str, v: torch.Tensor) -> torch.Tensor:
        if key == "roi_heads.box_predictor.cls_score.bias":
            v = v.clone()
            v[0] = float("inf")
        return v

    bad = _bad_copy(tiny_train_set["weights"], tmp_path / "inf.safetensors", poison)
    with pytest.raises(WeightsError, match=r"'roi_heads.box_predictor.cls_score.bias' holds 1 NaN or infinite"):
        load_checkpoint(bad)


def test_int64_checkpoint_is_refused_naming_the_tensor(tmp_path, tiny_train_set):
    bad = _bad_copy(tiny_train_set["weights"], tmp_path / "int.safetensors", lambda k, v: v.to(torch.int64))
    with pytest.raises(
        WeightsError, match=r"int.safetensors: tensor '[\w.]+' has dtype int64; weights must be floating"
    ):
        load_segmenter(bad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_checkpoints_still_load_as_float32(tmp_path, tiny_train_set, dtype):
    half = _bad_copy(tiny_train_set["weights"], tmp_path / "half.safetensors", lambda k, v: v.to(dtype))
    seg = load_segmenter(half)
    assert all(p.dtype == torch.float32 for p in seg.model.parameters())


def test_wrong_shape_is_refused_naming_the_tensor(tmp_path, tiny_train_set):
    key = "roi_heads.box_head.fc6.weight"

    def reshape(k: str, v: torch.Tensor) -> torch.Tensor:
        return v[:-1] if k == key else v

    bad = _bad_copy(tiny_train_set["weights"], tmp_path / "shape.safetensors", reshape)
    with pytest.raises(WeightsError, match=rf"{key}: \(\d+, \d+\) instead of"):
        load_segmenter(bad)


def test_pth_weights_are_checked_too(tmp_path):
    nan = tmp_path / "nan.pth"
    torch.save({"model": {"conv.weight": torch.full((2, 2), float("nan"))}}, nan)
    with pytest.raises(WeightsError, match=r"tensor 'conv.weight' holds 4 NaN"):
        read_state_dict(nan)
    ints = tmp_path / "int.pth"
    torch.save({"conv.weight": torch.zeros(2, dtype=torch.int64), "bn.num_batches_tracked": torch.tensor(3)}, ints)
    with pytest.raises(WeightsError, match=r"'conv.weight' has dtype int64"):
        read_state_dict(ints)
    ok = tmp_path / "ok.pth"
    torch.save({"conv.weight": torch.zeros(2, dtype=torch.float16), "bn.num_batches_tracked": torch.tensor(3)}, ok)
    assert set(read_state_dict(ok)) == {"conv.weight", "bn.num_batches_tracked"}


class Payload:
    """A pickled object that ``weights_only=True`` refuses."""


def test_unsafe_pickle_message_never_suggests_weights_only_false(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(WeightsError) as info:
        read_state_dict(path)
    text = str(info.value)
    assert "pickled Python objects" in text and "Payload" in text, text
    for advice in ("weights_only", "False", "safe_globals", "trust", "can still be loaded"):
        assert advice not in text, text


# --- checkpoints: one self-describing file -------------------------------------------------------
def test_checkpoint_loads_without_its_json_sidecar(tmp_path):
    meta = {"architecture": "maskrcnn", "class_names": ["a"], "config": "x", "nested": {"k": [1, 2]}}
    path = save_checkpoint(tmp_path / "epoch_001", {"w": torch.ones(2)}, meta)
    assert json.loads(sidecar_path(path).read_text()) == meta == read_header_metadata(path)
    sidecar_path(path).unlink()  # a kill between the two writes, or a copy of the .safetensors alone
    tensors, again = load_checkpoint(path)
    assert again == meta and torch.equal(tensors["w"], torch.ones(2))


def test_checkpoints_written_before_the_header_metadata_still_load(tmp_path):
    path = tmp_path / "old.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(WeightsError, match="no MaskScope metadata in its header and has no old.json beside it"):
        load_checkpoint(path)
    sidecar_path(path).write_text(json.dumps({"architecture": "yolact", "class_names": ["a"]}))
    assert load_checkpoint(path)[1]["architecture"] == "yolact"
    sidecar_path(path).write_text("[" * 1000 + "]" * 1000)
    with pytest.raises(WeightsError, match="nested 1000 levels deep"):
        load_checkpoint(path)


def test_shipped_demo_models_load():
    for path in sorted((ROOT / "resources" / "models").glob("*.safetensors")):
        tensors, meta = load_checkpoint(path)
        assert tensors and meta["class_names"], path


# --- stale temp files of our atomic writes -------------------------------------------------------
def _age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def test_remove_stale_temp_files_removes_only_ours_and_only_old(tmp_path):
    old = _age(_touch(tmp_path / ".annotations.json.k2j_9x0a.tmp"), 3600)
    ours_old = _age(_touch(tmp_path / ".epoch_001.safetensors.ab12cd34.tmp"), 3600)
    fresh = _touch(tmp_path / ".annotations.json.zzzzzzzz.tmp")  # being written by a running process
    foreign = [
        tmp_path / ".photo.jpg.abcdefgh.tmp",  # not a file we write
        tmp_path / "annotations.json.abcdefgh.tmp",  # not hidden
        tmp_path / ".annotations.json.abc.tmp",  # not mkstemp's 8 characters
        tmp_path / "notes.tmp",
    ]
    for p in foreign:
        _age(_touch(p), 3600)
    (tmp_path / ".dir.json.abcdefgh.tmp").mkdir()  # a folder with our pattern is not ours
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(removed) == sorted([old, ours_old])
    assert fresh.exists() and all(p.exists() for p in foreign) and (tmp_path / ".dir.json.abcdefgh.tmp").is_dir()
    assert remove_stale_temp_files(tmp_path / "missing") == []
    assert is_our_temp_name(".annotations.autosave.json.a_b1c2d3.tmp")


_KILLED_WRITER = """
import os, sys, time
import engine.fileio as fileio
os.fsync = lambda fd: (print("writing", flush=True), time.sleep(120))
fileio.atomic_write_text(sys.argv[1], "{}")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_kill_9_during_save_leaves_a_temp_file_that_the_next_open_removes(tmp_path):
    project = tmp_path / "images"
    project.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(project / "annotations.json")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    left = [p.name for p in project.iterdir()]
    assert len(left) == 1 and is_our_temp_name(left[0]), left  # what kill -9 left: the case
    # The next session (a new process) opens the folder: the leftover goes.
    opener = "import sys; from engine.project import Project; Project.open(sys.argv[1])"
    subprocess.run([sys.executable, "-c", opener, str(project)], check=True, env=env, cwd=ROOT, timeout=120)
    assert [p.name for p in project.iterdir()] == [".maskscope"]  # only the project store it made


def test_project_open_and_train_clean_their_folders(tmp_path, capsys, gt):
    project = tmp_path / "proj"
    project.mkdir()
    stale = _age(_touch(project / ".annotations.json.abcdefgh.tmp"), 600)
    Project.open(project)
    assert not stale.exists()
    out = tmp_path / "run"
    out.mkdir()
    stale_ckpt = _age(_touch(out / ".epoch_002.safetensors.abcdefgh.tmp"), 600)
    empty = _variant(gt, tmp_path, _set("annotations", []), "empty.json")
    rc, _, err = _run(
        capsys, ["train", "--coco", str(empty), "--images", str(gt.parent / "images"), "--model", "maskrcnn",
                 "--out", str(out)]
    )  # fmt: skip
    assert rc == 1 and "no annotated images" in err and not stale_ckpt.exists()


def _touch(path: Path) -> Path:
    path.write_bytes(b"partial")
    return path


def test_atomic_write_leaves_no_temp_file(tmp_path):
    atomic_write_text(tmp_path / "annotations.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["annotations.json"]


# --- special files ---------------------------------------------------------------------------------
@pytest.mark.skipif(not HAS_FIFO, reason="no FIFOs on this OS")
def test_fifo_named_like_an_image_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    for read in (load_image, read_image_size):
        with pytest.raises(ImageLoadError, match=r"x.png': not a regular file \(it is a FIFO"):
            _finishes(lambda read=read: read(fifo))
    assert list_images(tmp_path) == []  # listing and loading agree: not an image file


def test_folder_named_like_an_image_is_not_a_regular_file(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageLoadError, match=r"not a regular file \(it is a folder\)"):
        load_image(tmp_path / "dir.png")


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_device_is_not_a_regular_file():
    with pytest.raises(ImageLoadError, match=r"not a regular file \(it is a character device\)"):
        load_image("/dev/null")
    with pytest.raises(AnnotationError, match="not a regular file"):
        read_json("/dev/null")


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets")
def test_socket_named_like_an_image_is_not_a_regular_file(tmp_path):
    path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        with pytest.raises(ImageLoadError, match=r"not a regular file \(it is a socket\)"):
            load_image(path)


@pytest.mark.skipif(not HAS_FIFO, reason="no FIFOs on this OS")
def test_fifo_as_annotation_file_or_training_image(tmp_path, gt):
    project = tmp_path / "proj"
    project.mkdir()
    os.mkfifo(project / "annotations.json")
    with pytest.raises(AnnotationError, match="annotations.json: not a regular file"):
        _finishes(lambda: Project.open(project))
    with pytest.raises(DataError, match="not a regular file"):
        _finishes(lambda: load_coco_source(project / "annotations.json", gt.parent / "images"))
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    for p in (gt.parent / "images").iterdir():
        (images / p.name).write_bytes(p.read_bytes())
    first = sorted(images.iterdir())[0]
    first.unlink()
    os.mkfifo(first)
    with pytest.raises(DataError, match=rf"1 image path\(s\) .* are not regular files .*{first.name}"):
        _finishes(lambda: load_coco_source(gt, images))


# --- folder listing and loader agree on formats --------------------------------------------------
def test_gif_is_listed_and_loaded(tmp_path):
    Image.new("P", (5, 4), 1).save(tmp_path / "anim.gif")
    Image.new("RGB", (5, 4), (1, 2, 3)).save(tmp_path / "b.png")
    assert [p.name for p in list_images(tmp_path)] == ["anim.gif", "b.png"]
    assert load_image(tmp_path / "anim.gif").rgb.shape == (4, 5, 3)


def test_every_listed_suffix_is_a_format_the_loader_opens_and_back():
    formats = set(imageio._formats())
    Image.init()
    for ext in IMAGE_EXTENSIONS:
        assert Image.EXTENSION[ext] in formats, ext
    listed_formats = {Image.EXTENSION[ext] for ext in IMAGE_EXTENSIONS}
    assert listed_formats == formats
    assert ".eps" not in IMAGE_EXTENSIONS and ".pdf" not in IMAGE_EXTENSIONS
    assert "*.gif" in imageio.image_file_filter()
