"""The project database's schema and its forward migrations.

Each entry of ``MIGRATIONS`` takes the database from version ``n`` to ``n + 1``; a new database
runs them all. ``PRAGMA user_version`` holds the version, so opening an older project upgrades it
in one transaction, and a project from a newer MaskScope is refused instead of being damaged.
"""

from __future__ import annotations

import sqlite3

from engine.errors import MaskScopeError

MIGRATIONS: tuple[str, ...] = (
    # 1: images, classes, annotations, prediction runs and their reviewed predictions.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,            -- relative posix path inside the project folder
        width INTEGER NOT NULL CHECK (width > 0),
        height INTEGER NOT NULL CHECK (height > 0),
        status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'predicted', 'in_review', 'done')),
        coco_id INTEGER,                      -- id in the COCO file it came from, kept on export
        extra TEXT                            -- other COCO image fields (JSON)
    );
    CREATE TABLE classes (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        coco_id INTEGER NOT NULL UNIQUE,      -- stable COCO category id
        supercategory TEXT NOT NULL DEFAULT '',
        ord INTEGER NOT NULL
    );
    CREATE TABLE annotations (
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        inst_id INTEGER NOT NULL CHECK (inst_id > 0),   -- the instance's id within its image
        ord INTEGER NOT NULL,                           -- drawing order
        class_id INTEGER REFERENCES classes(id),        -- NULL: an ignore region
        x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL,
        area INTEGER NOT NULL,
        rle BLOB NOT NULL,                    -- COCO compressed RLE counts of the full-image mask
        polygons TEXT,                        -- JSON, while the mask is exactly their rasterisation
        score REAL,
        source TEXT NOT NULL,                 -- manual | prediction | import
        iscrowd INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (image_id, inst_id)
    ) WITHOUT ROWID;
    CREATE INDEX annotations_class ON annotations(class_id);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        weights TEXT NOT NULL DEFAULT '',
        weights_sha256 TEXT NOT NULL DEFAULT '',
        settings TEXT NOT NULL,               -- JSON: class names, thresholds, device...
        created TEXT NOT NULL
    );
    CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        label INTEGER NOT NULL,               -- index into the run's class names
        score REAL NOT NULL,
        box TEXT NOT NULL,                    -- JSON x1, y1, x2, y2
        x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL,
        rle BLOB NOT NULL,
        review TEXT NOT NULL DEFAULT 'pending' CHECK (review IN ('pending', 'accepted', 'rejected'))
    );
    CREATE INDEX predictions_image ON predictions(image_id, run_id);
    """,
    # 2: class colours and "keep when unused", provenance of accepted annotations, training runs.
    """
    ALTER TABLE classes ADD COLUMN colour TEXT NOT NULL DEFAULT '';
    ALTER TABLE classes ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE annotations ADD COLUMN prediction_id INTEGER;
    CREATE TABLE training_runs (
        id INTEGER PRIMARY KEY,
        created TEXT NOT NULL,
        model TEXT NOT NULL,
        config TEXT NOT NULL,                 -- JSON
        metrics TEXT NOT NULL DEFAULT '{}',   -- JSON
        weights TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'running'
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION, source: str = "the project") -> int:
    """Bring the database to ``target`` (one transaction); returns the version it had before."""
    before = schema_version(conn)
    if before > SCHEMA_VERSION:
        raise MaskScopeError(
            f"{source} was written by a newer MaskScope (schema {before}, this one knows {SCHEMA_VERSION}); "
            "it was not changed. Update MaskScope to open it."
        )
    if before >= target:
        return before
    conn.execute("BEGIN IMMEDIATE")
    try:
        for version in range(before, target):
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    parts, current = [], []
    for line in script.splitlines():
        current.append(line.split("--", 1)[0])
        text = "\n".join(current).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            parts.append(text)
            current = []
    rest = "\n".join(current).strip()
    if rest:
        parts.append(rest)
    return parts
