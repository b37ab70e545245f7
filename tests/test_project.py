"""Project: open/save round trip, dirty tracking, autosave and crash recovery, atomic writes, CLI."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.annotations import AnnotatedInstance, ImageAnnotations
from engine.cli import main as cli_main
from engine.errors import AnnotationError, ImageLoadError, MaskScopeError
from engine.masks import CroppedMask
from engine.project import Project, autosave_path_for

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


# --- open / save -----------------------------------------------------------------------------
def test_new_project_lists_images_and_creates_entries_with_image_sizes(tmp_path):
    _images(tmp_path, ("img10.png", "img2.png", "c.jpg"))
    (tmp_path / "notes.txt").write_text("x")
    project = Project.open(tmp_path)
    assert project.image_names() == ["c.jpg", "img2.png", "img10.png"]
    assert project.annotations_path == tmp_path / "annotations.json"
    assert not project.is_dirty and project.annotated_images() == []
    ann = project.annotations("img2.png")
    assert ann.image_size == (H, W) and not project.is_dirty  # looking is not editing
    assert project.annotated_images() == []
    with pytest.raises(ImageLoadError):
        project.annotations("missing.png")
    with pytest.raises(AnnotationError, match="no such project"):
        Project.open(tmp_path / "nope")


def test_save_and_reopen_round_trip(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.annotations("c.jpg").add_new("cat", _rect(1, 1, 3, 3))
    project.annotations("c.jpg").remove(1)  # reviewed, now empty: still written
    assert project.is_dirty
    project.classes.add("unused", 40)
    path = project.save()
    assert path == tmp_path / "annotations.json" and not project.is_dirty
    again = Project.open(tmp_path)
    assert again.classes.names == ["cat", "dog", "bird", "unused"]
    assert again.classes.id_of("unused") == 40
    assert [e.file_name for e in again.annotated_images()] == ["a.png", "b.png", "c.jpg"]
    for name in ("a.png", "b.png", "c.jpg"):
        assert again.annotations(name).same_content(project.annotations(name)), name
    inst = again.annotations("a.png").find(3)
    assert inst.score == pytest.approx(0.875) and inst.source == "prediction"
    assert again.annotations("a.png").find(2).polygons == ((30.0, 5.0, 60.0, 5.0, 45.0, 40.0),)
    # ids are stable across saves and the text is reproducible
    assert again.serialize() == project.serialize()
    # open by file path, too
    assert Project.open(tmp_path / "annotations.json").instance_count() == 4


def test_dirty_tracking_follows_every_kind_of_edit(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.save()
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
    old.add_new("cat", _rect(1, 1, 2, 2))  # a detached container no longer marks the project
    assert not project.is_dirty


def test_class_rename_and_remove(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.rename_class("cat", "kitten")
    assert {i.category for i in project.annotations("a.png")} == {"kitten", "dog"}
    assert project.classes.names == ["kitten", "dog", "bird"]
    with pytest.raises(AnnotationError, match="used by 1 instances"):
        project.remove_class("bird")
    assert project.remove_class("bird", delete_instances=True) == 1
    assert len(project.annotations("b.png")) == 0 and "bird" not in project.classes
    project.save()
    assert Project.open(tmp_path).classes.names == ["kitten", "dog"]


def test_corrupt_project_file_is_a_clear_error(tmp_path):
    (tmp_path / "annotations.json").write_text('{"images": [}')
    with pytest.raises(AnnotationError, match="annotations.json: not valid JSON"):
        Project.open(tmp_path)


# --- autosave --------------------------------------------------------------------------------
def test_autosave_restore_and_discard(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.save()
    assert not project.autosave()  # nothing unsaved
    auto = autosave_path_for(project.annotations_path)
    assert auto == tmp_path / "annotations.autosave.json" and not auto.exists()
    project.annotations("b.png").add_new("bird", _rect(3, 3, 9, 9))
    assert project.autosave() and auto.exists()
    assert not project.autosave()  # no new edit since
    expected = project.annotations("b.png").copy()
    # "crash": a new session finds the autosave
    session = Project.open(tmp_path)
    assert session.has_newer_autosave()
    assert len(session.annotations("b.png")) == 1
    session.restore_autosave()
    assert session.is_dirty and session.annotations("b.png").same_content(expected)
    session.save()
    assert not auto.exists() and not session.has_newer_autosave()
    assert len(Project.open(tmp_path).annotations("b.png")) == 2
    # discard
    session.annotations("b.png").remove(1)
    session.autosave()
    fresh = Project.open(tmp_path)
    assert fresh.has_newer_autosave()
    fresh.discard_autosave()
    assert not fresh.has_newer_autosave() and len(fresh.annotations("b.png")) == 2


def test_autosave_without_a_main_file_and_open_from_autosave(tmp_path):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.autosave()
    assert not project.annotations_path.exists()
    assert Project.open(tmp_path).has_newer_autosave()
    recovered = Project.open(tmp_path, use_autosave=True)
    assert recovered.is_dirty and recovered.instance_count() == 4
    with pytest.raises(AnnotationError, match="no autosave"):
        Project.open(tmp_path / "other.json", use_autosave=True)


# --- atomic writes ---------------------------------------------------------------------------
def _tmp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_disk_full_during_fsync_keeps_previous_file_byte_identical(tmp_path, monkeypatch):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.save()
    before = project.annotations_path.read_bytes()
    project.annotations("a.png").remove(1)

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(MaskScopeError, match="Disk full") as err:
        project.save()
    assert "annotations.json" in str(err.value) and "unchanged" in str(err.value)
    assert project.annotations_path.read_bytes() == before
    assert project.is_dirty and _tmp_files(tmp_path) == []
    with pytest.raises(MaskScopeError, match="Disk full"):
        project.autosave()
    monkeypatch.undo()
    project.save()
    assert project.annotations_path.read_bytes() != before


def test_disk_full_in_the_middle_of_writing_keeps_previous_file(tmp_path, monkeypatch):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.save()
    before = project.annotations_path.read_bytes()
    project.annotations("b.png").add_new("bird", _rect(2, 2, 30, 30))
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(MaskScopeError, match="Disk full"):
        project.save()
    monkeypatch.undo()
    assert project.annotations_path.read_bytes() == before and _tmp_files(tmp_path) == []


def _big_project(folder: Path) -> Project:
    rng = np.random.default_rng(0)
    project = Project(folder)
    for i in range(40):
        ann = ImageAnnotations(f"img_{i:03d}.png", 320, 240)
        for k in range(15):
            cx, cy, r = (int(v) for v in (rng.integers(30, 290), rng.integers(30, 210), rng.integers(5, 30)))
            yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
            ann.add_new(f"class{k % 4}", CroppedMask(cx - r, cy - r, xx**2 + yy**2 < r * r, (240, 320)))
        project.set_annotations(ann)
    return project


def _set_version(project: Project, version: int) -> None:
    project.info = {"description": "kill -9 test", "version": version}
    project.mark_dirty()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="SIGKILL of a forked writer needs POSIX")
def test_kill_9_while_saving_leaves_a_complete_version(tmp_path):
    """A child process saves a big project over and over, each version with its own info.version,
    and is killed with SIGKILL at random moments: the file must always be one complete version."""
    project = _big_project(tmp_path)
    target = project.annotations_path
    marker = 987654321
    _set_version(project, marker)
    template = project.serialize()
    rng = random.Random(1234)
    seen = []
    for run in range(6):
        first_version = run * 1_000_000
        mtime = target.stat().st_mtime_ns if target.exists() else 0
        pid = os.fork()
        if pid == 0:  # the writer: never returns into pytest
            try:
                v = first_version
                while True:
                    _set_version(project, v)
                    # The real save path; the text is the template with this version's number, so
                    # the loop spends its time writing (where a kill is dangerous), not encoding.
                    project.serialize = lambda v=v: template.replace(str(marker), str(v), 1)
                    project.save()
                    v += 1
            finally:
                os._exit(1)
        try:
            deadline = time.monotonic() + 30
            while not (target.exists() and target.stat().st_mtime_ns != mtime):  # its first save
                assert os.waitpid(pid, os.WNOHANG) == (0, 0), "writer died"
                assert time.monotonic() < deadline, "writer never saved"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.02, 0.2))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        text = target.read_text()
        v = json.loads(text)["info"]["version"]  # complete JSON, never torn
        _set_version(project, v)
        assert text == project.serialize(), f"the file differs from version {v}"
        seen.append(v)
    assert all(v >= 1_000_000 * k for k, v in enumerate(seen))  # each run's own writes
    assert any(v % 1_000_000 > 0 for v in seen)  # killed while saving repeatedly, not after one save
    assert Project.open(tmp_path).instance_count() == 40 * 15


# --- CLI -------------------------------------------------------------------------------------
def test_cli_export_and_import(tmp_path, capsys):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.save()
    out = tmp_path / "export" / "coco.json"
    assert cli_main(["export", str(tmp_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 annotations (4 RLE, 0 polygons)" in printed
    data = json.loads(out.read_text())
    assert all(isinstance(a["segmentation"], dict) for a in data["annotations"])
    assert "score" not in data["annotations"][2]  # clean COCO, no project-only fields
    assert cli_main(["export", str(tmp_path / "annotations.json"), "--out", str(out), "--polygons"]) == 0
    data = json.loads(out.read_text())
    assert all(isinstance(a["segmentation"], list) for a in data["annotations"])
    assert cli_main(["export", str(tmp_path), "--out", str(tmp_path / "annotations.json")]) == 1
    assert "project file itself" in capsys.readouterr().err

    # import it into a second project with the same images
    other = tmp_path / "other"
    other.mkdir()
    _images(other)
    assert cli_main(["import", str(out), "--images", str(other)]) == 0
    printed = capsys.readouterr().out
    assert "imported 4 instances" in printed and "saved" in printed
    imported = Project.open(other)
    assert imported.instance_count() == 4 and imported.classes.names == ["cat", "dog", "bird"]
    # --project-file and --dry-run
    pf = tmp_path / "elsewhere.json"
    assert cli_main(["import", str(out), "--images", str(other), "--project-file", str(pf), "--dry-run"]) == 0
    assert not pf.exists()
    assert cli_main(["import", str(out), "--images", str(other), "--project-file", str(pf)]) == 0
    assert Project.open(other, annotations_path=pf).instance_count() == 4


def test_cli_errors_are_reported_and_nothing_changes(tmp_path, capsys):
    _images(tmp_path)
    project = Project.open(tmp_path)
    _annotate(project)
    project.save()
    before = project.annotations_path.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"id": 1}], "categories": []}))
    assert cli_main(["import", str(bad), "--images", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and "annotations[0] (id 1)" in err
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "zzz.png", "width": 4, "height": 4}],
                "annotations": [],
                "categories": [],
            }
        )
    )
    assert cli_main(["import", str(elsewhere), "--images", str(tmp_path)]) == 1
    assert "none of its 1 images were found" in capsys.readouterr().err
    assert cli_main(["import", str(tmp_path / "a.png"), "--images", str(tmp_path)]) == 1
    assert cli_main(["import", str(project.annotations_path), "--images", str(tmp_path)]) == 1
    assert "own annotations file" in capsys.readouterr().err
    assert cli_main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.json")]) == 1
    assert project.annotations_path.read_bytes() == before
