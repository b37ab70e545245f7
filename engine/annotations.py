"""The in-memory annotation model the GUI edits: instances, per-image annotations, the class list.

Design choices:
- ``AnnotatedInstance`` is immutable (a frozen dataclass whose mask bits are a read-only view).
  An edit makes a new instance (``with_mask``, ``with_category``...), so an undo stack can keep
  snapshots by reference: ``ImageAnnotations.snapshot()`` is a tuple of pointers, not of masks.
- An instance stores its class by *name* (``category``), not by index or COCO id, so that
  adding, removing or reordering classes never silently relabels instances. ``ClassList`` maps
  names to COCO category ids at export time.
- ``polygons`` is kept only while the mask is exactly their rasterisation (the user drew a
  polygon, or it was imported as one); any pixel edit drops it, so export never writes a polygon
  that disagrees with the mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.classes import category_ids_for
from engine.masks import CroppedMask

if TYPE_CHECKING:
    from engine.prediction import Instance, Prediction

SOURCES = ("manual", "prediction", "import")

# labelme's ``__ignore__`` label: an ignore (COCO crowd) region, never a class of the project.
IGNORE = "__ignore__"

PolygonTuple = tuple[float, ...]


def _frozen_mask(mask: CroppedMask) -> CroppedMask:
    """A tight copy-free view of ``mask`` whose bits cannot be written through this instance."""
    if not isinstance(mask, CroppedMask):
        raise TypeError(f"mask must be a CroppedMask, got {type(mask).__name__}")
    bits = np.asarray(mask.bits, dtype=bool)
    m = CroppedMask(int(mask.x0), int(mask.y0), bits, (int(mask.image_size[0]), int(mask.image_size[1])))
    if bits.size and not (bits[0].any() and bits[-1].any() and bits[:, 0].any() and bits[:, -1].any()):
        m = m.tight()  # store only the box of the set pixels: memory follows object area
    elif bits.size == 0:
        m = CroppedMask(0, 0, np.zeros((0, 0), bool), m.image_size)
    view = m.bits.view()
    view.flags.writeable = False
    return CroppedMask(m.x0, m.y0, view, m.image_size)


def masks_equal(a: CroppedMask, b: CroppedMask) -> bool:
    """Same image size and same set pixels, whatever the padding of the two patches."""
    if tuple(a.image_size) != tuple(b.image_size):
        return False
    ta, tb = a.tight(), b.tight()
    if ta.bits.size == 0 or tb.bits.size == 0:
        return ta.bits.size == tb.bits.size
    return ta.x0 == tb.x0 and ta.y0 == tb.y0 and np.array_equal(ta.bits, tb.bits)


@dataclass(frozen=True, eq=False)
class AnnotatedInstance:
    """One annotated object of one image. Immutable: edits return a new instance."""

    id: int  # unique within its image, >= 1
    category: str  # class name (see module doc)
    mask: CroppedMask
    polygons: tuple[PolygonTuple, ...] | None = None  # COCO polygons the mask was drawn from
    score: float | None = None  # for accepted predictions
    source: str = "manual"  # 'manual' | 'prediction' | 'import'
    iscrowd: bool = False
    prediction_id: int | None = None  # the stored prediction it was accepted from (provenance)

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, (int, np.integer)) or self.id < 1:
            raise ValueError(f"instance id must be an int >= 1, got {self.id!r}")
        if not isinstance(self.category, str) or not self.category.strip():
            raise ValueError(f"instance category must be a non-empty class name, got {self.category!r}")
        if self.source not in SOURCES:
            raise ValueError(f"instance source must be one of {SOURCES}, got {self.source!r}")
        object.__setattr__(self, "id", int(self.id))
        object.__setattr__(self, "mask", _frozen_mask(self.mask))
        if self.polygons is not None:
            polys = tuple(tuple(float(v) for v in p) for p in self.polygons)
            object.__setattr__(self, "polygons", polys or None)
        if self.score is not None:
            object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "iscrowd", bool(self.iscrowd))

    # --- derived --------------------------------------------------------------------------
    @property
    def area(self) -> int:
        return self.mask.area

    @property
    def image_size(self) -> tuple[int, int]:
        return self.mask.image_size

    def bbox_xywh(self) -> list[float]:
        """COCO [x, y, w, h] of the set pixels."""
        m = self.mask
        h, w = m.bits.shape
        if h == 0:
            return [0.0, 0.0, 0.0, 0.0]
        return [float(m.x0), float(m.y0), float(w), float(h)]

    def box_xyxy(self) -> np.ndarray:
        """float32 (4,) x1, y1, x2, y2 box of the set pixels (as ``Instance.box``)."""
        x, y, w, h = self.bbox_xywh()
        return np.array([x, y, x + w, y + h], dtype=np.float32)

    @property
    def is_empty(self) -> bool:
        return self.mask.bits.size == 0

    # --- edits (each returns a new instance) -----------------------------------------------
    def with_mask(self, mask: CroppedMask) -> AnnotatedInstance:
        """A pixel edit: the polygons no longer describe the mask, so they are dropped."""
        return dataclasses.replace(self, mask=mask, polygons=None)

    def with_polygons(self, polygons: Sequence[Sequence[float]]) -> AnnotatedInstance:
        """Replace the shape by polygons (the mask becomes their COCO rasterisation)."""
        from engine.polygons import polygons_to_mask

        mask = polygons_to_mask(polygons, self.image_size)
        return dataclasses.replace(self, mask=mask, polygons=tuple(map(tuple, polygons)))

    def with_category(self, category: str) -> AnnotatedInstance:
        return dataclasses.replace(self, category=category)

    def with_id(self, instance_id: int) -> AnnotatedInstance:
        return dataclasses.replace(self, id=instance_id)

    # --- constructors ----------------------------------------------------------------------
    @staticmethod
    def from_polygons(
        instance_id: int,
        category: str,
        polygons: Sequence[Sequence[float]],
        image_size: tuple[int, int],
        source: str = "manual",
        score: float | None = None,
        iscrowd: bool = False,
    ) -> AnnotatedInstance:
        from engine.polygons import polygons_to_mask

        mask = polygons_to_mask(polygons, image_size)
        return AnnotatedInstance(instance_id, category, mask, tuple(map(tuple, polygons)), score, source, iscrowd)

    # --- comparison ------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AnnotatedInstance):
            return NotImplemented
        return (
            self.id == other.id
            and self.category == other.category
            and self.polygons == other.polygons
            and self.score == other.score
            and self.source == other.source
            and self.iscrowd == other.iscrowd
            and masks_equal(self.mask, other.mask)
        )

    __hash__ = None  # type: ignore[assignment]  # equality compares masks; not hashable


class ImageAnnotations:
    """The instances of one image. Mutable container of immutable instances.

    ``file_name`` is relative to the project folder (posix separators). Every change bumps
    ``revision`` and calls the listener a ``Project`` installs, which is how it tracks dirtiness.
    """

    def __init__(
        self,
        file_name: str,
        width: int,
        height: int,
        instances: Iterable[AnnotatedInstance] = (),
        image_id: int | None = None,
        extra: dict | None = None,
    ) -> None:
        if int(width) < 1 or int(height) < 1:
            raise ValueError(f"image size must be positive, got {width}x{height} for {file_name}")
        self.file_name = str(file_name)
        self.width = int(width)
        self.height = int(height)
        self.image_id = image_id  # COCO image id when loaded from / saved to a file
        self.extra = dict(extra or {})  # other COCO image fields (license, coco_url...), kept on export
        self.revision = 0
        self._listener: Callable[[ImageAnnotations], None] | None = None
        self._instances: list[AnnotatedInstance] = []
        for inst in instances:
            self._check(inst)
            self._instances.append(inst)

    # --- read ------------------------------------------------------------------------------
    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width), as ``CroppedMask.image_size``."""
        return (self.height, self.width)

    @property
    def instances(self) -> tuple[AnnotatedInstance, ...]:
        return tuple(self._instances)

    def __len__(self) -> int:
        return len(self._instances)

    def __iter__(self) -> Iterator[AnnotatedInstance]:
        return iter(tuple(self._instances))

    def ids(self) -> list[int]:
        return [inst.id for inst in self._instances]

    def find(self, instance_id: int) -> AnnotatedInstance | None:
        for inst in self._instances:
            if inst.id == instance_id:
                return inst
        return None

    def index_of(self, instance_id: int) -> int:
        for i, inst in enumerate(self._instances):
            if inst.id == instance_id:
                return i
        raise KeyError(f"no instance with id {instance_id} in {self.file_name}")

    def next_id(self) -> int:
        return max((inst.id for inst in self._instances), default=0) + 1

    def categories(self) -> set[str]:
        return {inst.category for inst in self._instances}

    # --- edit ------------------------------------------------------------------------------
    def add(self, inst: AnnotatedInstance, index: int | None = None) -> AnnotatedInstance:
        """Append ``inst`` (or insert it at ``index``, e.g. to undo a removal)."""
        self._check(inst)
        if self.find(inst.id) is not None:
            raise ValueError(f"instance id {inst.id} already exists in {self.file_name}")
        if index is None:
            self._instances.append(inst)
        else:
            self._instances.insert(index, inst)
        self._changed()
        return inst

    def add_new(
        self,
        category: str,
        mask: CroppedMask,
        polygons: Sequence[Sequence[float]] | None = None,
        score: float | None = None,
        source: str = "manual",
        iscrowd: bool = False,
    ) -> AnnotatedInstance:
        """Create an instance with the next free id and add it."""
        polys = None if polygons is None else tuple(map(tuple, polygons))
        return self.add(AnnotatedInstance(self.next_id(), category, mask, polys, score, source, iscrowd))

    def remove(self, instance_id: int) -> AnnotatedInstance:
        inst = self._instances.pop(self.index_of(instance_id))
        self._changed()
        return inst

    def replace(self, inst: AnnotatedInstance) -> AnnotatedInstance:
        """Put ``inst`` in place of the instance with the same id; returns the old one."""
        self._check(inst)
        i = self.index_of(inst.id)
        old = self._instances[i]
        self._instances[i] = inst
        self._changed()
        return old

    def clear(self) -> None:
        if self._instances:
            self._instances.clear()
            self._changed()

    def snapshot(self) -> tuple[AnnotatedInstance, ...]:
        """The current instances; cheap (instances are immutable), for undo."""
        return tuple(self._instances)

    def restore(self, snapshot: Iterable[AnnotatedInstance]) -> None:
        items = list(snapshot)
        seen: set[int] = set()
        for inst in items:
            self._check(inst)
            if inst.id in seen:
                raise ValueError(f"duplicate instance id {inst.id} for {self.file_name}")
            seen.add(inst.id)
        self._instances = items
        self._changed()

    def copy(self) -> ImageAnnotations:
        """An independent container with the same (shared, immutable) instances; no listener."""
        return ImageAnnotations(self.file_name, self.width, self.height, self._instances, self.image_id, self.extra)

    def same_content(self, other: ImageAnnotations) -> bool:
        return (
            self.file_name == other.file_name
            and self.image_size == other.image_size
            and len(self) == len(other)
            and all(a == b for a, b in zip(self._instances, other._instances, strict=True))
        )

    # --- internals -------------------------------------------------------------------------
    def _check(self, inst: AnnotatedInstance) -> None:
        if not isinstance(inst, AnnotatedInstance):
            raise TypeError(f"expected an AnnotatedInstance, got {type(inst).__name__}")
        if tuple(inst.mask.image_size) != self.image_size:
            raise ValueError(
                f"instance {inst.id} has a mask for a {inst.mask.image_size[1]}x{inst.mask.image_size[0]} "
                f"image, but {self.file_name} is {self.width}x{self.height}"
            )

    def _changed(self) -> None:
        self.revision += 1
        if self._listener is not None:
            self._listener(self)

    def __repr__(self) -> str:
        return f"ImageAnnotations({self.file_name!r}, {self.width}x{self.height}, {len(self)} instances)"


@dataclass(frozen=True)
class Category:
    """A class: its name, its COCO category id and optional supercategory."""

    name: str
    id: int
    supercategory: str = ""
    colour: str = ""  # '#rrggbb' chosen by the user; '' = the palette's colour
    keep: bool = False  # keep in exports and training even while no instance uses it


class ClassList:
    """Ordered class names with their COCO category ids (kept when imported, else assigned)."""

    def __init__(self, categories: Iterable[Category | str] = ()) -> None:
        self._items: list[Category] = []
        self.revision = 0
        self._listener: Callable[[ClassList], None] | None = None
        for c in categories:
            if isinstance(c, str):
                self.add(c)
            else:
                self.add(c.name, c.id, c.supercategory)
                if c.colour or c.keep:
                    self._items[-1] = c
        self.revision = 0

    @staticmethod
    def from_names(names: Sequence[str]) -> ClassList:
        """Names with COCO's ids when they are COCO's 80 classes, else ids 1..N."""
        return ClassList(Category(n, i) for n, i in zip(names, category_ids_for(list(names)), strict=True))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._items]

    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Category]:
        return iter(tuple(self._items))

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self._items)

    def get(self, name: str) -> Category | None:
        for c in self._items:
            if c.name == name:
                return c
        return None

    def id_of(self, name: str) -> int:
        c = self.get(name)
        if c is None:
            raise KeyError(f"unknown class {name!r}")
        return c.id

    def index_of(self, name: str) -> int:
        for i, c in enumerate(self._items):
            if c.name == name:
                return i
        raise KeyError(f"unknown class {name!r}")

    def by_id(self, category_id: int) -> Category | None:
        for c in self._items:
            if c.id == category_id:
                return c
        return None

    def add(self, name: str, category_id: int | None = None, supercategory: str = "") -> Category:
        """Add a class; ``category_id`` None (or taken... see ``ensure``) picks the next free id."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"class name must be a non-empty string, got {name!r}")
        if name in self:
            raise ValueError(f"class {name!r} already exists")
        if category_id is None:
            category_id = max((c.id for c in self._items), default=0) + 1
        taken = self.by_id(category_id)
        if taken is not None:
            raise ValueError(f"category id {category_id} is already used by {taken.name!r}")
        cat = Category(name, int(category_id), supercategory or "")
        self._items.append(cat)
        self._changed()
        return cat

    def ensure(self, name: str, category_id: int | None = None, supercategory: str = "") -> Category:
        """The class ``name``, added when missing (with ``category_id`` when still free)."""
        existing = self.get(name)
        if existing is not None:
            return existing
        if category_id is not None and self.by_id(category_id) is not None:
            category_id = None
        return self.add(name, category_id, supercategory)

    def rename(self, old: str, new: str) -> None:
        """Rename a class (its id stays). Instances are renamed by ``Project.rename_class``."""
        i = self.index_of(old)
        if new != old and new in self:
            raise ValueError(f"class {new!r} already exists")
        if not isinstance(new, str) or not new.strip():
            raise ValueError(f"class name must be a non-empty string, got {new!r}")
        self._items[i] = dataclasses.replace(self._items[i], name=new)
        self._changed()

    def remove(self, name: str) -> Category:
        cat = self._items.pop(self.index_of(name))
        self._changed()
        return cat

    def update(self, name: str, **changes: object) -> Category:
        """Change a class's colour, keep flag or supercategory (its name and id stay)."""
        i = self.index_of(name)
        self._items[i] = dataclasses.replace(self._items[i], **changes)  # type: ignore[arg-type]
        self._changed()
        return self._items[i]

    def insert(self, index: int, cat: Category) -> Category:
        """Put a removed class back where it was (undo)."""
        if cat.name in self or self.by_id(cat.id) is not None:
            raise ValueError(f"class {cat.name!r} (id {cat.id}) already exists")
        self._items.insert(min(max(index, 0), len(self._items)), cat)
        self._changed()
        return cat

    def copy(self) -> ClassList:
        return ClassList(self._items)

    def _changed(self) -> None:
        self.revision += 1
        if self._listener is not None:
            self._listener(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassList):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ClassList({[(c.name, c.id) for c in self._items]})"


# --- predictions -> annotations ----------------------------------------------------------------
def instance_from_prediction(inst: Instance, class_names: Sequence[str], instance_id: int) -> AnnotatedInstance:
    """An annotation made from one predicted instance (class by name, score kept)."""
    if not 0 <= inst.label < len(class_names):
        raise ValueError(f"prediction label {inst.label} is outside the {len(class_names)} class names")
    return AnnotatedInstance(
        instance_id, class_names[inst.label], inst.mask, score=float(inst.score), source="prediction"
    )


def accept_prediction(
    ann: ImageAnnotations, prediction: Prediction, index: int, classes: ClassList | None = None
) -> AnnotatedInstance:
    """Add prediction ``index`` to ``ann`` (adding its class to ``classes`` when missing)."""
    _check_prediction(ann, prediction)
    inst = instance_from_prediction(prediction.instances[index], prediction.class_names, ann.next_id())
    if classes is not None:
        classes.ensure(inst.category)
    return ann.add(inst)


def accept_predictions(
    ann: ImageAnnotations, prediction: Prediction, threshold: float = 0.5, classes: ClassList | None = None
) -> list[AnnotatedInstance]:
    """Add every predicted instance with score >= ``threshold`` and a non-empty mask."""
    _check_prediction(ann, prediction)
    added = []
    for i, inst in enumerate(prediction.instances):
        if inst.score >= threshold and inst.mask.bits.any():
            added.append(accept_prediction(ann, prediction, i, classes))
    return added


def _check_prediction(ann: ImageAnnotations, prediction: Prediction) -> None:
    if tuple(prediction.image_size) != ann.image_size:
        raise ValueError(
            f"prediction is for a {prediction.image_size[1]}x{prediction.image_size[0]} image, "
            f"{ann.file_name} is {ann.width}x{ann.height}"
        )


# --- imports -----------------------------------------------------------------------------------
@dataclass
class ImportPlan:
    """Annotations read and fully validated from a COCO or labelme file, not applied yet.

    ``images`` use the *project's* file names and sizes; instance ids are provisional (the
    project renumbers them when it merges). ``Project.apply_import`` applies a plan; building
    one touches nothing, so a bad file can never leave a project half-imported.
    """

    source: Path
    format: str  # 'coco' | 'labelme'
    categories: list[Category] = field(default_factory=list)
    images: list[ImageAnnotations] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)  # referenced, not found in the project
    warnings: list[str] = field(default_factory=list)

    @property
    def instance_count(self) -> int:
        return sum(len(a) for a in self.images)
