"""engine.model_registry and ``python main.py models``: entries, status, download, locate."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from weights_server import isolate_install_dirs, running_server, sha_prefix

from engine import model_registry as R  # noqa: N812
from engine.cli import main as cli_main
from engine.download import part_path
from engine.errors import MaskScopeError, WeightsError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    return isolate_install_dirs(tmp_path, monkeypatch)


def tiny_yolact_entry() -> R.ModelEntry:
    return dataclasses.replace(R.get_entry("yolact_r50_coco"), name="tiny_yolact", config="yolact_tiny")


def tiny_maskrcnn_entry(url: str | None = None, sha: str | None = None) -> R.ModelEntry:
    return dataclasses.replace(
        R.get_entry("maskrcnn_r50_coco"),
        name="tiny_maskrcnn",
        config="maskrcnn_r18_fpn",
        file_name=f"tiny_maskrcnn-{sha or '0'}.pth",
        url=url,
        sha256_prefix=sha,
        num_classes=3,
    )


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> dict[str, Path]:
    """Random-init weight files of the tiny configs, saved the way official files are (state dicts)."""
    from engine.maskrcnn.configs import build_model, get_config
    from engine.yolact.config import get_config as yolact_config
    from engine.yolact.model import Yolact

    root = tmp_path_factory.mktemp("tiny_weights")
    torch.manual_seed(0)
    yolact = root / "yolact_tiny_1_10.pth"
    torch.save(Yolact(yolact_config("yolact_tiny")).state_dict(), yolact)
    cfg = get_config("maskrcnn_r18_fpn")
    maskrcnn = root / "mine.pth"
    torch.save({"model": build_model(cfg, 3, 64, 96).state_dict()}, maskrcnn)
    wrong_classes = root / "five_classes.pth"
    torch.save(build_model(cfg, 6, 64, 96).state_dict(), wrong_classes)
    garbage = root / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    return {"yolact": yolact, "maskrcnn": maskrcnn, "wrong_classes": wrong_classes, "garbage": garbage}


# --- the entries ----------------------------------------------------------------------------------
def test_every_issue_model_is_known():
    names = {e.name for e in R.entries()}
    assert names == {
        "demo",
        "demo_yolact",
        "maskrcnn_r50_coco",
        "maskrcnn_r50_v2_coco",
        "yolact_r50_coco",
        "yolact_r101_coco",
        "yolact_im700_coco",
    }
    for entry in R.entries():
        assert entry.licence and entry.source and entry.file_name
    with pytest.raises(MaskScopeError, match="Unknown model 'nope'.*maskrcnn_r50_coco"):
        R.get_entry("nope")


@pytest.mark.parametrize(
    "name, enum_name",
    [
        ("maskrcnn_r50_coco", "MaskRCNN_ResNet50_FPN_Weights"),
        ("maskrcnn_r50_v2_coco", "MaskRCNN_ResNet50_FPN_V2_Weights"),
    ],
)
def test_torchvision_entries_match_the_weight_enums(name, enum_name):
    """The URLs are written out (no torch import for a list); they must be torchvision's."""
    import torchvision.models.detection.mask_rcnn as mask_rcnn
    from torch.hub import HASH_REGEX

    from engine.maskrcnn.configs import get_config
    from engine.maskrcnn.weights import coco_cache_path

    entry = R.get_entry(name)
    weights = getattr(mask_rcnn, enum_name).COCO_V1
    assert entry.url == weights.url and entry.downloadable
    assert entry.file_name == os.path.basename(weights.url)
    assert entry.sha256_prefix == HASH_REGEX.search(entry.file_name).group(1)
    assert abs(entry.size_bytes / 2**20 - weights.meta["_file_size"]) < 0.01
    assert get_config(entry.config).coco_weights is weights
    assert entry.num_classes == len(weights.meta["categories"])
    assert R.install_path(entry) == coco_cache_path(weights)  # where the loader looks


def test_yolact_entries_match_the_configs():
    from engine.yolact.config import get_config

    for name in ("yolact_r50_coco", "yolact_r101_coco", "yolact_im700_coco"):
        entry = R.get_entry(name)
        assert entry.kind == R.MANUAL and not entry.downloadable
        assert entry.file_name == get_config(entry.config).checkpoint
        assert entry.source.startswith("https://drive.google.com/")
        assert "Google Drive" in R.how_to_get(entry) and entry.source in R.how_to_get(entry)


def test_install_folders_are_where_the_loaders_look(dirs, monkeypatch):
    from engine.yolact import weights_dir

    assert R.yolact_weights_dir() == weights_dir() == dirs / "weights"
    monkeypatch.delenv("MASKSCOPE_WEIGHTS_DIR")
    assert R.yolact_weights_dir() == weights_dir()
    assert R.torch_hub_dir() == Path(torch.hub.get_dir()) == dirs / "torch" / "hub"
    # The torch-free path (torch not imported yet) must agree with torch's own rule.
    monkeypatch.delitem(sys.modules, "torch")
    assert R.torch_hub_dir() == dirs / "torch" / "hub"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs / "xdg"))
    assert R.torch_hub_dir() == dirs / "xdg" / "torch" / "hub"
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs / "xdg"))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    assert Path(torch.hub.get_dir()) == dirs / "xdg" / "torch" / "hub"


def test_status_missing_partial_installed(dirs):
    entry = R.get_entry("maskrcnn_r50_coco")
    target = dirs / "torch" / "hub" / "checkpoints" / entry.file_name
    state = R.status(entry)
    assert not state.installed and state.path == target and "missing" in state.describe()
    target.parent.mkdir(parents=True)
    part_path(target).write_bytes(b"x" * 1500)
    state = R.status(entry)
    assert state.partial_bytes == 1500 and "partly downloaded" in state.describe()
    target.write_bytes(b"y" * 10)
    assert R.status(entry).installed and R.size_bytes(entry) == 10
    demo = R.get_entry("demo")
    assert R.status(demo).installed == (R.DEMO_DIR / "demo_maskrcnn.safetensors").is_file()


# --- download -------------------------------------------------------------------------------------
def test_download_model_installs_into_the_hub_cache(dirs):
    payload = os.urandom(50_000)
    with running_server() as server:
        url = server.add("/tiny.pth", payload)
        entry = tiny_maskrcnn_entry(url, sha_prefix(payload))
        path = R.download_model(entry)
    assert path == dirs / "torch" / "hub" / "checkpoints" / entry.file_name
    assert path.read_bytes() == payload and R.status(entry).installed


def test_manual_model_refuses_download_and_says_where_to_get_it():
    entry = R.get_entry("yolact_r101_coco")
    with pytest.raises(MaskScopeError, match="cannot be downloaded automatically.*drive.google.com"):
        R.download_model(entry)


# --- locate ---------------------------------------------------------------------------------------
def test_locate_yolact_checks_then_installs(dirs, tiny_files):
    entry = tiny_yolact_entry()
    messages = []
    path = R.locate(entry, tiny_files["yolact"], log=messages.append)
    assert path == dirs / "weights" / entry.file_name
    assert path.read_bytes() == tiny_files["yolact"].read_bytes()
    assert R.status(entry).installed and "Checking" in messages[0]
    assert R.locate(entry, path) == path  # already in place: checked, not copied onto itself


def test_locate_rejects_a_file_of_another_model(dirs, tiny_files):
    entry = tiny_yolact_entry()
    with pytest.raises(WeightsError, match="does not fit this YOLACT network"):
        R.locate(entry, tiny_files["maskrcnn"])
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint that can be loaded safely"):
        R.locate(entry, tiny_files["garbage"])
    with pytest.raises(WeightsError, match="not found"):
        R.locate(entry, dirs / "nowhere.pth")
    assert not R.status(entry).installed
    assert not (dirs / "weights").exists() or not any((dirs / "weights").iterdir())


def test_locate_maskrcnn_checks_classes_and_hash(dirs, tiny_files):
    entry = tiny_maskrcnn_entry()
    path = R.locate(entry, tiny_files["maskrcnn"])
    assert path == dirs / "torch" / "hub" / "checkpoints" / entry.file_name and path.is_file()
    with pytest.raises(WeightsError, match="classifier for 5 classes; .* has 2"):
        R.locate(entry, tiny_files["wrong_classes"])
    hashed = tiny_maskrcnn_entry(sha="00000000")
    with pytest.raises(WeightsError, match="not the published"):
        R.locate(hashed, tiny_files["maskrcnn"])
    with pytest.raises(MaskScopeError, match="ships with MaskScope"):
        R.locate(R.get_entry("demo"), tiny_files["maskrcnn"])


# --- command line ---------------------------------------------------------------------------------
def test_cli_list_download_locate(dirs, capsys, tiny_files, monkeypatch):
    assert cli_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for entry in R.entries():
        assert entry.name in out and entry.licence in out
    assert str(dirs / "weights" / "yolact_base_54_800000.pth") in out and "missing" in out

    assert cli_main(["models", "download", "yolact_r101_coco"]) == 1
    err = capsys.readouterr().err
    assert "drive.google.com" in err and "models locate yolact_r101_coco FILE" in err

    assert cli_main(["models", "locate", "yolact_r50_coco", str(tiny_files["garbage"])]) == 1
    assert "error:" in capsys.readouterr().err

    monkeypatch.setattr(R, "REGISTRY", (*R.REGISTRY, tiny_yolact_entry()))
    assert cli_main(["models", "locate", "tiny_yolact", str(tiny_files["yolact"])]) == 0
    assert f"installed: {dirs / 'weights' / 'yolact_resnet50_54_800000.pth'}" in capsys.readouterr().out
    assert cli_main(["models", "download", "tiny_yolact"]) == 0  # already installed: says so
    assert "already installed" in capsys.readouterr().out


def test_cli_download_with_progress(dirs, capsys, monkeypatch):
    payload = os.urandom(80_000)
    with running_server() as server:
        entry = tiny_maskrcnn_entry(server.add("/tiny.pth", payload), sha_prefix(payload))
        monkeypatch.setattr(R, "REGISTRY", (*R.REGISTRY, entry))
        assert cli_main(["models", "download", "tiny_maskrcnn"]) == 0
    captured = capsys.readouterr()
    assert "0.1 / 0.1 MB" in captured.err and "installed:" in captured.out
    assert R.install_path(entry).read_bytes() == payload


def test_models_help_and_list_do_not_import_torch():
    code = (
        "import sys, argparse, contextlib, io\n"
        "from engine.cli import models\n"
        "p = argparse.ArgumentParser(); models.register(p.add_subparsers())\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    p.parse_args(['models', '--help'])\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    models._list(None)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
