"""Project on its SQLite store: persistence without saving, dirty state, class operations with undo,
legacy import, duplicate imports, prediction runs and review, COCO save/export, CLI."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.annotations import IGNORE, AnnotatedInstance, ImageAnnotations
from engine.cli import main as cli_main
from engine.errors import AnnotationError, ImageLoadError, MaskScopeError
from engine.masks import CroppedMask
from engine.project import Project, autosave_path_for, store_path_for
from engine.segmenter import Instance, Prediction

H, W = 48, 64


def _images(folder: Path, names=("a.png", "b.png", "c.jpg")) -> None:
    for n in names:
        Image.new("RGB", (W, H), (40, 80, 120)).save(folder / n)


def _rect(x0, y0, x1, y1) -> CroppedMask:
    full = np.zeros((H, W), bool)
    full[y0:y1, x0:x1] = True
    return CroppedMask.from_full(full)


def _annotate(project: Project) -> None:
    a = project.annotations("a.png")
    a.add_new("cat", _rect(2, 2, 20, 20))
    a.add(AnnotatedInstance.from_polygons(2, "dog", [[30, 5, 60, 5, 45, 40]], (H, W)))
    a.add_new("cat", _rect(5, 30, 15, 45), score=0.875, source="prediction")
    project.annotations("b.png").add_new("bird", _rect(0, 0, W, H))


def _prediction(scores=(0.9, 0.6, 0.3)) -> Prediction:
    instances = [
        Instance(k % 2, s, np.array([4 * k, 2, 4 * k + 10, 12], np.float32), _rect(4 * k, 2, 4 * k + 10, 12))
        for k, s in enumerate(scores)
    ]
    return Prediction((H, W), instances, ["cat", "dog"])


# --- open, persist, reopen -------------------------------------------------------------------
def test_new_project_lists_images_and_creates_its_store(tmp_path):
    _images(tmp_path, ("img10.png", "img2.png", "c.jpg"))
    (tmp_path / "notes.txt").write_text("x")
    project = Project.open(tmp_path)
    assert store_path_for(tmp_path).is_file() and project.opened_from is None
    assert project.image_names() == ["c.jpg", "img2.png", "img10.png"]
    assert project.annotations_path == tmp_path / "annotations.json"
    assert not project.is_dirty and list(project.annotated_images()) == []
    ann = project.annotations("img2.png")
    assert ann.image_size == (H, W) and not project.is_dirty  # looking is not editing
    with pytest.raises(ImageLoadError):
        project.annotations("missing.png")
    with pytest.raises(AnnotationError, match="no such project"):
        Project.open(tmp_path / "nope")


@pytest.mark.parametrize("background", [False, True])
def test_every_edit_is_stored_without_saving(tmp_path, background):
    _images(tmp_path)
    project = Project.open(tmp_path, background=background)
    _annotate(project)
    project.annotations("c.jpg").add_new("cat", _rect(1, 1, 3, 3))
    project.annotations("c.jpg").remove(1)  # reviewed, now empty: still a reviewed image
    project.classes.add("unused", 40)
    expected = {n: project.annotations(n).copy() for n in ("a.png", "b.png", "c.jpg")}
    project.close()  # no save(): the store has it all
    again = Project.open(tmp_path)
    assert again.classes.names == ["cat", "dog", "bird", "unused"] and again.classes.id_of("unused") == 40
    for name, ann in expected.items():
        assert again.annotations(name).same_content(ann), name
    inst = again.annotations("a.png").find(3)
    assert inst.score == pytest.approx(0.875) and inst.source == "prediction"
    assert again.annotations("a.png").find(2).polygons == ((30.0, 5.0, 60.0, 5.0, 45.0, 40.0),)
    assert again.status("c.jpg") == "in_review" and again.status("a.png") == "in_review"
    assert again.instance_count() == 4 and again.is_dirty  # annotations.json was never written


def test_drawing_order_survives_removal_and_reinsertion(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    a = project.annotations("a.png")
    for k in range(4):
        a.add_new("cat", _rect(k, k, k + 5, k + 5))
    removed = a.remove(2)
    a.replace(a.find(4).with_category("cat"))
    a.replace(a.find(3).with_mask(_rect(20, 20, 30, 30)))
    a.add(removed, 1)  # undo of the removal puts it back in place
    project.close()
    assert Project.open(tmp_path).annotations("a.png").ids() == [1, 2, 3, 4]


def test_save_writes_coco_and_tracks_dirty_state(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    assert project.is_dirty
    path = project.save()
    assert path == tmp_path / "annotations.json" and not project.is_dirty
    data = json.loads(path.read_text())
    assert len(data["annotations"]) == 4 and [c["name"] for c in data["categories"]] == ["cat", "dog", "bird"]
    project.annotations("a.png").remove(1)
    assert project.is_dirty
    project.save()
    project.classes.add("new")
    assert project.is_dirty
    project.save()
    replacement = ImageAnnotations("b.png", W, H)
    replacement.add_new("zebra", _rect(1, 1, 9, 9))
    project.set_annotations(replacement)
    assert project.is_dirty and "zebra" in project.classes
    project.save()
    old = project.annotations("a.png")
    project.set_annotations(old.copy())
    project.save()
    old.add_new("cat", _rect(1, 1, 2, 2))  # a detached container no longer changes the project
    assert not project.is_dirty
    # Save As is remembered by the project
    other = tmp_path / "sub" / "mine.json"
    project.save(other)
    project.close()
    assert Project.open(tmp_path).annotations_path == other


def test_disk_full_while_saving_keeps_the_previous_file_and_the_store(tmp_path, monkeypatch):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.save()
    before = project.annotations_path.read_bytes()
    project.annotations("a.png").remove(1)
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(MaskScopeError, match="Disk full") as err:
        project.save()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert "unchanged" in str(err.value) and project.annotations_path.read_bytes() == before
    assert project.is_dirty and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    project.close()
    assert Project.open(tmp_path).instance_count() == 3  # the edit itself was stored


# --- classes -----------------------------------------------------------------------------------
def test_rename_merge_delete_recolour_with_undo_and_redo(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.close()
    project = Project.open(tmp_path)
    project.annotations("a.png")  # one image cached, the other only in the store
    ids = {c.name: c.id for c in project.classes}

    undo = project.rename_class("cat", "kitten")
    assert {i.category for i in project.annotations("a.png")} == {"kitten", "dog"}
    assert project.classes.id_of("kitten") == ids["cat"]
    project.undo_class_operation(undo)
    assert project.classes.names == ["cat", "dog", "bird"]

    merge = project.merge_classes("bird", "cat")
    assert project.class_counts() == {"cat": 3, "dog": 1}
    assert [i.category for i in project.annotations("b.png")] == ["cat"]
    assert project.classes.id_of("cat") == ids["cat"]  # the kept class keeps its id
    project.undo_class_operation(merge)
    assert project.class_counts() == {"cat": 2, "dog": 1, "bird": 1}
    assert [i.category for i in project.annotations("b.png")] == ["bird"]
    assert project.classes.id_of("bird") == ids["bird"]
    merge = project.redo_class_operation(merge)
    assert project.class_counts() == {"cat": 3, "dog": 1}
    project.undo_class_operation(merge)

    with pytest.raises(AnnotationError, match="used by 1 instances"):
        project.delete_class("bird")
    delete = project.delete_class("bird", delete_instances=True)
    assert len(project.annotations("b.png")) == 0 and "bird" not in project.classes
    project.undo_class_operation(delete)
    assert [i.category for i in project.annotations("b.png")] == ["bird"]

    recolour = project.update_class("dog", colour="#ff8800")
    assert project.classes.get("dog").colour == "#ff8800"
    project.undo_class_operation(recolour)
    assert project.classes.get("dog").colour == ""
    project.update_class("dog", colour="#00ff00")
    project.close()
    again = Project.open(tmp_path)
    assert again.classes.names == ["cat", "dog", "bird"] and again.classes.get("dog").colour == "#00ff00"
    assert again.class_counts() == {"cat": 2, "dog": 1, "bird": 1}


def test_unused_classes_are_flagged_and_left_out_of_exports_unless_kept(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.classes.add("empty")
    project.classes.add("kept")
    project.update_class("kept", keep=True)
    assert project.unused_classes() == ["empty", "kept"]
    coco, _ = project.to_coco("rle")
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog", "bird", "kept"]


def test_ignore_regions_become_crowd_regions_of_every_class(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.annotations("c.jpg").add_new(IGNORE, _rect(0, 0, 10, 10), iscrowd=True)
    assert IGNORE not in project.classes
    coco, _ = project.to_coco("rle")
    crowd = [a for a in coco["annotations"] if a["iscrowd"]]
    assert sorted(a["category_id"] for a in crowd) == sorted(c["id"] for c in coco["categories"])
    project.close()
    assert Project.open(tmp_path).annotations("c.jpg").instances[0].category == IGNORE


# --- imports -----------------------------------------------------------------------------------
def test_first_open_imports_annotations_json_losslessly_and_says_so(tmp_path):
    _images(tmp_path)
    coco = {
        "info": {"description": "0.1 project"},
        "images": [
            {"id": 7, "file_name": "a.png", "width": W, "height": H, "license": 2},
            {"id": 3, "file_name": "c.jpg", "width": W, "height": H},
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 5, "bbox": [2, 2, 18, 18], "area": 324, "iscrowd": 0,
             "segmentation": [[2, 2, 20, 2, 20, 20, 2, 20]]},
            {"id": 2, "image_id": 7, "category_id": 9, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0,
             "segmentation": _rect(30, 30, 40, 40).to_rle(), "score": 0.5, "source": "prediction"},
        ],
        "categories": [{"id": 5, "name": "cat", "supercategory": "animal"}, {"id": 9, "name": "dog"}],
    }  # fmt: skip
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    project = Project.open(tmp_path)
    assert "Imported 2 instances of 2 images from annotations.json" in project.opened_from
    assert not project.is_dirty  # the store equals the file it came from
    out, _ = project.to_coco("auto")
    assert out["info"] == coco["info"]
    assert [(i["id"], i["file_name"], i.get("license")) for i in out["images"]] == [(7, "a.png", 2), (3, "c.jpg", None)]
    assert [(c["id"], c["name"], c["supercategory"]) for c in out["categories"]] == [
        (5, "cat", "animal"),
        (9, "dog", "dog"),
    ]
    assert out["annotations"][0]["segmentation"] == coco["annotations"][0]["segmentation"]
    assert out["annotations"][1]["segmentation"] == coco["annotations"][1]["segmentation"]
    assert out["annotations"][1]["score"] == 0.5
    project.close()
    assert Project.open(tmp_path).opened_from is None  # once


def test_a_newer_autosave_is_what_gets_imported(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    main, auto = tmp_path / "annotations.json", autosave_path_for(tmp_path / "annotations.json")
    project.save()
    project.annotations("b.png").add_new("bird", _rect(3, 3, 9, 9))
    auto.write_text(project.serialize())
    project.close()
    store_path_for(tmp_path).parent.joinpath("project.db").unlink()
    for extra in ("-wal", "-shm"):
        Path(str(store_path_for(tmp_path)) + extra).unlink(missing_ok=True)
    os.utime(main, (1, 1))
    again = Project.open(tmp_path)
    assert "annotations.autosave.json" in again.opened_from and again.instance_count() == 5


def test_corrupt_annotations_json_is_a_clear_error_and_no_store_is_left(tmp_path):
    (tmp_path / "annotations.json").write_text('{"images": [}')
    with pytest.raises(AnnotationError, match="annotations.json: not valid JSON"):
        Project.open(tmp_path)
    assert not store_path_for(tmp_path).exists()


def test_importing_the_same_file_twice_skips_identical_instances(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    out = tmp_path / "export.json"
    project.export(out, "rle")
    summary = project.import_file(out)
    assert summary.instances == 0 and summary.duplicates == 4
    assert "4 instances already in the project" in summary.summary()
    assert project.instance_count() == 4


# --- prediction runs and review ----------------------------------------------------------------
def test_prediction_runs_and_review_states_persist(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path, background=True)
    run = project.add_run("maskrcnn_demo", {"class_names": ["cat", "dog"], "score_threshold": 0.5}, "w.safetensors")
    stored = project.add_predictions(run, "a.png", _prediction())
    assert [p.review for p in stored] == ["pending"] * 3 and project.status("a.png") == "predicted"
    project.accept_predictions("a.png", [stored[0]])
    project.set_reviews([(stored[1].id, "rejected")])
    second = project.add_run("yolact_demo", {"class_names": ["cat", "dog"]})
    project.add_predictions(second, "a.png", _prediction((0.8,)))
    project.set_active_run(run)
    summaries = project.summaries(run)
    assert summaries["a.png"].annotations == 1 and summaries["a.png"].pending == 0  # 0.3 is below 0.5
    project.close()

    again = Project.open(tmp_path)
    assert [r.model for r in again.runs()] == ["maskrcnn_demo", "yolact_demo"] and again.active_run == run
    assert [p.review for p in again.predictions("a.png")] == ["accepted", "rejected", "pending"]
    assert len(again.predictions("a.png", second)) == 1
    accepted = again.annotations("a.png").instances[0]
    assert accepted.source == "prediction" and accepted.prediction_id == stored[0].id
    assert accepted.category == "cat" and accepted.score == pytest.approx(0.9)
    assert again.status("a.png") == "in_review"
    again.set_done("a.png")
    again.close()
    assert Project.open(tmp_path).status("a.png") == "done"


def test_commit_sets_instances_and_review_states_together(tmp_path):
    """Undo of an accept puts back the instances and the pending state in one transaction."""
    _images(tmp_path)
    project = Project.open(tmp_path)
    run = project.add_run("m", {"class_names": ["cat", "dog"]})
    stored = project.add_predictions(run, "a.png", _prediction())
    before = project.annotations("a.png").snapshot()
    project.accept_predictions("a.png", stored[:2])
    assert len(project.annotations("a.png")) == 2
    project.commit("a.png", before, [(p.id, "pending") for p in stored[:2]])
    assert [p.review for p in project.predictions("a.png")] == ["pending"] * 3
    project.close()
    again = Project.open(tmp_path)
    assert len(again.annotations("a.png")) == 0
    assert [p.review for p in again.predictions("a.png")] == ["pending"] * 3


def test_training_runs_are_recorded(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    run = project.add_training_run("maskrcnn_r18_fpn", {"epochs": 2})
    project.finish_training_run(run, "finished", {"mask_ap50": 0.5}, "runs/x.safetensors")
    project.close()
    (record,) = Project.open(tmp_path).store.training_runs()
    assert record["status"] == "finished" and record["metrics"] == {"mask_ap50": 0.5}


# --- CLI ---------------------------------------------------------------------------------------
def test_cli_export_and_import(tmp_path, capsys):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.close()
    out = tmp_path / "export" / "coco.json"
    assert cli_main(["export", str(tmp_path), "--out", str(out)]) == 0
    assert "4 annotations (4 RLE, 0 polygons)" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert all(isinstance(a["segmentation"], dict) for a in data["annotations"])
    assert "score" not in data["annotations"][2]  # clean COCO, no project-only fields
    assert cli_main(["export", str(tmp_path), "--out", str(out), "--polygons"]) == 0
    data = json.loads(out.read_text())
    assert all(isinstance(a["segmentation"], list) for a in data["annotations"])

    other = tmp_path / "other"
    other.mkdir()
    _images(other)
    assert cli_main(["import", str(out), "--images", str(other)]) == 0
    printed = capsys.readouterr().out
    assert "imported 4 instances" in printed and "saved" in printed
    imported = Project.open(other)
    assert imported.instance_count() == 4 and imported.classes.names == ["cat", "dog", "bird"]
    imported.close()
    assert cli_main(["import", str(out), "--images", str(other)]) == 0
    assert "4 instances already in the project" in capsys.readouterr().out
    pf = tmp_path / "elsewhere.json"
    assert cli_main(["import", str(out), "--images", str(other), "--project-file", str(pf), "--dry-run"]) == 0
    assert not pf.exists()
    assert cli_main(["import", str(out), "--images", str(other), "--project-file", str(pf)]) == 0
    assert len(json.loads(pf.read_text())["annotations"]) == 4


def test_cli_errors_are_reported_and_nothing_changes(tmp_path, capsys):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.close()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"id": 1}], "categories": []}))
    assert cli_main(["import", str(bad), "--images", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and "annotations[0] (id 1)" in err
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(
        json.dumps({"images": [{"id": 1, "file_name": "zzz.png", "width": 4, "height": 4}], "annotations": [],
                    "categories": []})
    )  # fmt: skip
    assert cli_main(["import", str(elsewhere), "--images", str(tmp_path)]) == 1
    assert "none of its 1 images were found" in capsys.readouterr().err
    assert cli_main(["import", str(tmp_path / "a.png"), "--images", str(tmp_path)]) == 1
    assert cli_main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.json")]) == 1
    assert Project.open(tmp_path).instance_count() == 4


def test_labelme_ignore_label_becomes_an_ignore_region_not_a_class(tmp_path):
    _images(tmp_path)
    shapes = [
        {"label": "cat", "points": [[2, 2], [20, 2], [20, 20]], "shape_type": "polygon", "group_id": None},
        {"label": IGNORE, "points": [[30, 30], [50, 30], [50, 45]], "shape_type": "polygon", "group_id": None},
    ]
    labelme = {"shapes": shapes, "imagePath": "a.png", "imageHeight": H, "imageWidth": W}
    (tmp_path / "a.json").write_text(json.dumps(labelme))
    project = Project.open(tmp_path)
    assert "labelme files" in project.opened_from
    assert project.classes.names == ["cat"]
    regions = [i for i in project.annotations("a.png") if i.category == IGNORE]
    assert len(regions) == 1 and regions[0].iscrowd
    coco, _ = project.to_coco("rle")
    assert [c["name"] for c in coco["categories"]] == ["cat"]
    assert sorted(a["iscrowd"] for a in coco["annotations"]) == [0, 1]


def test_read_only_and_bundled_folders_keep_their_store_in_the_data_dir(tmp_path, monkeypatch):
    from engine.project import _is_bundled

    data = tmp_path / "data"
    monkeypatch.setenv("MASKSCOPE_DATA_DIR", str(data))
    folder = tmp_path / "ro"
    folder.mkdir()
    _images(folder)
    monkeypatch.setattr("engine.project._writable", lambda f: False)
    project = Project.open(folder)
    project.annotations("a.png").add_new("cat", _rect(1, 1, 9, 9))
    project.close()
    assert not (folder / ".maskscope").exists() and project.db_path.is_relative_to(data)
    assert Project.open(folder).instance_count() == 1
    samples = Path(__file__).resolve().parent.parent / "resources" / "samples"
    assert _is_bundled(samples) and store_path_for(samples).is_relative_to(data)
    # The bundled samples ship their ground truth as annotations.json (for checks, bench_demo_models):
    # it stays out of the demo's store, so a new user sees the model's predictions, not answers.
    opened = Project.open(samples)
    try:
        assert opened.opened_from is None and opened.instance_count() == 0
    finally:
        opened.close()


def test_first_open_of_a_read_only_folder_with_annotations_names_the_store_in_full(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("MASKSCOPE_DATA_DIR", str(data))
    folder = tmp_path / "ro"
    folder.mkdir()
    _images(folder)
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 18, 18], "area": 324,
                         "iscrowd": 0, "segmentation": [[2, 2, 20, 2, 20, 20, 2, 20]]}],
        "categories": [{"id": 1, "name": "cat"}],
    }  # fmt: skip
    (folder / "annotations.json").write_text(json.dumps(coco))
    monkeypatch.setattr("engine.project._writable", lambda f: False)
    project = Project.open(folder)  # was a ValueError: the store is not under the folder
    assert "Imported 1 instances" in project.opened_from and str(project.db_path) in project.opened_from
    project.close()
