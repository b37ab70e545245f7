"""Nothing lost: every edit is in the project store at once (no save, no autosave, no question on
close); a new session (after a crash or a clean close) finds exactly the stored state; Save writes
COCO; legacy files are imported once and said; import, export, write failures in a dialog."""

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
from engine.errors import MaskScopeError
from engine.project import store_path_for
from engine.store.store import ProjectStore


def _open(window, qtbot, image_folder, name="img_0.png"):
    ed = install_editing(window)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image_folder / name))
    pred = FakeSegmenter().predict(window.current_image)
    window.set_prediction(window.current_image_path, pred)
    return ed, pred


def _stored_annotations(folder, name="img_0.png"):
    """What another process would read from the database right now (no flush, no save)."""
    store = ProjectStore(store_path_for(folder), readonly=True)
    try:
        loaded = store.load_annotations(name)
        return loaded[1] if loaded is not None else []
    finally:
        store.close()


def test_every_edit_is_stored_at_once_and_a_crashed_session_loses_nothing(
    window, new_window, qtbot, image_folder, errors
):
    ed, pred = _open(window, qtbot, image_folder)
    ed.accept_prediction(0)
    ed.reject_prediction(1)
    # The writer thread commits within moments; nobody saved anything.
    qtbot.waitUntil(lambda: len(_stored_annotations(image_folder)) == 1, timeout=5000)
    assert not (image_folder / "annotations.json").exists()
    assert not (image_folder / "annotations.autosave.json").exists()
    qtbot.waitUntil(lambda: "not yet in annotations.json" in ed.status_label.text(), timeout=3000)
    assert ed.status_label.text().startswith("Stored in .maskscope/project.db")

    # The process "dies" here: no save, no close. A new session opens the same folder.
    win2 = new_window()
    ed2 = install_editing(win2)
    errors.clear()
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert [i.category for i in ed2.annotations] == ["disc"]
    assert masks_equal(ed2.annotations.instances[0].mask, pred.instances[0].mask)
    assert errors == []  # nothing to restore, nothing to ask
    # The predictions and the rejection are there too, without a model.
    assert win2.models.active is None
    assert [p.review for p in ed2.review.stored(win2.current_image_path)] == ["accepted", "rejected", "pending"]
    assert list(win2.canvas.overlay.visible) == [False, False, False]  # 0.30 is under the threshold
    assert win2.file_list.state(normalise_path(image_folder / "img_0.png")).annotated


def test_save_writes_coco_and_closing_asks_nothing(window, new_window, qtbot, image_folder, errors, monkeypatch):
    asked = []
    monkeypatch.setattr(prompts, "confirm", lambda *a: asked.append(a) or True)
    ed, pred = _open(window, qtbot, image_folder)
    ed.accept_all_predictions()
    ed.actions.save.trigger()
    assert len(load_coco(image_folder / "annotations.json").images[0].instances) == 2
    assert not ed.project.is_dirty
    assert "annotations.json written" in ed.status_label.text()
    ed.relabel(ed.annotations.instances[0].id, "block")
    qtbot.waitUntil(lambda: "1 edit not yet in annotations.json" in ed.status_label.text(), timeout=3000)
    assert window.close()
    assert asked == [] and not window.isVisible()
    win2 = new_window()
    ed2 = install_editing(win2)
    errors.clear()
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert [i.category for i in ed2.annotations] == ["block", "block"]
    assert ed2.project.is_dirty and errors == []
    # The file on disk is what Save wrote, nothing later.
    assert [i.category for i in load_coco(image_folder / "annotations.json").images[0].instances] == [
        "disc",
        "block",
    ]


def test_a_legacy_annotations_json_is_imported_once_and_said(new_window, qtbot, image_folder, errors):
    legacy = {
        "images": [{"id": 1, "file_name": "img_0.png", "width": 160, "height": 120}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[10, 10, 50, 10, 50, 40, 10, 40]],
                "area": 1200,
                "bbox": [10, 10, 40, 30],
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (image_folder / "annotations.json").write_text(json.dumps(legacy))
    win = new_window()
    ed = install_editing(win)
    with qtbot.waitSignal(win.imageShown, timeout=10000):
        win.open_image(str(image_folder / "img_0.png"))
    assert [i.category for i in ed.annotations] == ["thing"]
    assert [t for t, _ in errors] == ["Project store created"]
    assert "Imported 1 instances" in errors[0][1] and "annotations.json" in errors[0][1]
    assert "Imported 1 instances" in win.statusBar().currentMessage()
    assert not ed.project.is_dirty  # the store holds what annotations.json holds
    win.close()
    errors.clear()
    win2 = new_window()
    ed2 = install_editing(win2)
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert [i.category for i in ed2.annotations] == ["thing"] and errors == []  # said once


def test_save_as_is_remembered_by_the_project(window, new_window, qtbot, image_folder, tmp_path, monkeypatch):
    ed, _ = _open(window, qtbot, image_folder)
    ed.accept_prediction(0)
    target = tmp_path / "elsewhere" / "labels.json"
    target.parent.mkdir()
    monkeypatch.setattr(prompts, "get_save_path", lambda parent, caption, start: str(target))
    ed.actions.save_as.trigger()
    assert target.exists() and not (image_folder / "annotations.json").exists()
    assert "labels.json written" in ed.status_label.text()
    window.close()
    win2 = new_window()
    ed2 = install_editing(win2)
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert ed2.project.annotations_path == target
    assert len(ed2.annotations) == 1
    ed2.accept_prediction(1)
    assert ed2.files.save()
    assert len(load_coco(target).images[0].instances) == 2


def test_unreadable_project_file_is_never_overwritten(window, qtbot, image_folder, errors):
    broken = image_folder / "annotations.json"
    broken.write_text("{ this is not json")
    ed, _ = _open(window, qtbot, image_folder)
    assert any(title == "Cannot read the annotations" for title, _ in errors)
    ed.accept_prediction(0)
    assert ed.files.save()
    assert broken.read_text() == "{ this is not json"
    assert len(load_coco(image_folder / "annotations.recovered.json").images[0].instances) == 1


def test_a_failed_store_write_is_shown_in_a_dialog(window, qtbot, image_folder, errors):
    ed, _ = _open(window, qtbot, image_folder)

    def failing(_store):
        raise MaskScopeError("disk full (simulated)")

    ed.project.writer.submit(failing)
    with qtbot.waitSignal(ed.files.writeFailed, timeout=5000) as blocker:
        pass
    assert "disk full (simulated)" in blocker.args[0]
    assert errors[-1][0] == "Edits not stored" and "disk full (simulated)" in errors[-1][1]
    assert "Could not store edits" in window.statusBar().currentMessage()
    errors.clear()
    ed.files.check_errors()
    assert errors == []  # each failure is reported once


@pytest.mark.parametrize("mode", ["rle", "polygons"])
def test_export_from_the_menu_loads_in_pycocotools(window, qtbot, image_folder, tmp_path, monkeypatch, mode):
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


def test_import_errors_in_a_dialog_and_a_good_import_is_undoable(
    window, qtbot, image_folder, tmp_path, errors, monkeypatch
):
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
    assert ed.overlay.annotations and window.file_list.state(normalise_path(image_folder / "img_1.png")).annotated
    ed.actions.undo.trigger()  # undoes the import on this image only
    assert len(ed.annotations) == 0
    assert len(ed.project.annotations("img_1.png")) == 1
    ed.actions.redo.trigger()
    assert len(ed.annotations) == 1
    # The same file again: every instance is already there and is skipped, with a count.
    ed.actions.undo.trigger()
    assert len(ed.annotations) == 0
    ed.actions.redo.trigger()
    monkeypatch.setattr(prompts, "confirm", lambda parent, title, text: False)  # add, do not replace
    assert ed.files.import_annotations(str(good))
    assert "2 instances already in the project" in errors[-1][1]
    assert len(ed.annotations) == 1 and len(ed.project.annotations("img_1.png")) == 1
