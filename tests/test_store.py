"""The SQLite store itself: schema migration, integrity, a reader beside a writer, kill -9 storms."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import MaskScopeError
from engine.masks import CroppedMask
from engine.project import Project, store_path_for
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION, _statements, migrate
from engine.store.store import ProjectStore

H, W = 32, 40


def _images(folder: Path, n: int = 4) -> list[str]:
    names = [f"img{k}.png" for k in range(n)]
    for name in names:
        Image.new("RGB", (W, H)).save(folder / name)
    return names


def _rect(x0, y0, x1, y1) -> CroppedMask:
    full = np.zeros((H, W), bool)
    full[y0:y1, x0:x1] = True
    return CroppedMask.from_full(full)


def test_a_version_1_database_is_migrated_forward_with_its_data(tmp_path):
    path = tmp_path / ".maskscope" / "project.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.execute("INSERT INTO images(name, width, height) VALUES ('a.png', 40, 32)")
    conn.execute("INSERT INTO classes(name, coco_id, ord) VALUES ('cat', 3, 0)")
    x, y, w, h = 2, 2, 5, 5
    rle = _rect(2, 2, 7, 7).to_rle()["counts"].encode()
    conn.execute(
        "INSERT INTO annotations(image_id, inst_id, ord, class_id, x, y, w, h, area, rle, source) "
        "VALUES (1, 1, 0, 1, ?, ?, ?, ?, 25, ?, 'manual')",
        (x, y, w, h, rle),
    )
    conn.close()
    store = ProjectStore(path)
    assert store.migrated_from == 1
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.classes()[0].colour == "" and store.training_runs() == []
    _, (inst,) = store.load_annotations("a.png")
    assert inst.category == "cat" and inst.area == 25 and inst.prediction_id is None


def test_a_newer_schema_is_refused_unchanged(tmp_path):
    path = tmp_path / "p.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(MaskScopeError, match="newer MaskScope"):
        ProjectStore(path)


def test_a_failed_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "p.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    monkeypatch.setattr("engine.store.schema.MIGRATIONS", (*MIGRATIONS[:1], "ALTER TABLE nope ADD COLUMN x;"))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, target=2)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


def test_migration_scripts_split_into_statements():
    assert all(s.endswith(";") for m in MIGRATIONS for s in _statements(m))
    assert sum(len(_statements(m)) for m in MIGRATIONS) >= 10


def test_garbage_instead_of_a_database_is_a_clear_error(tmp_path):
    (tmp_path / ".maskscope").mkdir()
    store_path_for(tmp_path).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(MaskScopeError, match="project database"):
        Project.open(tmp_path)


def test_a_reader_sees_committed_states_while_a_writer_writes(tmp_path):
    """WAL: a read transaction (what training takes) is consistent while edits go on."""
    names = _images(tmp_path)
    project = Project.open(tmp_path, background=True)
    project.classes.add("cat")
    project.flush()
    reader = ProjectStore(store_path_for(tmp_path))
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            with reader.snapshot():
                total = reader.instance_count()
                per_image = sum(len(reader.load_annotations(n)[1]) for n in names if reader.image(n))
            assert total == per_image  # never a half-written edit
            seen.append(total)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for k in range(60):
            project.annotations(names[k % len(names)]).add_new("cat", _rect(k % 30, 1, k % 30 + 5, 9))
        project.flush()
    finally:
        stop.set()
        thread.join()
    assert seen and seen == sorted(seen) and reader.instance_count() == 60
    project.close()


# --- kill -9 storm -----------------------------------------------------------------------------
def _edit(project: Project, names: list[str], rng: random.Random) -> None:
    """One random edit: add, reshape, relabel or delete an instance, or add a class."""
    name = rng.choice(names)
    ann = project.annotations(name)
    kind = rng.random()
    if kind < 0.05:
        project.classes.ensure(f"class{len(project.classes)}")
    elif kind < 0.5 or not len(ann):
        x, y = rng.randrange(0, 30), rng.randrange(0, 24)
        ann.add_new(rng.choice(project.classes.names), _rect(x, y, x + rng.randrange(1, 10), y + rng.randrange(1, 8)))
    else:
        inst = rng.choice(ann.instances)
        if kind < 0.7:
            x, y = rng.randrange(0, 30), rng.randrange(0, 24)
            ann.replace(inst.with_mask(_rect(x, y, x + 4, y + 4)))
        elif kind < 0.85:
            ann.replace(inst.with_category(rng.choice(project.classes.names)))
        else:
            ann.remove(inst.id)


def _state(project: Project, names: list[str]) -> tuple:
    images = tuple(
        tuple((i.id, i.category, tuple(i.mask.bbox_xywh()), i.area) for i in project.annotations(n)) for n in names
    )
    return tuple(project.classes.names), images


def _rng(seed: int, k: int) -> random.Random:
    """Edit ``k``'s randomness: with the state before it, it fixes the edit (a resumed child agrees)."""
    return random.Random(seed * 1_000_003 + k)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="SIGKILL of a forked writer needs POSIX")
def test_kill_9_storm_loses_at_most_the_edit_in_flight(tmp_path):
    """A child applies random edits through the store, reporting each committed one on a pipe, and is
    killed with SIGKILL at random moments, 20 times; every reopen passes integrity_check and equals
    the last edit the child reported committed (or the one it was committing)."""
    folder, scratch = tmp_path / "project", tmp_path / "replay"
    folder.mkdir()
    scratch.mkdir()
    names = _images(folder, 3)
    _images(scratch, 3)
    replay = Project.open(scratch)  # the same edits, never killed: the expected states
    replay.classes.add("class0")
    seed, done = 20261129, 0
    timing = random.Random(7)
    for kill in range(20):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                os.close(read_fd)
                project = Project.open(folder)
                if not project.classes.names:
                    project.classes.add("class0")
                for k in range(done + 1, done + 100_000):
                    _edit(project, names, _rng(seed, k))
                    os.write(write_fd, f"{k}\n".encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        time.sleep(timing.uniform(0.05, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd) as fh:
            reported = [int(line) for line in fh.read().splitlines() if line.strip()]
        last = reported[-1] if reported else done
        for k in range(done + 1, last + 1):
            _edit(replay, names, _rng(seed, k))
        project = Project.open(folder)
        project.store.check_integrity()
        state = _state(project, names)
        project.close()
        if state != _state(replay, names):  # the edit in flight may have committed before the kill
            _edit(replay, names, _rng(seed, last + 1))
            assert state == _state(replay, names), f"kill {kill}: the store is neither edit {last} nor {last + 1}"
            last += 1
        done = last
    print("edits committed across 20 kills:", done)
    assert done > 40  # the children really edited between the kills
    replay.close()
