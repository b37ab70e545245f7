"""A project: a folder of images plus one COCO instances JSON holding their annotations.

- ``Project.open(folder_or_json)`` loads ``<folder>/annotations.json`` (or the given file) when it
  exists; a missing file is a new, empty project.
- Per-image annotations: ``annotations(name)`` (created on demand with the image's size),
  ``set_annotations(ann)``. Every edit of an ``ImageAnnotations`` or of ``classes`` marks the project
  dirty (the containers notify the project).
- ``save()`` writes the file atomically (temp file, fsync, rename: engine.fileio): a crash, a
  kill -9 or a full disk leaves the previous file or the new one, never a torn one. A full disk
  raises a MaskScopeError that says so; the previous file is untouched.
- Crash recovery: ``autosave()`` (call it after edits, e.g. from a GUI timer) writes
  ``<annotations stem>.autosave.json`` atomically when there are unsaved edits; ``save()`` deletes
  it. On start, ``has_newer_autosave()`` tells whether a previous session ended without saving;
  ``restore_autosave()`` loads it (the project is then dirty), ``discard_autosave()`` drops it.

Which images the file lists: every image that was in the loaded file, was imported, or was
edited (even if it ended up with no instances: "reviewed, nothing here" is information); images
only looked at are not written.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from engine.annotations import AnnotatedInstance, ClassList, ImageAnnotations, ImportPlan
from engine.coco_io import ExportStats, build_coco, dumps, export_coco, load_coco
from engine.errors import AnnotationError, ImageLoadError, MaskScopeError
from engine.fileio import atomic_write_text, remove_stale_temp_files

ANNOTATIONS_NAME = "annotations.json"
AUTOSAVE_KEY = "maskscope_autosave"


def autosave_path_for(annotations_path: str | Path) -> Path:
    """``annotations.json`` -> ``annotations.autosave.json`` (same folder)."""
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
    new_classes: list[str] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    replaced: bool = False

    def summary(self) -> str:
        verb = "replaced annotations of" if self.replaced else "added to"
        lines = [f"imported {self.instances} instances ({verb} {self.images} images) from {self.source}"]
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


class Project:
    """A folder of images and their annotations (one COCO instances JSON)."""

    def __init__(self, folder: str | Path, annotations_path: str | Path | None = None, recursive: bool = False) -> None:
        self.folder = Path(folder).absolute()
        self.annotations_path = (
            Path(annotations_path).absolute() if annotations_path else self.folder / ANNOTATIONS_NAME
        )
        self.recursive = recursive
        self.classes = ClassList()
        self.classes._listener = self._on_change
        self.info: dict | None = None
        self.licenses: list | None = None
        self._entries: dict[str, ImageAnnotations] = {}
        self._persist: set[str] = set()
        self._sizes: dict[str, tuple[int, int]] = {}
        self._listing: list[str] | None = None
        self._deep_listing: list[str] | None = None
        self._rev = 0
        self._saved_rev = 0
        self._autosaved_rev = 0

    # --- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        annotations_path: str | Path | None = None,
        use_autosave: bool = False,
        recursive: bool = False,
    ) -> Project:
        """Open a project from its folder or its annotations JSON (which need not exist yet).

        ``use_autosave``: load the autosave file instead of the annotations file (crash recovery
        when the main file cannot be read); the project is then dirty.
        """
        path = Path(path)
        if path.is_dir():
            folder = path
        elif path.suffix.lower() == ".json" and (path.is_file() or path.parent.is_dir()):
            folder, annotations_path = path.parent, annotations_path or path
        else:
            raise AnnotationError(f"{path}: no such project folder or annotations file.")
        project = cls(folder, annotations_path, recursive)
        remove_stale_temp_files(project.annotations_path.parent)  # left by a save that was killed
        source = project.autosave_path if use_autosave else project.annotations_path
        if use_autosave and not source.exists():
            raise AnnotationError(f"{source}: there is no autosave to restore.")
        if source.exists():
            project._load(source)
        if use_autosave:
            project._rev += 1
        return project

    @property
    def autosave_path(self) -> Path:
        return autosave_path_for(self.annotations_path)

    def _load(self, path: Path) -> None:
        dataset = load_coco(path, "; the project was not opened")
        classes = ClassList(dataset.categories)
        classes._listener = self._on_change
        entries: dict[str, ImageAnnotations] = {}
        for img in dataset.images:
            name = _norm_name(img.file_name)
            img.file_name = name
            img._listener = self._on_entry_change
            entries[name] = img
        self.classes = classes
        self._entries = entries
        self._persist = set(entries)
        self.info = dataset.info
        self.licenses = dataset.licenses
        self._listing = None

    # --- images ----------------------------------------------------------------------------
    def image_path(self, name: str) -> Path:
        return self.folder / name

    def image_names(self, refresh: bool = False) -> list[str]:
        """Images in the folder (relative posix names), then annotated ones not found there."""
        if refresh:
            self._deep_listing = None
        if self._listing is None or refresh:
            try:
                from engine.imageio import list_images

                found = list_images(self.folder, recursive=self.recursive)
            except ImageLoadError:
                found = []
            self._listing = [p.relative_to(self.folder).as_posix() for p in found]
        listed = set(self._listing)
        return self._listing + [n for n in self._entries if n not in listed]

    def _all_image_names(self) -> list[str]:
        """Every image under the folder, subfolders included (for matching imported file names)."""
        if self._deep_listing is None:
            try:
                from engine.imageio import list_images

                found = list_images(self.folder, recursive=True)
            except ImageLoadError:
                found = []
            self._deep_listing = [p.relative_to(self.folder).as_posix() for p in found]
        deep = set(self._deep_listing)
        return self._deep_listing + [n for n in self._entries if n not in deep]

    def image_size(self, name: str) -> tuple[int, int]:
        """(height, width) of an image as displayed (EXIF orientation applied), from its header."""
        name = _norm_name(name)
        if name not in self._sizes:
            path = self.image_path(name)
            if path.is_file():
                from engine.imageio import read_image_size

                w, h = read_image_size(path)
                self._sizes[name] = (h, w)
            elif name in self._entries:
                return self._entries[name].image_size
            else:
                raise ImageLoadError(f"Cannot read image '{path}': the file does not exist.")
        return self._sizes[name]

    def resolve_image(self, ref: str, base: Path | None = None) -> tuple[str, tuple[int, int]] | None:
        """Find the project image an annotation file refers to, and its actual size.

        Tries, in order: an absolute (or ``base``-relative) path inside the project folder; the
        name relative to the project folder; a unique file with the same base name. None when
        the project has no such image.
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
            if rel is not None and (candidate.is_file() or rel in self._entries):
                return rel, self.image_size(rel)
        name = _norm_name(ref_norm)
        if not Path(ref_norm).is_absolute() and not name.startswith("../"):
            if name in self._entries or (self.folder / name).is_file():
                return name, self.image_size(name)
        base_name = PurePosixPath(ref_norm).name
        matches = [n for n in self._all_image_names() if PurePosixPath(n).name == base_name]
        if len(matches) == 1:
            return matches[0], self.image_size(matches[0])
        return None

    # --- annotations -----------------------------------------------------------------------
    def annotations(self, name: str, create: bool = True) -> ImageAnnotations | None:
        """The annotations of image ``name``; created empty (with the image's size) when missing."""
        name = _norm_name(name)
        entry = self._entries.get(name)
        if entry is None and create:
            h, w = self.image_size(name)
            entry = ImageAnnotations(name, w, h)
            entry._listener = self._on_entry_change
            self._entries[name] = entry
        return entry

    def has_annotations(self, name: str) -> bool:
        entry = self._entries.get(_norm_name(name))
        return entry is not None and len(entry) > 0

    def set_annotations(self, ann: ImageAnnotations) -> None:
        """Put ``ann`` in place of the image's annotations (adds its classes when missing)."""
        name = _norm_name(ann.file_name)
        ann.file_name = name
        old = self._entries.get(name)
        if old is not None and old is not ann:
            old._listener = None
            if ann.image_id is None:
                ann.image_id = old.image_id
        ann._listener = self._on_entry_change
        self._entries[name] = ann
        self._persist.add(name)
        self._on_entry_change(ann)

    def annotated_images(self) -> list[ImageAnnotations]:
        """The entries the project file holds (see module doc), in file order."""
        return [e for n, e in self._entries.items() if len(e) or e.revision > 0 or n in self._persist]

    def instance_count(self) -> int:
        return sum(len(e) for e in self._entries.values())

    # --- classes ---------------------------------------------------------------------------
    def rename_class(self, old: str, new: str) -> None:
        """Rename a class and every instance of it."""
        self.classes.rename(old, new)
        for entry in self._entries.values():
            if old in entry.categories():
                entry.restore([i.with_category(new) if i.category == old else i for i in entry])

    def remove_class(self, name: str, delete_instances: bool = False) -> int:
        """Remove a class; refuses while instances use it unless ``delete_instances``."""
        used = sum(1 for e in self._entries.values() for i in e if i.category == name)
        if used and not delete_instances:
            raise AnnotationError(f"class {name!r} is used by {used} instances; delete them or rename the class")
        self.classes.remove(name)
        for entry in self._entries.values():
            if name in entry.categories():
                entry.restore([i for i in entry if i.category != name])
        return used

    # --- dirty tracking --------------------------------------------------------------------
    def _on_change(self, _source: Any = None) -> None:
        self._rev += 1

    def _on_entry_change(self, entry: ImageAnnotations) -> None:
        # A class name used by an instance joins the class list at once (the GUI shows it).
        for category in sorted(entry.categories() - set(self.classes.names)):
            self.classes.ensure(category)
        self._rev += 1

    @property
    def is_dirty(self) -> bool:
        return self._rev != self._saved_rev

    def mark_dirty(self) -> None:
        self._rev += 1

    # --- saving ----------------------------------------------------------------------------
    def _sync_classes(self) -> None:
        for entry in self._entries.values():
            for category in sorted(entry.categories() - set(self.classes.names)):
                self.classes.ensure(category)

    def to_coco(self, segmentation: str = "auto") -> tuple[dict, ExportStats]:
        self._sync_classes()
        images = self.annotated_images()
        coco, stats = build_coco(images, self.classes, segmentation, info=self.info, licenses=self.licenses)
        for img, entry in zip(images, coco["images"], strict=True):
            img.image_id = entry["id"]  # keep ids stable from now on
        return coco, stats

    def serialize(self) -> str:
        """The project file's text (what ``save()`` writes)."""
        return dumps(self.to_coco("auto")[0])

    def save(self, path: str | Path | None = None) -> Path:
        """Write the annotations file atomically (``path``: save as); deletes the autosave."""
        if path is not None:
            self.annotations_path = Path(path).absolute()
        text = self.serialize()
        _write(self.annotations_path, text)
        self._saved_rev = self._autosaved_rev = self._rev
        self.discard_autosave()
        return self.annotations_path

    def export(
        self,
        path: str | Path,
        segmentation: str = "rle",
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> ExportStats:
        """Export a clean COCO file ('rle' or 'polygons'; see engine.coco_io)."""
        self._sync_classes()
        try:
            return export_coco(
                path,
                self.annotated_images(),
                self.classes,
                segmentation,
                info=self.info,
                licenses=self.licenses,
                progress=progress,
                cancel=cancel,
            )
        except MaskScopeError as exc:
            _raise_disk_full(exc, Path(path))
            raise

    # --- autosave --------------------------------------------------------------------------
    def autosave(self) -> bool:
        """Write the autosave file if there are edits since the last save/autosave; True if written."""
        if not self.is_dirty or self._rev == self._autosaved_rev:
            return False
        coco, _ = self.to_coco("auto")
        rev = self._rev  # after to_coco, which may add missing classes
        coco[AUTOSAVE_KEY] = {"of": self.annotations_path.name, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        _write(self.autosave_path, dumps(coco))
        self._autosaved_rev = rev
        return True

    def has_newer_autosave(self) -> bool:
        """True when an autosave exists that is newer than the annotations file (unsaved work)."""
        try:
            auto = self.autosave_path.stat().st_mtime_ns
        except OSError:
            return False
        try:
            main = self.annotations_path.stat().st_mtime_ns
        except OSError:
            return True
        return auto >= main

    def restore_autosave(self) -> None:
        """Replace the in-memory state with the autosave's; the project is dirty until saved."""
        if not self.autosave_path.exists():
            raise AnnotationError(f"{self.autosave_path}: there is no autosave to restore.")
        self._load(self.autosave_path)
        self._rev += 1
        self._autosaved_rev = self._rev

    def discard_autosave(self) -> None:
        try:
            os.unlink(self.autosave_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MaskScopeError(f"Could not delete the autosave {self.autosave_path}: {exc.strerror}") from exc

    # --- import ----------------------------------------------------------------------------
    def plan_import(self, path: str | Path) -> ImportPlan:
        """Read and validate a COCO file, a labelme file or a folder of labelme files."""
        from engine.coco_io import looks_like_coco, plan_from_dataset, read_json
        from engine.labelme_io import looks_like_labelme, plan_labelme_import

        path = Path(path)
        if path.absolute() in (self.annotations_path, self.autosave_path):
            raise AnnotationError(f"{path} is this project's own annotations file; nothing was imported.")
        if path.is_dir():
            return plan_labelme_import(path, self, skip={self.annotations_path, self.autosave_path})
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
        """Merge a validated plan: classes by name, instances appended (or replacing, per image)."""
        for img in plan.images:  # check everything before changing anything
            entry = self._entries.get(img.file_name)
            if entry is not None and entry.image_size != img.image_size:
                raise AnnotationError(
                    f"{plan.source}: {img.file_name} is {img.width}x{img.height} there but "
                    f"{entry.width}x{entry.height} in the project; nothing was imported."
                )
        summary = ImportSummary(
            plan.source,
            plan.format,
            missing_images=list(plan.missing_images),
            warnings=list(plan.warnings),
            replaced=replace,
        )
        for cat in plan.categories:
            if cat.name not in self.classes:
                self.classes.ensure(cat.name, cat.id, cat.supercategory)
                summary.new_classes.append(cat.name)
        for img in plan.images:
            for category in sorted(img.categories() - set(self.classes.names)):
                self.classes.ensure(category)
                summary.new_classes.append(category)
            entry = self._entries.get(img.file_name)
            if entry is None:
                entry = ImageAnnotations(img.file_name, img.width, img.height, extra=img.extra)
                entry._listener = self._on_entry_change
                self._entries[img.file_name] = entry
            kept: list[AnnotatedInstance] = [] if replace else list(entry)
            nxt = max((i.id for i in kept), default=0) + 1
            new = [inst.with_id(nxt + k) for k, inst in enumerate(img)]
            entry.restore(kept + new)
            self._persist.add(img.file_name)
            summary.images += 1
            summary.instances += len(new)
        return summary

    def import_file(self, path: str | Path, replace: bool = False) -> ImportSummary:
        """``plan_import`` then ``apply_import`` (not saved: call ``save()``)."""
        return self.apply_import(self.plan_import(path), replace)

    def __repr__(self) -> str:
        return f"Project({str(self.folder)!r}, {len(self._entries)} images, {self.instance_count()} instances)"


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
