"""``python main.py classes DIR ...``: list, rename, merge, delete, recolour, keep (no Qt)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main as cli_main
from engine.masks import CroppedMask
from engine.project import Project, store_path_for

H, W = 40, 56


def _rect(x0, y0, x1, y1) -> CroppedMask:
    full = np.zeros((H, W), bool)
    full[y0:y1, x0:x1] = True
    return CroppedMask.from_full(full)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """a.png: cat, dog, cat; b.png: bird. Plus an unused class 'fish'."""
    for n in ("a.png", "b.png"):
        Image.new("RGB", (W, H), (30, 60, 90)).save(tmp_path / n)
    project = Project.open(tmp_path)
    a = project.annotations("a.png")
    a.add_new("cat", _rect(1, 1, 10, 10))
    a.add_new("dog", _rect(12, 1, 20, 10))
    a.add_new("cat", _rect(1, 20, 10, 30))
    project.annotations("b.png").add_new("bird", _rect(0, 0, 30, 30))
    project.classes.ensure("fish")
    project.close()
    return tmp_path


def _reopen(folder: Path) -> Project:
    return Project.open(folder)


def _categories(project: Project, name: str) -> list[str]:
    return [i.category for i in project.annotations(name)]


def test_list_prints_name_id_count_and_unused_flag(folder, capsys):
    assert cli_main(["classes", str(folder), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["class", "coco_id", "instances", "unused", "colour", "kept"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"cat", "dog", "bird", "fish"}
    assert rows["cat"][1:3] == ["1", "2"] and "unused" not in rows["cat"]
    assert rows["bird"][2] == "1"
    assert rows["fish"][2] == "0" and "unused" in rows["fish"]


def test_rename_keeps_the_coco_id_and_moves_every_instance(folder, capsys):
    before = _reopen(folder)
    cat_id = before.classes.id_of("cat")
    before.close()
    assert cli_main(["classes", str(folder), "rename", "cat", "kitten"]) == 0
    assert "renamed 'cat' to 'kitten'" in capsys.readouterr().out
    project = _reopen(folder)
    assert project.classes.id_of("kitten") == cat_id and "cat" not in project.classes
    assert _categories(project, "a.png") == ["kitten", "dog", "kitten"]
    assert project.class_counts()["kitten"] == 2
    # renaming onto an existing class is refused: merge is the way to join classes
    project.close()
    assert cli_main(["classes", str(folder), "rename", "kitten", "dog"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_merge_moves_instances_and_keeps_the_target_id(folder, capsys):
    project = _reopen(folder)
    dog_id = project.classes.id_of("dog")
    project.close()
    assert cli_main(["classes", str(folder), "merge", "cat", "dog"]) == 0
    assert "2 instances moved" in capsys.readouterr().out
    project = _reopen(folder)
    assert "cat" not in project.classes and project.classes.id_of("dog") == dog_id
    assert _categories(project, "a.png") == ["dog", "dog", "dog"]
    assert project.class_counts() == {"dog": 3, "bird": 1, "fish": 0}


def test_delete_is_refused_while_used_and_takes_instances_when_asked(folder, capsys):
    assert cli_main(["classes", str(folder), "delete", "cat"]) == 1
    err = capsys.readouterr().err
    assert "used by 2 instances" in err
    assert _reopen(folder).class_counts()["cat"] == 2  # nothing changed
    assert cli_main(["classes", str(folder), "delete", "fish"]) == 0
    assert cli_main(["classes", str(folder), "delete", "cat", "--with-instances"]) == 0
    assert "its 2 instances" in capsys.readouterr().out
    project = _reopen(folder)
    assert project.classes.names == ["dog", "bird"]
    assert _categories(project, "a.png") == ["dog"]


def test_recolour_and_keep_persist_and_keep_puts_an_unused_class_in_exports(folder, capsys):
    assert cli_main(["classes", str(folder), "recolour", "dog", "#FF8800"]) == 0
    assert cli_main(["classes", str(folder), "recolour", "dog", "orange"]) == 1
    assert "#rrggbb" in capsys.readouterr().err
    project = _reopen(folder)
    assert project.classes.get("dog").colour == "#ff8800"
    assert "fish" not in [c.name for c in project.exported_classes()]
    project.close()
    assert cli_main(["classes", str(folder), "keep", "fish"]) == 0
    project = _reopen(folder)
    assert project.classes.get("fish").keep
    assert "fish" in [c.name for c in project.exported_classes()]
    coco, _ = project.to_coco("rle")
    assert "fish" in [c["name"] for c in coco["categories"]]
    project.close()
    assert cli_main(["classes", str(folder), "keep", "fish", "--off"]) == 0
    assert not _reopen(folder).classes.get("fish").keep
    capsys.readouterr()
    assert cli_main(["classes", str(folder), "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("dog"))
    assert "#ff8800" in line


def test_unknown_class_and_folder_errors_change_nothing(folder, tmp_path, capsys):
    assert cli_main(["classes", str(folder), "merge", "cat", "horse"]) == 1
    assert "no class 'horse'" in capsys.readouterr().err
    assert cli_main(["classes", str(folder), "rename", "cat", "__ignore__"]) == 1
    assert "ignore regions" in capsys.readouterr().err
    assert _reopen(folder).class_counts()["cat"] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["classes", str(empty), "list"]) == 1
    assert "not a MaskScope project" in capsys.readouterr().err
    assert not store_path_for(empty).exists()  # no store is created in a folder that has none


def test_a_folder_with_only_annotations_json_is_imported_once(folder, tmp_path, capsys):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for n in ("a.png", "b.png"):
        (legacy / n).write_bytes((folder / n).read_bytes())
    project = _reopen(folder)
    (legacy / "annotations.json").write_text(json.dumps(project.to_coco("rle")[0]))
    project.close()
    assert cli_main(["classes", str(legacy), "list"]) == 0
    out = capsys.readouterr().out
    assert "Imported 4 instances" in out and "cat" in out
    assert store_path_for(legacy).is_file()
