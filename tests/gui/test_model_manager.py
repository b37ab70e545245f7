"""Model > Manage models... (pytest-qt, offscreen) against a local HTTP server on 127.0.0.1, and
the model chooser's rules: only models that can load are listed, dialogs name menu items, and
the disabled CUDA entry says why."""

from __future__ import annotations

import dataclasses
import os
import re

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from weights_server import isolate_install_dirs, running_server, sha_prefix

from app.model_manager import ModelManagerDialog
from engine import model_registry as R  # noqa: N812
from engine.download import part_path

PAYLOAD = os.urandom(400_000)
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z]")


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    return isolate_install_dirs(tmp_path, monkeypatch)


@pytest.fixture
def server():
    with running_server() as state:
        state.slow_delay = 0.02
        yield state


def download_entry(url: str, sha: str) -> R.ModelEntry:
    return dataclasses.replace(
        R.get_entry("maskrcnn_r50_coco"),
        name="tiny_download",
        label="Tiny download",
        file_name=f"tiny-{sha}.pth",
        url=url,
        sha256_prefix=sha,
        size_bytes=len(PAYLOAD),
    )


def manual_entry() -> R.ModelEntry:
    return dataclasses.replace(R.get_entry("yolact_r50_coco"), name="tiny_yolact", config="yolact_tiny")


@pytest.fixture
def make_dialog(qtbot):
    def make(models) -> ModelManagerDialog:
        dialog = ModelManagerDialog(None, tuple(models))
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        return dialog

    return make


def row_texts(dialog: ModelManagerDialog, row: int) -> list[str]:
    return [dialog.table.item(row, c).text() for c in range(dialog.table.columnCount())]


# --- the table ------------------------------------------------------------------------------------
def test_table_lists_every_model_with_size_licence_status(dirs, make_dialog):
    dialog = make_dialog(R.entries())
    assert dialog.table.rowCount() == len(R.entries()) == 7
    rows = {R.entries()[r].name: row_texts(dialog, r) for r in range(7)}
    assert rows["maskrcnn_r50_coco"] == ["Mask R-CNN ResNet-50-FPN (COCO)", "178 MB", R.TORCHVISION_LICENCE, "Missing"]
    assert rows["yolact_r101_coco"][1] == "\u2248 201 MB" and rows["yolact_r101_coco"][3] == "Missing"
    assert rows["demo"][3] == ("Built in" if R.status(R.get_entry("demo")).installed else "Missing")
    dialog.select("yolact_r101_coco")
    text = dialog.details.text.text()
    assert "drive.google.com/file/d/1UYy3dMapbH1BnmtZU4WH1zbYgOzzHHf_" in text and "yolact_base_54_800000.pth" in text
    assert str(dirs / "weights") in text
    assert dialog.download_button.isHidden() and dialog.drop_area.isVisible()
    dialog.select("maskrcnn_r50_coco")
    assert dialog.download_button.isVisible() and dialog.download_button.isEnabled()
    assert not dialog.use_button.isEnabled()


# --- download -------------------------------------------------------------------------------------
def test_download_runs_off_the_gui_thread_with_progress(dirs, server, make_dialog, qtbot):
    url = server.add("/tiny.pth", PAYLOAD, mode="slow")
    entry = download_entry(url, sha_prefix(PAYLOAD))
    dialog = make_dialog([entry])
    labels: list[str] = []
    statuses: list[str] = []
    dialog.task.progress.connect(lambda _p: labels.append(dialog.progress.label.text()))
    dialog.task.progress.connect(lambda _p: statuses.append(row_texts(dialog, 0)[3]))
    with qtbot.waitSignal(dialog.installed, timeout=30000) as blocker:
        dialog.download_button.click()
        assert dialog.task.running and dialog.progress.isVisible()  # click returned at once
        assert not dialog.download_button.isEnabled() and dialog.progress.cancel_button.isEnabled()
        assert dialog.download_button.text() == "Downloading\u2026"
    assert blocker.args == ["tiny_download"]
    assert len(labels) >= 3 and all("MB/s" in t for t in labels)
    assert any(t.startswith("Downloading\u2026") and t.endswith("%") for t in statuses)
    assert any(re.search(r"/ 0\.4 MB .* left", t) for t in labels)
    assert R.install_path(entry).read_bytes() == PAYLOAD
    assert row_texts(dialog, 0)[3] == "Installed" and "installed in" in dialog.message.text()
    assert dialog.progress.isHidden() and dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.useRequested) as used:
        dialog.use_button.click()
    assert used.args == ["tiny_download"]


def test_cancel_keeps_the_part_and_resume_finishes(dirs, server, make_dialog, qtbot):
    url = server.add("/tiny.pth", PAYLOAD, mode="slow")
    entry = download_entry(url, sha_prefix(PAYLOAD))
    dialog = make_dialog([entry])
    dialog.download_button.click()
    qtbot.waitUntil(lambda: "MB/s" in dialog.progress.label.text(), timeout=10000)
    with qtbot.waitSignal(dialog.task.cancelled, timeout=10000):
        dialog.progress.cancel_button.click()
    kept = part_path(R.install_path(entry)).stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert "cancelled" in dialog.message.text()
    assert row_texts(dialog, 0)[3].startswith("Partly downloaded")
    assert dialog.download_button.text() == "Resume download" and dialog.download_button.isEnabled()
    server.files["/tiny.pth"].mode = "normal"
    with qtbot.waitSignal(dialog.installed, timeout=30000):
        dialog.download_button.click()
    assert server.log[-1] == ("/tiny.pth", f"bytes={kept}-")
    assert R.install_path(entry).read_bytes() == PAYLOAD


def test_wrong_hash_and_404_are_reported_in_the_dialog(dirs, server, make_dialog, qtbot):
    entry = download_entry(server.add("/tiny.pth", PAYLOAD), "deadbeef")
    dialog = make_dialog([entry])
    with qtbot.waitSignal(dialog.task.failed, timeout=30000):
        dialog.download_button.click()
    text = dialog.message.text()
    assert "not the published file" in text and "deleted" in text
    assert not R.install_path(entry).exists() and not part_path(R.install_path(entry)).exists()
    assert row_texts(dialog, 0)[3] == "Missing"

    missing = dataclasses.replace(entry, url=server.url("/gone.pth"))
    dialog = make_dialog([missing])
    with qtbot.waitSignal(dialog.task.failed, timeout=30000):
        dialog.download_button.click()
    assert "HTTP 404" in dialog.message.text() and dialog.download_button.isEnabled()


# --- a file the user has --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_yolact_file(tmp_path_factory):
    from engine.yolact.config import get_config
    from engine.yolact.model import Yolact

    path = tmp_path_factory.mktemp("drive") / "yolact_resnet50_54_800000.pth"
    torch.manual_seed(0)
    torch.save(Yolact(get_config("yolact_tiny")).state_dict(), path)
    return path


def _drop(target, path) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    target.dropEvent(event)
    return event


def test_dropped_file_is_checked_by_loading_then_installed(dirs, make_dialog, qtbot, tiny_yolact_file):
    entry = manual_entry()
    dialog = make_dialog([R.get_entry("demo"), entry])
    with qtbot.waitSignal(dialog.installed, timeout=60000) as blocker:
        _drop(dialog, tiny_yolact_file)  # dropped anywhere: picked by its file name
        assert dialog.task.running and "by loading it" in dialog.progress.label.text()
    assert blocker.args == ["tiny_yolact"] and dialog.entry.name == "tiny_yolact"
    installed = dirs / "weights" / "yolact_resnet50_54_800000.pth"
    assert installed.read_bytes() == tiny_yolact_file.read_bytes()
    assert row_texts(dialog, 1)[3] == "Installed"


def test_chosen_bad_file_is_refused(dirs, make_dialog, qtbot, monkeypatch, tmp_path):
    from app import dialogs

    bad = tmp_path / "yolact_resnet50_54_800000.pth"
    bad.write_bytes(b"an HTML page from Google Drive, not weights")
    monkeypatch.setattr(dialogs, "get_open_file", lambda *a: str(bad))
    dialog = make_dialog([manual_entry()])
    with qtbot.waitSignal(dialog.task.failed, timeout=60000):
        dialog.drop_area.button.click()
    assert "not a PyTorch checkpoint" in dialog.message.text()
    assert not (dirs / "weights" / bad.name).exists() and row_texts(dialog, 0)[3] == "Missing"


def test_maskrcnn_file_dropped_on_a_yolact_model_is_refused_with_menu_advice(dirs, make_dialog, qtbot, tmp_path):
    from engine.maskrcnn.configs import build_model, get_config

    path = tmp_path / "yolact_resnet50_54_800000.pth"  # the right name, the wrong network
    torch.save(build_model(get_config("maskrcnn_r18_fpn"), 3, 64, 96).state_dict(), path)
    dialog = make_dialog([manual_entry()])
    with qtbot.waitSignal(dialog.task.failed, timeout=60000):
        _drop(dialog.drop_area, path)
    text = dialog.message.text()
    assert "does not fit this YOLACT network" in text and not CLI_FLAG.search(text)
    assert not (dirs / "weights" / path.name).exists()


def test_every_registry_model_has_its_chooser_entry():
    """'Use this model' and the chooser go by the registry name: the two lists must agree."""
    from app.model_catalog import BUILTIN_CHOICES, DEMO_YOLACT_CHOICE, choice_by_key, registry_entry

    for entry in R.entries():
        choice = choice_by_key(entry.name) or (DEMO_YOLACT_CHOICE if entry.name == DEMO_YOLACT_CHOICE.key else None)
        assert choice is not None, entry.name
        assert (choice.architecture, choice.config) == (entry.architecture, entry.config)
        assert registry_entry(choice) == entry
    assert {c.key for c in BUILTIN_CHOICES} <= {e.name for e in R.entries()}


# --- the main window's chooser --------------------------------------------------------------------
def combo_keys(window) -> list[str]:
    combo = window.models.combo
    return [combo.itemData(i) for i in range(combo.count()) if combo.itemData(i)]


def test_chooser_lists_installed_models_and_opens_the_manager(dirs, window):
    keys = combo_keys(window)
    assert "maskrcnn_r50_coco" not in keys and "yolact_r50_coco" not in keys
    assert keys[-2:] == ["__load__", "__manage__"]
    assert "demo" in keys
    coco = R.install_path(R.get_entry("maskrcnn_r50_coco"))
    coco.parent.mkdir(parents=True)
    coco.write_bytes(b"placed by hand")
    window.models._on_installed("maskrcnn_r50_coco")  # what the dialog's signal does
    assert "maskrcnn_r50_coco" in combo_keys(window)
    menu = window.models._menu  # the Model menu the controller fills
    manage = next(a for a in menu.actions() if a.text() == "Manage models\u2026")
    manage.trigger()
    dialog = window.models._manager
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "Manage models"
    dialog.close()
    window.models.combo.activated.emit(window.models.combo.findData("__manage__"))
    assert window.models._manager is dialog and dialog.isVisible()
    assert window.models.combo.itemData(window.models.combo.currentIndex()) not in ("__manage__", "__load__")
    dialog.close()


def test_failed_weights_leave_the_chooser_with_a_menu_message(dirs, window, qtbot, fake_model, errors):
    coco = R.install_path(R.get_entry("maskrcnn_r50_coco"))
    coco.parent.mkdir(parents=True)
    coco.write_bytes(b"a truncated download")
    window.models.refresh()
    assert "maskrcnn_r50_coco" in combo_keys(window)
    with qtbot.waitSignal(window.worker.modelFailed, timeout=60000):
        window.models.choose("maskrcnn_r50_coco")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=3000)
    message = errors[0][1]
    assert "maskrcnn_r50_coco" not in combo_keys(window)
    assert "removed from the model chooser" in message and "Model \u25b8 Manage models\u2026" in message
    assert not CLI_FLAG.search(message), message
    assert window.models.active.label == "fake"
    window.models._on_installed("maskrcnn_r50_coco")  # reinstalled: listed again
    assert "maskrcnn_r50_coco" in combo_keys(window)


def test_failed_remembered_file_is_removed_and_forgotten(dirs, new_window, settings, qtbot, errors, tmp_path):
    bad = tmp_path / "mine.pth"
    bad.write_bytes(b"not weights")
    settings.set("model/files", [f"maskrcnn|maskrcnn_resnet50_fpn|{bad}"])
    window = new_window()
    assert f"file:{bad}" in combo_keys(window)
    with qtbot.waitSignal(window.worker.modelFailed, timeout=60000):
        window.models.choose(f"file:{bad}")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=3000)
    assert f"file:{bad}" not in combo_keys(window)
    assert "The file was removed from the model chooser" in errors[0][1]
    assert not CLI_FLAG.search(errors[0][1])
    assert window.models._remembered_files() == []


def test_missing_yolact_message_names_menu_items(dirs, window, qtbot, fake_model, errors):
    with qtbot.waitSignal(window.worker.modelFailed, timeout=60000):
        window.models.choose("yolact_r101_coco")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=3000)
    message = errors[0][1]
    assert "Model \u25b8 Manage models\u2026" in message and "Google Drive" in message
    assert "yolact_base_54_800000.pth" in message and not CLI_FLAG.search(message), message


def test_disabled_cuda_entry_explains_why(window, monkeypatch):
    from engine import device

    cuda = window.models.device_actions["cuda"]
    window.models._on_torch_ready(False)
    assert not cuda.isEnabled() and cuda.text().endswith("(unavailable)")
    assert cuda.toolTip() == cuda.statusTip() == device.cuda_unavailable_reason()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    window.models._on_torch_ready(False)
    assert "CPU-only build" in cuda.toolTip()
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    window.models._on_torch_ready(False)
    assert "CUDA_VISIBLE_DEVICES" in cuda.toolTip()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    window.models._on_torch_ready(True)
    assert cuda.isEnabled() and cuda.text() == "CUDA GPU" and device.cuda_unavailable_reason() is None


def test_menu_advice_rewrites_every_engine_flag():
    from app.model_catalog import menu_advice

    messages = [
        "x.pth not found in /w. Get it from the release and copy it into /w, or pass the file with --weights.",
        "CUDA was requested but no CUDA device is available; use --device cpu.",
        "a.pth does not hold weights. It looks like YOLACT weights: use --model yolact.",
        "a.pth does not fit. It matches config maskrcnn_resnet50_fpn_v2: use --config maskrcnn_resnet50_fpn_v2.",
        "Download U\nand save it as F in the folder D\n(full path: P), or pass --weights with a local file, "
        "or --weights random.",
        "Config c has no published weights; pass weights='random' (--weights random) or a weight file.",
        "Something new. Try --frobnicate 3 now. Then it works.",
    ]
    for message in messages:
        out = menu_advice(message)
        assert not CLI_FLAG.search(out), out
    assert "Model \u25b8 Device \u25b8 CPU" in menu_advice(messages[1])
    assert menu_advice(messages[4]).startswith("Download U\nand save it as F")
    assert menu_advice(messages[6]) == "Something new. Then it works."
