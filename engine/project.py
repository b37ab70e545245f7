"""A project: a folder of images and its store, ``<folder>/.maskscope/project.db`` (SQLite).

The store is the single source of truth for everything the labelling loop needs: images and
their review status, classes, annotations, prediction runs with each prediction's review state,
and training runs (``engine.store``). ``Project`` is its Qt-free facade:

- ``annotations(name)`` gives an image's ``ImageAnnotations``, read from the store when first
  asked for and cached; every change of it (or of ``classes``) is written through as one
  transaction holding that image's changed instances only. ``background=True`` (the GUI) hands
  the writes to a writer thread, so the caller never waits on the disk; ``flush()`` waits.
- ``with project.batch():`` makes several changes one transaction (accepting a prediction adds
  an annotation and marks the prediction accepted, together or not at all).
- Class operations (rename, merge, delete, recolour) return what their undo needs.
- COCO JSON is the interchange format: ``save()`` writes ``annotations.json`` (the validated
  writer), ``export()`` any file, ``import_file()`` reads COCO or labelme (identical instances are
  skipped). Opening a folder whose store does not exist yet imports its ``annotations.json``
  (or a newer ``annotations.autosave.json``, or its labelme files) once, and says so in
  ``opened_from``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engine.annotations import IGNORE, AnnotatedInstance, Category, ClassList, ImageAnnotations, ImportPlan, masks_equal
from engine.coco_io import ExportStats, dumps
from engine.errors import AnnotationError, ImageLoadError, MaskScopeError
from engine.fileio import atomic_write_text, remove_stale_temp_files
from engine.store.store import ImageSummary, ProjectStore, RunRow, StoredPrediction
from engine.store.writer import BackgroundWriter, Job, Writer

if TYPE_CHECKING:
    from engine.prediction import Prediction

ANNOTATIONS_NAME = "annotations.json"
STORE_DIR = ".maskscope"
STORE_NAME = "project.db"


def store_path_for(folder: str | Path) -> Path:
    """``<folder>/.maskscope/project.db``; for a folder MaskScope must not write into (read-only, or
    its own bundled samples) a per-folder store in the user's data directory instead."""
    folder = Path(folder).absolute()
    local = folder / STORE_DIR / STORE_NAME
    if local.exists() or (_writable(folder) and not _is_bundled(folder)):
        return local
    import hashlib

    from platformdirs import user_data_dir

    key = hashlib.sha256(str(folder).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    root = Path(os.environ.get("MASKSCOPE_DATA_DIR") or user_data_dir("MaskScope", "MaskScope"))
    return root / "projects" / f"{folder.name}-{key}" / STORE_NAME


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _is_bundled(folder: Path) -> bool:
    """The samples shipped inside the package (a source tree or an installed wheel)."""
    from resources import resource_path

    bundled = resource_path()
    try:
        folder.resolve().relative_to(bundled)
    except (ValueError, OSError):
        return False
    return True


def autosave_path_for(annotations_path: str | Path) -> Path:
    """``annotations.json`` -> ``annotations.autosave.json`` (what MaskScope 0.1 wrote; imported once)."""
    p = Path(annotations_path)
    return p.with_name(p.stem + ".autosave.json")


def _norm_name(name: str) -> str:
    """Project image names are relative posix paths without './'."""
    return str(PurePosixPath(str(name).replace("\\", "/")))


@dataclass
class ImportSummary:
    source: Path
    format: str
    images: int = 0
    instances: int = 0
    duplicates: int = 0  # identical to an instance the image already had: skipped
    new_classes: list[str] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    replaced: bool = False

    def summary(self) -> str:
        verb = "replaced annotations of" if self.replaced else "added to"
        lines = [f"imported {self.instances} instances ({verb} {self.images} images) from {self.source}"]
        if self.duplicates:
            lines.append(f"{self.duplicates} instances already in the project (same image, class and mask): skipped")
        if self.new_classes:
            lines.append(f"new classes: {', '.join(self.new_classes)}")
        if self.missing_images:
            shown = ", ".join(self.missing_images[:10])
            more = f" and {len(self.missing_images) - 10} more" if len(self.missing_images) > 10 else ""
            lines.append(f"{len(self.missing_images)} images not found in the project (skipped): {shown}{more}")
        for w in self.warnings[:20]:
            lines.append(f"warning: {w}")
        if len(self.warnings) > 20:
            lines.append(f"... and {len(self.warnings) - 20} more warnings")
        return "\n".join(lines)


@dataclass(frozen=True)
class ClassUndo:
    """What undoing a class operation needs (see ``Project.undo_class_operation``)."""

    kind: str  # 'rename' | 'merge' | 'delete' | 'update' | 'add'
    before: Category
    index: int  # position in the class list before
    target: str = ""  # merge: the class that was kept; rename: the new name
    moved: tuple[tuple[str, int], ...] = ()  # merge: (image, instance id) moved to ``target``
    rows: tuple[tuple, ...] = ()  # delete: the deleted instances' raw rows


class Project:
    """A folder of images and its project store."""

    def __init__(self, folder: str | Path, recursive: bool = False, background: bool = False) -> None:
        self.folder = Path(folder).absolute()
        self.recursive = recursive
        self.db_path = store_path_for(self.folder)
        if not self.folder.is_dir():
            raise AnnotationError(f"{self.folder}: no such project folder.")
        remove_stale_temp_files(self.folder)  # what a kill during an earlier save left behind
        new = not self.db_path.exists()
        try:
            self.store = ProjectStore(self.db_path)
        except OSError as exc:
            raise MaskScopeError(f"Cannot create the project store {self.db_path}: {exc.strerror or exc}.") from exc
        self.errors: list[str] = []  # write failures reported by the background writer
        self.closed = False  # close() was called: late GUI events must leave the project alone
        self.writer: Writer = (
            BackgroundWriter(self.db_path, on_error=lambda e: self.errors.append(str(e)))
            if background
            else Writer(self.store)
        )
        self._batch: list[Job] | None = None
        self._entries: dict[str, ImageAnnotations] = {}
        self._persisted: dict[str, tuple[AnnotatedInstance, ...]] = {}
        self._predictions: dict[tuple[str, int], list[StoredPrediction]] = {}
        self._status: dict[str, str] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        self._listing: list[str] | None = None
        self._deep_listing: list[str] | None = None
        self._muted = False
        self.classes = ClassList(self.store.classes())
        self.classes._listener = self._on_classes_change
        self._persisted_classes = self.classes.categories
        self._saved_revision = int(self.store.get_meta("saved_revision", 0))
        self.opened_from: str | None = None  # what was imported into a new store, for the user
        if new:
            self.opened_from = self._import_legacy()

    # --- opening and closing ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, recursive: bool = False, background: bool = False) -> Project:
        """Open the project of a folder (or of the annotations JSON in it), creating its store."""
        path = Path(path)
        if path.is_dir():
            return cls(path, recursive, background)
        if path.suffix.lower() == ".json" and path.parent.is_dir():
            project = cls(path.parent, recursive, background)
            if path.name != ANNOTATIONS_NAME:
                project.store.set_meta("save_path", str(path.absolute()))
            return project
        raise AnnotationError(f"{path}: no such project folder or annotations file.")

    def close(self) -> None:
        """Commit what is queued and close the database (the project is unusable afterwards)."""
        self.closed = True
        self.writer.close()
        self.store.close()

    def flush(self) -> None:
        """Wait until every edit so far is committed."""
        self.writer.flush()

    @property
    def annotations_path(self) -> Path:
        """The COCO file ``save()`` writes (``annotations.json`` unless saved elsewhere)."""
        saved = self.store.get_meta("save_path")
        return Path(saved) if saved else self.folder / ANNOTATIONS_NAME

    # --- writing ---------------------------------------------------------------------------------
    def _submit(self, job: Job) -> None:
        if self._batch is not None:
            self._batch.append(job)
        else:
            self.writer.submit(job)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Changes made inside are committed as one transaction."""
        if self._batch is not None:
            yield
            return
        self._batch = []
        try:
            yield
        finally:
            jobs, self._batch = self._batch, None
            if jobs:
                self.writer.submit(lambda store: [job(store) for job in jobs])

    @property
    def is_dirty(self) -> bool:
        """Edits since ``annotations.json`` was last written (they are all in the store already)."""
        self.flush()
        return self.store.revision != self._saved_revision

    # --- images ----------------------------------------------------------------------------------
    def image_path(self, name: str) -> Path:
        return self.folder / name

    def image_names(self, refresh: bool = False) -> list[str]:
        """Images in the folder (relative posix names), then stored ones not found there."""
        if refresh:
            self._deep_listing = None
        if self._listing is None or refresh:
            self._listing = self._list(self.recursive)
        listed = set(self._listing)
        return self._listing + [r.name for r in self.store.images() if r.name not in listed]

    def _list(self, recursive: bool) -> list[str]:
        from engine.imageio import list_images

        try:
            found = list_images(self.folder, recursive=recursive)
        except ImageLoadError:
            found = []
        return [p.relative_to(self.folder).as_posix() for p in found if STORE_DIR not in p.parts]

    def _all_image_names(self) -> list[str]:
        if self._deep_listing is None:
            self._deep_listing = self._list(True)
        deep = set(self._deep_listing)
        return self._deep_listing + [r.name for r in self.store.images() if r.name not in deep]

    def image_size(self, name: str) -> tuple[int, int]:
        """(height, width) of an image as displayed (EXIF orientation applied)."""
        name = _norm_name(name)
        if name in self._entries:
            return self._entries[name].image_size
        if name not in self._sizes:
            path = self.image_path(name)
            row = self.store.image(name)
            if row is not None:
                self._sizes[name] = row.image_size
            elif path.is_file():
                from engine.imageio import read_image_size

                w, h = read_image_size(path)
                self._sizes[name] = (h, w)
            else:
                raise ImageLoadError(f"Cannot read image '{path}': the file does not exist.")
        return self._sizes[name]

    def resolve_image(self, ref: str, base: Path | None = None) -> tuple[str, tuple[int, int]] | None:
        """Find the project image an annotation file refers to, and its actual size.

        Tries, in order: an absolute (or ``base``-relative) path inside the project folder; the
        name relative to the project folder; a unique file with the same base name.
        """
        ref_norm = str(ref).replace("\\", "/")
        candidate = Path(ref_norm)
        if base is not None and not candidate.is_absolute():
            candidate = base / candidate
        if candidate.is_absolute():
            try:
                rel = candidate.resolve().relative_to(self.folder.resolve()).as_posix()
            except (ValueError, OSError):
                rel = None
            if rel is not None and (candidate.is_file() or self.store.image(rel) is not None):
                return rel, self.image_size(rel)
        name = _norm_name(ref_norm)
        if not Path(ref_norm).is_absolute() and not name.startswith("../"):
            if name in self._entries or (self.folder / name).is_file() or self.store.image(name) is not None:
                return name, self.image_size(name)
        base_name = PurePosixPath(ref_norm).name
        matches = [n for n in self._all_image_names() if PurePosixPath(n).name == base_name]
        if len(matches) == 1:
            return matches[0], self.image_size(matches[0])
        return None

    # --- review status ---------------------------------------------------------------------------
    def status(self, name: str) -> str:
        name = _norm_name(name)
        if name not in self._status:
            row = self.store.image(name)
            self._status[name] = row.status if row is not None else "new"
        return self._status[name]

    def set_done(self, name: str, done: bool = True) -> None:
        """Mark an image reviewed ('done') or back in review."""
        name = _norm_name(name)
        size = self.image_size(name)
        status = "done" if done else ("in_review" if self.has_annotations(name) else self._undone_status(name))
        self._status[name] = status

        def job(store: ProjectStore) -> None:
            store.ensure_image(name, size)
            store.set_status(name, status)

        self._submit(job)

    def _undone_status(self, name: str) -> str:
        return "predicted" if any(k[0] == name for k in self._predictions) else "new"

    def summaries(self, run_id: int | None = None, threshold: float = 0.5) -> dict[str, ImageSummary]:
        """Per stored image: status, annotation count, pending predictions (committed state)."""
        self.flush()
        return self.store.summaries(run_id, threshold)

    # --- annotations -----------------------------------------------------------------------------
    def annotations(self, name: str, create: bool = True) -> ImageAnnotations | None:
        """The annotations of image ``name`` (read from the store once, then cached)."""
        name = _norm_name(name)
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        loaded = self.store.load_annotations(name)
        if loaded is not None:
            row, instances = loaded
            entry = ImageAnnotations(name, row.width, row.height, instances, image_id=row.coco_id, extra=row.extra)
        elif create:
            h, w = self.image_size(name)
            entry = ImageAnnotations(name, w, h)
        else:
            return None
        entry._listener = self._on_entry_change
        self._entries[name] = entry
        self._persisted[name] = entry.snapshot()
        return entry

    def has_annotations(self, name: str) -> bool:
        name = _norm_name(name)
        entry = self._entries.get(name)
        if entry is not None:
            return len(entry) > 0
        loaded = self.store.load_annotations(name)
        return bool(loaded and loaded[1])

    def set_annotations(self, ann: ImageAnnotations) -> None:
        """Put ``ann`` in place of the image's annotations."""
        name = _norm_name(ann.file_name)
        ann.file_name = name
        old = self.annotations(name, create=False)
        if old is not None and old is not ann:
            old._listener = None
            if ann.image_id is None:
                ann.image_id = old.image_id
        ann._listener = self._on_entry_change
        self._entries[name] = ann
        self._persisted.setdefault(name, ())
        self._on_entry_change(ann)

    def annotated_images(self) -> Iterator[ImageAnnotations]:
        """Every stored image's annotations (streamed; cached ones as edited)."""
        self.flush()
        for row in self.store.images():
            entry = self.annotations(row.name, create=False)
            if entry is not None:
                yield entry

    def instance_count(self) -> int:
        self.flush()
        return self.store.instance_count()

    def _on_entry_change(self, entry: ImageAnnotations) -> None:
        if self._muted:
            return
        name = entry.file_name
        for category in sorted(entry.categories() - set(self.classes.names) - {IGNORE}):
            self.classes.ensure(category)  # a class used by an instance joins the list at once
        before = self._persisted.get(name, ())
        after = entry.snapshot()
        self._persisted[name] = after
        self._status[name] = "in_review" if self.status(name) != "done" else "done"
        self._submit(_image_job(name, entry.image_size, entry.image_id, entry.extra, before, after, ()))

    def commit(self, name: str, snapshot: Sequence[AnnotatedInstance], reviews: Sequence[tuple[int, str]] = ()) -> None:
        """Set an image's instances and prediction review states in one transaction (undo/redo use it)."""
        entry = self.annotations(name)
        assert entry is not None
        self._set_reviews_cached(reviews)
        with self.batch():
            self._muted = True
            try:
                entry.restore(snapshot)
            finally:
                self._muted = False
            before = self._persisted.get(entry.file_name, ())
            after = entry.snapshot()
            self._persisted[entry.file_name] = after
            for category in sorted(entry.categories() - set(self.classes.names) - {IGNORE}):
                self.classes.ensure(category)
            if self.status(entry.file_name) != "done":
                self._status[entry.file_name] = "in_review"
            self._submit(
                _image_job(entry.file_name, entry.image_size, entry.image_id, entry.extra, before, after, reviews)
            )

    # --- classes ---------------------------------------------------------------------------------
    def _on_classes_change(self, _classes: ClassList) -> None:
        categories = self.classes.categories
        self._persisted_classes = categories
        self._submit(lambda store: store.sync_classes(categories))

    def class_counts(self) -> dict[str, int]:
        """Instances per class, 0 for unused ones (committed state)."""
        self.flush()
        return self.store.class_counts()

    def unused_classes(self) -> list[str]:
        counts = self.class_counts()
        return [c.name for c in self.classes if counts.get(c.name, 0) == 0]

    def exported_classes(self) -> list[Category]:
        """The classes exports and training use: those with instances, and those the user keeps."""
        counts = self.class_counts()
        return [c for c in self.classes if counts.get(c.name, 0) > 0 or c.keep]

    def _rewrite_cached(self, change: Callable[[AnnotatedInstance], AnnotatedInstance | None]) -> None:
        """Apply a class change to the cached entries without writing them (the store did it)."""
        self._muted = True
        try:
            for name, entry in self._entries.items():
                new = []
                for inst in entry:
                    out = change(inst)
                    if out is not None:
                        new.append(out)
                if len(new) != len(entry) or any(a is not b for a, b in zip(new, entry, strict=True)):
                    entry.restore(new)
                    self._persisted[name] = entry.snapshot()
        finally:
            self._muted = False

    def add_class(self, name: str) -> ClassUndo:
        cat = self.classes.add(name)
        return ClassUndo("add", cat, len(self.classes) - 1)

    def rename_class(self, old: str, new: str) -> ClassUndo:
        """Rename a class (its COCO id stays); every instance follows."""
        before, index = self.classes.get(old), self.classes.index_of(old)
        if before is None:
            raise AnnotationError(f"unknown class {old!r}")
        with self.batch():
            self.classes.rename(old, new)
            self._rewrite_cached(lambda i: i.with_category(new) if i.category == old else i)
        return ClassUndo("rename", before, index, target=new)

    def merge_classes(self, source: str, target: str) -> ClassUndo:
        """Move every instance of ``source`` to ``target`` and remove ``source`` (target's id stays)."""
        if source == target:
            raise AnnotationError("choose two different classes to merge")
        before, index = self.classes.get(source), self.classes.index_of(source)
        if before is None or target not in self.classes:
            raise AnnotationError(f"unknown class {source if before is None else target!r}")
        self.flush()
        moved = self.store.move_class_instances(source, target)
        self.classes.remove(source)
        self.flush()
        self._rewrite_cached(lambda i: i.with_category(target) if i.category == source else i)
        return ClassUndo("merge", before, index, target=target, moved=tuple(moved))

    def delete_class(self, name: str, delete_instances: bool = False) -> ClassUndo:
        """Remove a class; refused while instances use it unless ``delete_instances``."""
        before, index = self.classes.get(name), self.classes.index_of(name)
        if before is None:
            raise AnnotationError(f"unknown class {name!r}")
        used = self.class_counts().get(name, 0)
        if used and not delete_instances:
            raise AnnotationError(
                f"class {name!r} is used by {used} instances; merge it into another class or delete them with it"
            )
        rows = tuple(self.store.take_class_instances(name)) if used else ()
        self.classes.remove(name)
        self.flush()
        self._rewrite_cached(lambda i: None if i.category == name else i)
        return ClassUndo("delete", before, index, rows=rows)

    # Kept for callers of the 0.1 API.
    remove_class = delete_class

    def update_class(self, name: str, **changes: Any) -> ClassUndo:
        """Recolour (``colour='#rrggbb'``), keep when unused (``keep=True``), or set the supercategory."""
        before, index = self.classes.get(name), self.classes.index_of(name)
        if before is None:
            raise AnnotationError(f"unknown class {name!r}")
        self.classes.update(name, **changes)
        return ClassUndo("update", before, index)

    def undo_class_operation(self, undo: ClassUndo) -> None:
        """Put the class list and the instances back as they were before the operation."""
        cat = undo.before
        if undo.kind == "add":
            self.classes.remove(cat.name)
        elif undo.kind == "rename":
            self.rename_class(undo.target, cat.name)
        elif undo.kind == "update":
            current = self.classes.get(cat.name)
            if current is not None:
                self.classes.update(cat.name, colour=cat.colour, keep=cat.keep, supercategory=cat.supercategory)
        elif undo.kind == "merge":
            self.classes.insert(undo.index, cat)
            self.flush()
            self.store.move_instances(undo.moved, cat.name)
            keys = set(undo.moved)
            self._drop_cached({n for n, _ in keys})
        elif undo.kind == "delete":
            self.classes.insert(undo.index, cat)
            self.flush()
            if undo.rows:
                self.store.put_back_instances(cat.name, undo.rows)
                self._drop_cached({r[0] for r in undo.rows})
        else:
            raise ValueError(f"unknown class operation {undo.kind!r}")

    def redo_class_operation(self, undo: ClassUndo) -> ClassUndo:
        """Do the operation ``undo`` undoes again; returns the new undo record."""
        name = undo.before.name
        if undo.kind == "add":
            self.classes.insert(undo.index, undo.before)
            return undo
        if undo.kind == "rename":
            return self.rename_class(name, undo.target)
        if undo.kind == "merge":
            return self.merge_classes(name, undo.target)
        if undo.kind == "delete":
            return self.delete_class(name, delete_instances=True)
        raise ValueError(f"cannot redo {undo.kind!r}")

    def _drop_cached(self, names: set[str]) -> None:
        """Forget cached entries so they are read again from the store."""
        for name in names:
            entry = self._entries.pop(name, None)
            if entry is not None:
                entry._listener = None
            self._persisted.pop(name, None)

    # --- prediction runs -------------------------------------------------------------------------
    def runs(self) -> list[RunRow]:
        self.flush()
        return self.store.runs()

    @property
    def active_run(self) -> int | None:
        """The run whose predictions are reviewed (the newest unless the user picked another)."""
        chosen = self.store.get_meta("active_run")
        runs = self.store.runs()
        ids = [r.id for r in runs]
        if chosen in ids:
            return int(chosen)
        return ids[-1] if ids else None

    def set_active_run(self, run_id: int) -> None:
        self.store.set_meta("active_run", int(run_id))

    def add_run(self, model: str, settings: dict, weights: str = "", weights_sha256: str = "") -> int:
        """Start a prediction run (committed at once: its id is needed by the results)."""
        self.flush()
        run_id = self.store.add_run(model, settings, weights, weights_sha256)
        self.store.set_meta("active_run", run_id)
        return run_id

    def add_predictions(self, run_id: int, name: str, prediction: Prediction) -> list[StoredPrediction]:
        """Store one image's predictions of ``run_id`` (what a worker computed) and cache them."""
        name = _norm_name(name)
        self.flush()
        self.store.add_predictions(run_id, name, prediction)
        if self.status(name) == "new":
            self._status[name] = "predicted"
        return self.predictions(name, run_id, refresh=True)

    def predictions(self, name: str, run_id: int | None = None, refresh: bool = False) -> list[StoredPrediction]:
        """An image's predictions of ``run_id`` (default: the active run), with review states."""
        name = _norm_name(name)
        run_id = self.active_run if run_id is None else run_id
        if run_id is None:
            return []
        key = (name, run_id)
        if refresh or key not in self._predictions:
            self._predictions[key] = self.store.predictions(name, run_id)
        return self._predictions[key]

    def _set_reviews_cached(self, reviews: Sequence[tuple[int, str]]) -> None:
        if not reviews:
            return
        states = dict(reviews)
        import dataclasses

        for key, preds in self._predictions.items():
            if any(p.id in states for p in preds):
                self._predictions[key] = [
                    dataclasses.replace(p, review=states[p.id]) if p.id in states else p for p in preds
                ]

    def set_reviews(self, reviews: Sequence[tuple[int, str]]) -> None:
        """Set review states ('pending', 'accepted', 'rejected') of stored predictions."""
        reviews = list(reviews)
        self._set_reviews_cached(reviews)
        self._submit(lambda store: store.set_reviews(reviews))

    def accept_predictions(self, name: str, predictions: Sequence[StoredPrediction]) -> list[AnnotatedInstance]:
        """Make annotations of stored predictions and mark them accepted (one transaction)."""
        entry = self.annotations(name)
        assert entry is not None
        run = self.store.run(predictions[0].run_id) if predictions else None
        names = run.class_names if run is not None else []
        after = list(entry.snapshot())
        added = []
        nxt = entry.next_id()
        for p in predictions:
            if not 0 <= p.label < len(names):
                raise AnnotationError(f"prediction {p.id}: label {p.label} is outside the run's {len(names)} classes")
            inst = AnnotatedInstance(
                nxt, names[p.label], p.mask(), score=p.score, source="prediction", prediction_id=p.id
            )
            nxt += 1
            added.append(inst)
        self.commit(name, tuple(after + added), [(p.id, "accepted") for p in predictions])
        return added

    # --- training runs ---------------------------------------------------------------------------
    def add_training_run(self, model: str, config: dict) -> int:
        self.flush()
        return self.store.add_training_run(model, config)

    def finish_training_run(self, run_id: int, status: str, metrics: dict, weights: str = "") -> None:
        self._submit(lambda store: store.finish_training_run(run_id, status, metrics, weights))

    # --- COCO out --------------------------------------------------------------------------------
    def to_coco(
        self,
        segmentation: str = "auto",
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> tuple[dict, ExportStats]:
        """The project as a COCO instances dict, streamed from the store."""
        from engine.store.export import build_coco_from_store

        self.flush()
        return build_coco_from_store(
            self.store, self.exported_classes(), segmentation, progress=progress, cancel=cancel
        )

    def serialize(self) -> str:
        return dumps(self.to_coco("auto")[0])

    def save(self, path: str | Path | None = None) -> Path:
        """Write the project as COCO (``annotations.json`` or ``path``, remembered), atomically."""
        if path is not None:
            self.store.set_meta("save_path", str(Path(path).absolute()))
        target = self.annotations_path
        self.flush()
        revision = self.store.revision
        _write(target, self.serialize())
        self.store.set_meta("saved_revision", revision)
        self._saved_revision = revision
        return target

    def export(
        self,
        path: str | Path,
        segmentation: str = "rle",
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> ExportStats:
        """Export a clean COCO file ('rle' or 'polygons')."""
        start = time.perf_counter()
        coco, stats = self.to_coco(segmentation, progress, cancel)
        _write(Path(path), dumps(coco))
        stats.seconds = time.perf_counter() - start
        stats.path = Path(path)
        return stats

    # --- COCO and labelme in ---------------------------------------------------------------------
    def plan_import(self, path: str | Path) -> ImportPlan:
        """Read and validate a COCO file, a labelme file or a folder of labelme files."""
        from engine.coco_io import looks_like_coco, plan_from_dataset, read_json
        from engine.labelme_io import looks_like_labelme, plan_labelme_import

        path = Path(path)
        if path.is_dir():
            own = {self.annotations_path, autosave_path_for(self.annotations_path)}
            return plan_labelme_import(path, self, skip=own)
        data = read_json(path)
        if looks_like_coco(data):
            from engine.coco_io import NOTHING_IMPORTED, parse_coco

            return plan_from_dataset(parse_coco(data, path, NOTHING_IMPORTED), self.resolve_image)
        if looks_like_labelme(data):
            return plan_labelme_import(path, self)
        raise AnnotationError(
            f"{path}: neither a COCO instances file (no 'images'/'annotations') nor a labelme file "
            "(no 'shapes'); nothing was imported."
        )

    def apply_import(self, plan: ImportPlan, replace: bool = False) -> ImportSummary:
        """Merge a validated plan in one transaction: classes by name, instances appended
        (or replacing, per image); instances identical to existing ones are skipped."""
        for img in plan.images:  # check everything before changing anything
            entry = self.annotations(img.file_name, create=False)
            if entry is not None and entry.image_size != img.image_size:
                raise AnnotationError(
                    f"{plan.source}: {img.file_name} is {img.width}x{img.height} there but "
                    f"{entry.width}x{entry.height} in the project; nothing was imported."
                )
        summary = ImportSummary(
            plan.source, plan.format, missing_images=list(plan.missing_images), warnings=list(plan.warnings),
            replaced=replace,
        )  # fmt: skip
        with self.batch():
            for cat in plan.categories:
                if cat.name not in self.classes and cat.name != IGNORE:
                    self.classes.ensure(cat.name, cat.id, cat.supercategory)
                    summary.new_classes.append(cat.name)
            for img in plan.images:
                for category in sorted(img.categories() - set(self.classes.names) - {IGNORE}):
                    self.classes.ensure(category)
                    summary.new_classes.append(category)
                entry = self.annotations(img.file_name, create=False)
                if entry is None:
                    entry = ImageAnnotations(
                        img.file_name, img.width, img.height, image_id=img.image_id, extra=img.extra
                    )
                    entry._listener = self._on_entry_change
                    self._entries[img.file_name] = entry
                    self._persisted[img.file_name] = ()
                kept: list[AnnotatedInstance] = [] if replace else list(entry)
                fresh = [i for i in img if not any(_same_instance(i, k) for k in kept)]
                summary.duplicates += len(img) - len(fresh)
                nxt = max((i.id for i in kept), default=0) + 1
                new = [inst.with_id(nxt + k) for k, inst in enumerate(fresh)]
                entry.restore(kept + new)
                summary.images += 1
                summary.instances += len(new)
        return summary

    def import_file(self, path: str | Path, replace: bool = False) -> ImportSummary:
        return self.apply_import(self.plan_import(path), replace)

    def _import_legacy(self) -> str | None:
        """First open of a folder: take in what MaskScope 0.1 or labelme left there."""
        if _is_bundled(self.folder):
            return None  # the samples' annotations.json is the demo's ground truth, not the user's work
        main = self.folder / ANNOTATIONS_NAME
        autosave = autosave_path_for(main)
        source = None
        # exists(), not is_file(): a FIFO or folder named annotations.json must get the strict reader's
        # "not a regular file", not be skipped in silence.
        if autosave.exists() and (not main.exists() or autosave.stat().st_mtime_ns >= main.stat().st_mtime_ns):
            source = autosave
        elif main.exists():
            source = main
        try:
            if source is not None:
                from engine.coco_io import load_coco

                dataset = load_coco(source, "; the project was not imported")
                plan = ImportPlan(source, "coco", categories=list(dataset.categories), images=dataset.images)
                for img in plan.images:
                    img.file_name = _norm_name(img.file_name)
                summary = self.apply_import(plan)
                if dataset.info is not None:
                    self.store.set_meta("coco_info", dataset.info)
                if dataset.licenses is not None:
                    self.store.set_meta("coco_licenses", dataset.licenses)
            elif any(_is_labelme(p) for p in sorted(self.folder.glob("*.json"))[:200]):
                summary = self.apply_import(self.plan_import(self.folder))
                source = self.folder
            else:
                return None
        except MaskScopeError:
            self.close()
            try:
                os.unlink(self.db_path)  # nothing imported: the next open tries again
            except OSError:
                pass
            raise
        self.flush()
        self.store.set_meta("imported_from", str(source))
        if source == main:
            self._saved_revision = self.store.revision
            self.store.set_meta("saved_revision", self._saved_revision)
        what = "labelme files" if source == self.folder else source.name
        # A read-only or bundled folder keeps its store in the data dir, outside the folder.
        where = self.db_path.relative_to(self.folder) if self.db_path.is_relative_to(self.folder) else self.db_path
        return (
            f"Imported {summary.instances} instances of {summary.images} images from {what} into the new project "
            f"store {where}; {source.name} was left as it is."
        )

    def __repr__(self) -> str:
        return f"Project({str(self.folder)!r})"


def _same_instance(a: AnnotatedInstance, b: AnnotatedInstance) -> bool:
    return a.category == b.category and a.iscrowd == b.iscrowd and masks_equal(a.mask, b.mask)


def _is_labelme(path: Path) -> bool:
    """Whether ``path`` is a labelme file (read through the strict reader; anything odd is not)."""
    from engine.jsonio import read_json_file

    try:
        data = read_json_file(path, max_bytes=50_000_000)
    except MaskScopeError:
        return False
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def _image_job(
    name: str,
    size: tuple[int, int],
    coco_id: int | None,
    extra: dict,
    before: Sequence[AnnotatedInstance],
    after: Sequence[AnnotatedInstance],
    reviews: Sequence[tuple[int, str]],
) -> Job:
    """The store job for one image edit: only what changed between two snapshots is written."""
    old = {i.id: i for i in before}
    changed = [(k, inst) for k, inst in enumerate(after) if old.get(inst.id) is not inst]
    new_ids = {i.id for i in after}
    removed = [i for i in old if i not in new_ids]
    # Positions of every instance of this image (cheap: one image, and only rows whose ord changes
    # are written), so that drawing order survives removals and re-insertions.
    order = [i.id for i in after]
    reviews = list(reviews)

    def job(store: ProjectStore) -> None:
        if coco_id is not None or extra:
            store.ensure_image(name, size, coco_id, extra)
        store.write_image(name, size, changed, removed, order, reviews)

    return job


def _raise_disk_full(exc: MaskScopeError, path: Path) -> None:
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        raise MaskScopeError(
            f"Disk full: could not write {path}. The previous file is unchanged; free some space and save again."
        ) from exc


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except MaskScopeError as exc:
        _raise_disk_full(exc, path)
        raise
