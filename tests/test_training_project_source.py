"""Training data from a project: read from its store in one read transaction, read-only (no Qt)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import DataError
from engine.masks import CroppedMask
from engine.project import Project, store_path_for
from engine.store.store import ProjectStore
from engine.training.data import load_project_source

H, W = 40, 56


def _rect(x0, y0, x1, y1) -> CroppedMask:
    full = np.zeros((H, W), bool)
    full[y0:y1, x0:x1] = True
    return CroppedMask.from_full(full)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for n in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (W, H), (30, 60, 90)).save(tmp_path / n)
    project = Project.open(tmp_path)
    project.annotations("a.png").add_new("cat", _rect(1, 1, 10, 10))
    project.annotations("a.png").add_new("dog", _rect(12, 1, 20, 10))
    project.annotations("b.png").add_new("cat", _rect(0, 0, 30, 30))
    project.classes.ensure("fish")  # unused, not kept: not a training class
    project.close()
    return tmp_path


def test_a_store_without_annotations_json_is_a_training_set(folder):
    assert not (folder / "annotations.json").exists()
    source = load_project_source(folder)
    assert source.classes == ["cat", "dog"]
    assert sorted(r.path.name for r in source.records) == ["a.png", "b.png"]
    assert sum(len(r.annotations) for r in source.records) == 3
    assert source.image_dir == folder
    # Kept classes train even while unused; the JSON path of the project works as the folder does.
    project = Project.open(folder)
    project.update_class("fish", keep=True)
    project.close()
    assert load_project_source(folder / "annotations.json").classes == ["cat", "dog", "fish"]


def test_reads_the_last_committed_state_while_another_connection_writes(folder):
    writer = ProjectStore(store_path_for(folder))
    try:
        with writer.transaction() as c:  # an edit in flight (not committed): deletes every instance
            c.execute("DELETE FROM annotations")
            source = load_project_source(folder)
            assert sum(len(r.annotations) for r in source.records) == 3
        with pytest.raises(DataError):  # committed now: nothing left to train on
            load_project_source(folder)
    finally:
        writer.close()


def test_a_folder_without_a_store_is_read_from_its_json_and_gets_no_store(folder, tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for n in ("a.png", "b.png"):
        (legacy / n).write_bytes((folder / n).read_bytes())
    project = Project.open(folder)
    (legacy / "annotations.json").write_text(json.dumps(project.to_coco("rle")[0]))
    project.close()
    source = load_project_source(legacy)
    assert source.classes == ["cat", "dog"] and len(source.records) == 2
    assert not (legacy / ".maskscope").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no annotations file"):
        load_project_source(empty)
    assert not (empty / ".maskscope").exists()
