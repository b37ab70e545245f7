"""Nothing lost: project files, autosave and crash recovery, close with unsaved edits, import, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gui_fakes import FakeSegmenter
from pycocotools.coco import COCO

from app.editing import install_editing, prompts
from app.image_loader import normalise_path
from engine.annotations import masks_equal
from engine.coco_io import load_coco


class Asked:
    """Records the unsaved-changes question and answers ``answer``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.answer = "discard"

    def __call__(self, parent, text: str) -> str:
        self.calls.append(text)
        return self.answer


@pytest.fixture
def asked(monkeypatch) -> Asked:
    ask = Asked()
    monkeypatch.setattr(prompts, "ask_save_changes", ask)
    return ask


def _open(window, qtbot, image_folder, name="img_0.png"):
    ed = install_editing(window)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image_folder / name))
    pred = FakeSegmenter().predict(window.current_image)
    window.set_prediction(window.current_image_path, pred)
    return ed, pred


def test_autosave_after_edit_and_restore_after_a_crash(window, new_window, qtbot, image_folder, errors, asked):
    ed, pred = _open(window, qtbot, image_folder)
    ed.files.autosave_delay_ms = 50
    autosave = image_folder / "annotations.autosave.json"
    with qtbot.waitSignal(ed.files.autosaved, timeout=5000):
        ed.accept_prediction(0)
    assert autosave.exists() and not (image_folder / "annotations.json").exists()
    data = load_coco(autosave)
    assert [img.file_name for img in data.images] == ["img_0.png"]
    assert masks_equal(data.images[0].instances[0].mask, pred.instances[0].mask)

    # Switching images writes pending edits at once (no waiting for the timer).
    ed.files.autosave_delay_ms = 60_000
    ed.accept_prediction(1)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.show_file(normalise_path(image_folder / "img_1.png"))
    assert len(load_coco(autosave).images[0].instances) == 2

    # The process "dies" here (no save, no close); a new session opens the same folder.
    win2 = new_window()
    ed2 = install_editing(win2)
    errors.clear()
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert [i.category for i in ed2.annotations] == ["disc", "block"]
    assert ed2.project.is_dirty
    assert any(title == "Unsaved work restored" for title, _ in errors)
    assert "Restored unsaved annotations" in win2.statusBar().currentMessage()
    assert win2.file_list.state(normalise_path(image_folder / "img_0.png")).annotated
    assert not win2.file_list.state(normalise_path(image_folder / "img_1.png")).annotated
    assert ed2.files.save()
    assert not autosave.exists()
    assert len(load_coco(image_folder / "annotations.json").images[0].instances) == 2


def test_save_then_reopen_loads_without_recovery(window, new_window, qtbot, image_folder, errors, asked):
    ed, pred = _open(window, qtbot, image_folder)
    ed.accept_all_predictions()
    ed.files.autosave_all()
    assert (image_folder / "annotations.autosave.json").exists()
    ed.actions.save.trigger()
    assert (image_folder / "annotations.json").exists()
    assert not (image_folder / "annotations.autosave.json").exists()
    assert not ed.project.is_dirty
    assert ed.dock.status.text() == "annotations.json: saved"
    window.close()
    assert asked.calls == []  # nothing unsaved: no question
    win2 = new_window()
    ed2 = install_editing(win2)
    errors.clear()
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert [i.category for i in ed2.annotations] == ["disc", "block"]
    assert not ed2.project.is_dirty and errors == []


def test_close_with_unsaved_changes_asks(window, qtbot, image_folder, asked):
    ed, _ = _open(window, qtbot, image_folder)
    ed.accept_prediction(0)
    asked.answer = "cancel"
    assert not window.close()
    assert window.isVisible() and len(asked.calls) == 1
    assert "unsaved" in asked.calls[0]
    asked.answer = "save"
    assert window.close()
    assert len(asked.calls) == 2
    assert len(load_coco(image_folder / "annotations.json").images[0].instances) == 1


def test_discard_on_close_drops_the_autosave(window, qtbot, image_folder, asked):
    ed, _ = _open(window, qtbot, image_folder)
    ed.accept_prediction(0)
    ed.files.autosave_all()
    assert (image_folder / "annotations.autosave.json").exists()
    assert window.close()
    assert not (image_folder / "annotations.autosave.json").exists()
    assert not (image_folder / "annotations.json").exists()


def test_save_as_is_remembered_for_the_folder(window, new_window, qtbot, image_folder, tmp_path, asked, monkeypatch):
    ed, _ = _open(window, qtbot, image_folder)
    ed.accept_prediction(0)
    target = tmp_path / "elsewhere" / "labels.json"
    target.parent.mkdir()
    monkeypatch.setattr(prompts, "get_save_path", lambda parent, caption, start: str(target))
    # The project must stay in the image folder: a file elsewhere still refers to images by name.
    ed.actions.save_as.trigger()
    assert target.exists() and not (image_folder / "annotations.json").exists()
    win2 = new_window()
    ed2 = install_editing(win2)
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert ed2.project.annotations_path == target
    assert len(ed2.annotations) == 1


def test_unreadable_project_file_is_never_overwritten(window, qtbot, image_folder, errors, asked):
    broken = image_folder / "annotations.json"
    broken.write_text("{ this is not json")
    ed, _ = _open(window, qtbot, image_folder)
    assert any(title == "Cannot read the annotations" for title, _ in errors)
    ed.accept_prediction(0)
    assert ed.files.save()
    assert broken.read_text() == "{ this is not json"
    assert len(load_coco(image_folder / "annotations.recovered.json").images[0].instances) == 1


@pytest.mark.parametrize("mode", ["rle", "polygons"])
def test_export_from_the_menu_loads_in_pycocotools(window, qtbot, image_folder, tmp_path, asked, monkeypatch, mode):
    ed, pred = _open(window, qtbot, image_folder)
    ed.accept_all_predictions()
    ed.project.classes.ensure("region")
    ed.set_current_class("region")
    ed.add_polygon_instance([[10.0, 90.0, 40.0, 90.0, 40.0, 110.0, 10.0, 110.0]])
    out = tmp_path / f"export_{mode}.json"
    monkeypatch.setattr(prompts, "get_export_target", lambda parent, start: (str(out), mode))
    with qtbot.waitSignal(ed.files.exportFinished, timeout=20000) as blocker:
        ed.actions.export.trigger()
    stats = blocker.args[0]
    assert stats.annotations == 3
    assert "Exported" in window.statusBar().currentMessage()
    assert not ed.files.export_progress.isVisible()
    coco = COCO(str(out))
    img = coco.loadImgs(coco.getImgIds())[0]
    assert (img["file_name"], img["height"], img["width"]) == ("img_0.png", 120, 160)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    by_name = {names[a["category_id"]]: a for a in anns}
    assert set(by_name) == {"disc", "block", "region"}
    for i, name in enumerate(["disc", "block"]):
        ann = by_name[name]
        assert isinstance(ann["segmentation"], list if mode == "polygons" else dict)
        got = coco.annToMask(ann).astype(bool)
        truth = pred.instances[i].mask.to_full()
        if mode == "rle":
            assert np.array_equal(got, truth)
        else:  # traced polygons: pixel-exact for these simple shapes, up to a sliver
            assert (got ^ truth).sum() <= 0.02 * truth.sum()
    assert isinstance(by_name["region"]["segmentation"], list if mode == "polygons" else dict)
    assert coco.annToMask(by_name["region"]).sum() == 30 * 20


def test_import_errors_in_a_dialog_and_a_good_import_is_undoable(window, qtbot, image_folder, tmp_path, errors, asked):
    ed, _ = _open(window, qtbot, image_folder)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "img_0.png", "width": 160, "height": 120}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 9, "segmentation": [[1, 2]]}],
                "categories": [{"id": 1, "name": "thing"}],
            }
        )
    )
    assert not ed.files.import_annotations(str(bad))
    assert errors and errors[-1][0] == "Import failed"
    assert len(ed.annotations) == 0 and "thing" not in ed.project.classes
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {
                "images": [
                    {"id": 7, "file_name": "img_0.png", "width": 160, "height": 120},
                    {"id": 8, "file_name": "img_1.png", "width": 176, "height": 120},
                ],
                "annotations": [
                    {
                        "id": 1,
                        "image_id": 7,
                        "category_id": 3,
                        "segmentation": [[10, 10, 50, 10, 50, 40, 10, 40]],
                        "area": 1200,
                        "bbox": [10, 10, 40, 30],
                        "iscrowd": 0,
                    },
                    {
                        "id": 2,
                        "image_id": 8,
                        "category_id": 3,
                        "segmentation": [[5, 5, 25, 5, 25, 25, 5, 25]],
                        "area": 400,
                        "bbox": [5, 5, 20, 20],
                        "iscrowd": 0,
                    },
                ],
                "categories": [{"id": 3, "name": "thing"}],
            }
        )
    )
    assert ed.files.import_annotations(str(good))
    assert errors[-1][0] == "Import finished"
    assert [i.category for i in ed.annotations] == ["thing"] and ed.annotations.instances[0].area == 40 * 30
    assert ed.layer.instances and window.file_list.state(normalise_path(image_folder / "img_1.png")).annotated
    ed.actions.undo.trigger()  # undoes the import on this image only
    assert len(ed.annotations) == 0
    assert len(ed.project.annotations("img_1.png")) == 1
    ed.actions.redo.trigger()
    assert len(ed.annotations) == 1
