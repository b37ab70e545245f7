"""``ProjectStore``: the project's SQLite database (one connection, used from one thread).

Every public method that writes is one transaction, or joins the one ``transaction()`` opened
around it, so a crash or kill -9 leaves the database at the last committed edit (WAL journal,
``synchronous=NORMAL``: committed transactions survive a process crash; after an OS crash the
last few may be rolled back, never torn). A write touches the rows of what changed only: its
cost does not grow with the project.

The store speaks in the engine's own objects (``AnnotatedInstance``, ``Category``,
``Prediction``) and plain row tuples; ``engine.project.Project`` puts caching and undo on top.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.annotations import IGNORE, AnnotatedInstance, Category
from engine.errors import MaskScopeError
from engine.store.codec import decode_mask, encode_mask, instance_from_row, polygons_json
from engine.store.schema import SCHEMA_VERSION, migrate

if TYPE_CHECKING:
    from engine.prediction import Prediction

STATUSES = ("new", "predicted", "in_review", "done")
REVIEW_STATES = ("pending", "accepted", "rejected")

_ANNOTATION_SELECT = (
    "SELECT a.inst_id, COALESCE(c.name, ?), a.rle, a.polygons, a.score, a.source, a.iscrowd, a.prediction_id "
    "FROM annotations a LEFT JOIN classes c ON c.id = a.class_id "
)


@dataclass(frozen=True)
class ImageRow:
    id: int
    name: str
    width: int
    height: int
    status: str
    coco_id: int | None
    extra: dict

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.height, self.width)


@dataclass(frozen=True)
class ImageSummary:
    """What the file list shows for one image."""

    status: str
    annotations: int
    pending: int  # pending predictions of the chosen run
    min_margin: float | None = None  # smallest |score - threshold| of its pending predictions


@dataclass(frozen=True)
class RunRow:
    id: int
    model: str
    weights: str
    weights_sha256: str
    settings: dict
    created: str

    @property
    def class_names(self) -> list[str]:
        return list(self.settings.get("class_names", []))

    def label(self) -> str:
        return f"#{self.id} {self.model} ({self.created})"


@dataclass(frozen=True)
class StoredPrediction:
    """A predicted instance as stored, with its review state."""

    id: int
    run_id: int
    label: int
    score: float
    box: tuple[float, float, float, float]
    review: str
    rle: bytes
    image_size: tuple[int, int]

    def mask(self):
        return decode_mask(self.rle, self.image_size)


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the house settings: WAL, foreign keys, explicit transactions."""
    try:
        if readonly:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise MaskScopeError(f"{path}: not a MaskScope project database ({exc}).") from exc
    return conn


class ProjectStore:
    """The database of one project folder. Not thread-safe: one store per thread."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise MaskScopeError(f"{self.path}: no project database here.")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(self.path, readonly)
        self._depth = 0
        self._reading = 0  # depth of nested snapshot() reads
        self._lock = threading.RLock()
        try:
            if readonly:
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise MaskScopeError(f"{self.path}: schema {version}, expected {SCHEMA_VERSION}.")
                self.migrated_from = version
            else:
                self.migrated_from = migrate(self.conn, source=str(self.path))
            if not readonly:
                self.check_integrity(quick=True)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise MaskScopeError(f"{self.path}: the project database cannot be read ({exc}).") from exc
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def check_integrity(self, quick: bool = False) -> None:
        pragma = "quick_check" if quick else "integrity_check"
        result = self.conn.execute(f"PRAGMA {pragma}").fetchone()[0]
        if result != "ok":
            raise MaskScopeError(f"{self.path}: the project database is damaged ({result}).")

    # --- transactions ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; nested uses join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read of the whole project (a read transaction), e.g. for training.
        Nested uses join the outer one (a caller can read the classes and the export together)."""
        with self._lock:
            if self._reading:
                self._reading += 1
                try:
                    yield self.conn
                finally:
                    self._reading -= 1
                return
            self.conn.execute("BEGIN")
            self._reading = 1
            try:
                yield self.conn
            finally:
                self._reading = 0
                self.conn.execute("COMMIT")

    def _q(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, args).fetchall()

    # --- meta ------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(row[0][0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def _bump_revision(self, c: sqlite3.Connection) -> None:
        c.execute(
            "INSERT INTO meta(key, value) VALUES ('revision', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    @property
    def revision(self) -> int:
        """Counts committed edits of annotations and classes (the save state compares it)."""
        return int(self.get_meta("revision", 0))

    # --- images ----------------------------------------------------------------------------------
    def _image_from_row(self, row: tuple) -> ImageRow:
        iid, name, w, h, status, coco_id, extra = row
        return ImageRow(iid, name, w, h, status, coco_id, json.loads(extra) if extra else {})

    def image(self, name: str) -> ImageRow | None:
        rows = self._q("SELECT id, name, width, height, status, coco_id, extra FROM images WHERE name = ?", (name,))
        return self._image_from_row(rows[0]) if rows else None

    def images(self) -> list[ImageRow]:
        rows = self._q("SELECT id, name, width, height, status, coco_id, extra FROM images ORDER BY id")
        return [self._image_from_row(r) for r in rows]

    def ensure_image(
        self, name: str, image_size: tuple[int, int], coco_id: int | None = None, extra: dict | None = None
    ) -> int:
        h, w = int(image_size[0]), int(image_size[1])
        with self.transaction() as c:
            row = c.execute("SELECT id, width, height FROM images WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if (row[1], row[2]) != (w, h):
                    raise MaskScopeError(
                        f"{name} is {w}x{h} now but {row[1]}x{row[2]} in the project; its annotations were kept."
                    )
                if coco_id is not None or extra:
                    c.execute(
                        "UPDATE images SET coco_id = COALESCE(coco_id, ?), extra = COALESCE(extra, ?) WHERE id = ?",
                        (coco_id, json.dumps(extra) if extra else None, row[0]),
                    )
                return int(row[0])
            cur = c.execute(
                "INSERT INTO images(name, width, height, coco_id, extra) VALUES (?, ?, ?, ?, ?)",
                (name, w, h, coco_id, json.dumps(extra) if extra else None),
            )
            return _rowid(cur)

    def set_status(self, name: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        with self.transaction() as c:
            c.execute("UPDATE images SET status = ? WHERE name = ?", (status, name))

    def _touch_status(self, c: sqlite3.Connection, image_id: int, status: str) -> None:
        """Move an image forward (new -> predicted -> in_review); 'done' stays until unmarked."""
        order = {s: i for i, s in enumerate(STATUSES)}
        row = c.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is not None and order[row[0]] < order[status] and row[0] != "done":
            c.execute("UPDATE images SET status = ? WHERE id = ?", (status, image_id))

    def summaries(self, run_id: int | None = None, threshold: float = 0.5) -> dict[str, ImageSummary]:
        """Status, annotation count and pending predictions (of ``run_id``) of every stored image."""
        counts = dict(self._q("SELECT image_id, COUNT(*) FROM annotations GROUP BY image_id"))
        pending: dict[int, tuple[int, float]] = {}
        if run_id is not None:
            for iid, n, margin in self._q(
                "SELECT image_id, COUNT(*), MIN(ABS(score - ?)) FROM predictions "
                "WHERE run_id = ? AND review = 'pending' AND score >= ? GROUP BY image_id",
                (threshold, run_id, threshold),
            ):
                pending[iid] = (n, margin)
        out = {}
        for iid, name, status in self._q("SELECT id, name, status FROM images"):
            n, margin = pending.get(iid, (0, None))
            out[name] = ImageSummary(status, int(counts.get(iid, 0)), n, margin)
        return out

    # --- classes ---------------------------------------------------------------------------------
    def classes(self) -> list[Category]:
        rows = self._q("SELECT name, coco_id, supercategory, colour, keep FROM classes ORDER BY ord, id")
        return [Category(n, i, s, col, bool(k)) for n, i, s, col, k in rows]

    def class_counts(self) -> dict[str, int]:
        """Instances per class (every class listed, 0 when unused)."""
        rows = self._q(
            "SELECT c.name, COUNT(a.inst_id) FROM classes c LEFT JOIN annotations a ON a.class_id = c.id GROUP BY c.id"
        )
        return {n: int(k) for n, k in rows}

    def sync_classes(self, categories: Sequence[Category]) -> None:
        """Make the class table equal ``categories`` (matched by COCO id: a new name is a rename).

        A class that disappears must be unused by then (its instances moved or deleted first);
        the database refuses otherwise and nothing changes.
        """
        with self.transaction() as c:
            existing = {cid: rid for rid, cid in c.execute("SELECT id, coco_id FROM classes")}
            wanted = {cat.id for cat in categories}
            for cid, rid in existing.items():
                if cid not in wanted:
                    c.execute("DELETE FROM classes WHERE id = ?", (rid,))
            # Temporary names first, so that swapped names never collide on the UNIQUE constraint.
            c.execute("UPDATE classes SET name = char(1) || id")
            for ord_, cat in enumerate(categories):
                if cat.id in existing:
                    c.execute(
                        "UPDATE classes SET name = ?, supercategory = ?, colour = ?, keep = ?, ord = ? "
                        "WHERE coco_id = ?",
                        (cat.name, cat.supercategory, cat.colour, int(cat.keep), ord_, cat.id),
                    )
                else:
                    c.execute(
                        "INSERT INTO classes(name, coco_id, supercategory, colour, keep, ord) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (cat.name, cat.id, cat.supercategory, cat.colour, int(cat.keep), ord_),
                    )
            self._bump_revision(c)

    def move_class_instances(self, source: str, target: str) -> list[tuple[str, int]]:
        """Give every instance of class ``source`` the class ``target``; returns (image, id) moved."""
        with self.transaction() as c:
            src, dst = self._class_id(c, source), self._class_id(c, target)
            moved = c.execute(
                "SELECT i.name, a.inst_id FROM annotations a JOIN images i ON i.id = a.image_id WHERE a.class_id = ?",
                (src,),
            ).fetchall()
            c.execute("UPDATE annotations SET class_id = ? WHERE class_id = ?", (dst, src))
            self._bump_revision(c)
        return [(n, int(i)) for n, i in moved]

    def move_instances(self, keys: Iterable[tuple[str, int]], target: str) -> None:
        """Give the instances ``keys`` (image name, instance id) the class ``target`` (undo of a merge)."""
        with self.transaction() as c:
            dst = self._class_id(c, target)
            c.executemany(
                "UPDATE annotations SET class_id = ? WHERE image_id = (SELECT id FROM images WHERE name = ?) "
                "AND inst_id = ?",
                [(dst, n, i) for n, i in keys],
            )
            self._bump_revision(c)

    def take_class_instances(self, name: str) -> list[tuple]:
        """Delete every instance of class ``name``; returns their raw rows (to put back on undo)."""
        with self.transaction() as c:
            cid = self._class_id(c, name)
            rows = c.execute(
                "SELECT i.name, a.inst_id, a.ord, a.x, a.y, a.w, a.h, a.area, a.rle, a.polygons, a.score, a.source, "
                "a.iscrowd, a.prediction_id FROM annotations a JOIN images i ON i.id = a.image_id WHERE a.class_id = ?",
                (cid,),
            ).fetchall()
            c.execute("DELETE FROM annotations WHERE class_id = ?", (cid,))
            self._bump_revision(c)
        return rows

    def put_back_instances(self, name: str, rows: Sequence[tuple]) -> None:
        with self.transaction() as c:
            cid = self._class_id(c, name)
            c.executemany(
                "INSERT OR REPLACE INTO annotations(image_id, inst_id, ord, class_id, x, y, w, h, area, rle, polygons, "
                "score, source, iscrowd, prediction_id) VALUES ((SELECT id FROM images WHERE name = ?), ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r[0], r[1], r[2], cid, *r[3:]) for r in rows],
            )
            self._bump_revision(c)

    def _class_id(self, c: sqlite3.Connection, name: str) -> int:
        row = c.execute("SELECT id FROM classes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise MaskScopeError(f"unknown class {name!r}")
        return int(row[0])

    # --- annotations -----------------------------------------------------------------------------
    def load_annotations(self, name: str) -> tuple[ImageRow, list[AnnotatedInstance]] | None:
        image = self.image(name)
        if image is None:
            return None
        rows = self._q(_ANNOTATION_SELECT + "WHERE a.image_id = ? ORDER BY a.ord", (IGNORE, image.id))
        return image, [instance_from_row(r, image.image_size) for r in rows]

    def write_image(
        self,
        name: str,
        image_size: tuple[int, int],
        changed: Sequence[tuple[int, AnnotatedInstance]],
        removed: Iterable[int],
        order: Sequence[int],
        reviews: Sequence[tuple[int, str]] = (),
    ) -> None:
        """One image's edit: ``changed`` (position, instance) written, ``removed`` ids deleted,
        positions of ``order`` (instance ids in drawing order) updated, review states set."""
        with self.transaction() as c:
            image_id = self.ensure_image(name, image_size)
            removed = list(removed)
            if removed:
                c.executemany(
                    "DELETE FROM annotations WHERE image_id = ? AND inst_id = ?", [(image_id, i) for i in removed]
                )
            if changed:
                classes = dict(c.execute("SELECT name, id FROM classes"))
                rows = []
                for position, inst in changed:
                    class_id = None
                    if inst.category != IGNORE:
                        class_id = classes.get(inst.category)
                        if class_id is None:
                            raise MaskScopeError(f"{name}: instance {inst.id} has the unknown class {inst.category!r}")
                    x, y, w, h, rle = encode_mask(inst.mask)
                    rows.append(
                        (image_id, inst.id, position, class_id, x, y, w, h, inst.area, rle, polygons_json(inst),
                         inst.score, inst.source, int(inst.iscrowd), inst.prediction_id)
                    )  # fmt: skip
                c.executemany(
                    "INSERT OR REPLACE INTO annotations(image_id, inst_id, ord, class_id, x, y, w, h, area, rle, "
                    "polygons, score, source, iscrowd, prediction_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            if order:
                c.executemany(
                    "UPDATE annotations SET ord = ? WHERE image_id = ? AND inst_id = ? AND ord != ?",
                    [(k, image_id, i, k) for k, i in enumerate(order)],
                )
            if reviews:
                self._set_reviews(c, reviews)
            self._touch_status(c, image_id, "in_review")  # any edit, even to "nothing here", is review
            self._bump_revision(c)

    def iter_images_with_annotations(self, chunk: int = 500) -> Iterator[tuple[ImageRow, list[tuple]]]:
        """Every stored image with its raw annotation rows (class name, bbox, rle, ...), streamed."""
        images = self.images()
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            by_id: dict[int, list[tuple]] = {img.id: [] for img in part}
            marks = ",".join("?" * len(part))
            for row in self._q(
                "SELECT a.image_id, a.inst_id, COALESCE(c.name, ?), a.x, a.y, a.w, a.h, a.area, a.rle, a.polygons, "
                f"a.score, a.source, a.iscrowd FROM annotations a LEFT JOIN classes c ON c.id = a.class_id "
                f"WHERE a.image_id IN ({marks}) ORDER BY a.image_id, a.ord",
                (IGNORE, *by_id),
            ):
                by_id[row[0]].append(row[1:])
            for img in part:
                yield img, by_id[img.id]

    def instance_count(self) -> int:
        return int(self._q("SELECT COUNT(*) FROM annotations")[0][0])

    # --- prediction runs -------------------------------------------------------------------------
    def add_run(self, model: str, settings: dict, weights: str = "", weights_sha256: str = "") -> int:
        created = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO runs(model, weights, weights_sha256, settings, created) VALUES (?, ?, ?, ?, ?)",
                (model, weights, weights_sha256, json.dumps(settings), created),
            )
            return _rowid(cur)

    def runs(self) -> list[RunRow]:
        rows = self._q("SELECT id, model, weights, weights_sha256, settings, created FROM runs ORDER BY id")
        return [RunRow(i, m, w, h, json.loads(s), t) for i, m, w, h, s, t in rows]

    def run(self, run_id: int) -> RunRow | None:
        return next((r for r in self.runs() if r.id == run_id), None)

    def add_predictions(self, run_id: int, name: str, prediction: Prediction) -> list[int]:
        """Store one image's predictions (replacing that run's earlier ones for the image)."""
        with self.transaction() as c:
            image_id = self.ensure_image(name, prediction.image_size)
            c.execute(
                "DELETE FROM predictions WHERE run_id = ? AND image_id = ? AND review = 'pending'", (run_id, image_id)
            )
            ids = []
            for k, inst in enumerate(prediction.instances):
                x, y, w, h, rle = encode_mask(inst.mask)
                cur = c.execute(
                    "INSERT INTO predictions(run_id, image_id, ord, label, score, box, x, y, w, h, rle) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, image_id, k, int(inst.label), float(inst.score),
                     json.dumps([round(float(v), 3) for v in inst.box]), x, y, w, h, rle),
                )  # fmt: skip
                ids.append(_rowid(cur))
            self._touch_status(c, image_id, "predicted")
        return ids

    def predictions(self, name: str, run_id: int) -> list[StoredPrediction]:
        image = self.image(name)
        if image is None:
            return []
        rows = self._q(
            "SELECT id, run_id, label, score, box, review, rle FROM predictions WHERE image_id = ? AND run_id = ? "
            "ORDER BY ord",
            (image.id, run_id),
        )
        return [
            StoredPrediction(i, r, lab, s, tuple(json.loads(b)), rev, rle, image.image_size)
            for i, r, lab, s, b, rev, rle in rows
        ]

    def _set_reviews(self, c: sqlite3.Connection, reviews: Sequence[tuple[int, str]]) -> None:
        for _, state in reviews:
            if state not in REVIEW_STATES:
                raise ValueError(f"review state must be one of {REVIEW_STATES}, got {state!r}")
        c.executemany("UPDATE predictions SET review = ? WHERE id = ?", [(s, i) for i, s in reviews])

    def set_reviews(self, reviews: Sequence[tuple[int, str]]) -> None:
        with self.transaction() as c:
            self._set_reviews(c, reviews)
            for (image_id,) in c.execute(
                f"SELECT DISTINCT image_id FROM predictions WHERE id IN ({','.join('?' * len(reviews))})",
                [i for i, _ in reviews],
            ).fetchall():
                self._touch_status(c, image_id, "in_review")

    # --- training runs ---------------------------------------------------------------------------
    def add_training_run(self, model: str, config: dict) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO training_runs(created, model, config) VALUES (?, ?, ?)",
                (time.strftime("%Y-%m-%d %H:%M:%S"), model, json.dumps(config)),
            )
            return _rowid(cur)

    def finish_training_run(self, run_id: int, status: str, metrics: dict, weights: str = "") -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE training_runs SET status = ?, metrics = ?, weights = ? WHERE id = ?",
                (status, json.dumps(metrics), weights, run_id),
            )

    def training_runs(self) -> list[dict]:
        rows = self._q("SELECT id, created, model, config, metrics, weights, status FROM training_runs ORDER BY id")
        return [
            {"id": i, "created": t, "model": m, "config": json.loads(c), "metrics": json.loads(me), "weights": w,
             "status": s}
            for i, t, m, c, me, w, s in rows
        ]  # fmt: skip


def _rowid(cursor: sqlite3.Cursor) -> int:
    """The id SQLite gave the row just inserted (always set after an INSERT)."""
    assert cursor.lastrowid is not None
    return int(cursor.lastrowid)
