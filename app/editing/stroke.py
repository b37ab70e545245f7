"""One brush or eraser stroke (press .. release) on an image's instances, in numpy (no Qt).

The stroke edits working copies (``GrowableMask``) of the instances it touches and reports the
dirty rectangle of every segment; ``result()`` gives the instance tuple after the stroke, which
becomes one undo step. Rules:
- brush: paints the target instance (a new instance when none is selected); with
  ``erase_others`` it also takes the painted pixels away from every other instance;
- eraser: clears the target instance, or every instance when none is selected;
- an instance erased to nothing is removed; a new instance left empty is not added.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.editing.mask_ops import GrowableMask, Rect, mask_rect, rect_intersection, segment_bounds, segment_footprint
from engine.annotations import AnnotatedInstance
from engine.masks import CroppedMask

Point = tuple[float, float]


class Stroke:
    def __init__(
        self,
        instances: Sequence[AnnotatedInstance],
        image_size: tuple[int, int],
        mode: str,
        radius: float,
        target_id: int | None = None,
        new_instance: AnnotatedInstance | None = None,
        erase_others: bool = False,
    ) -> None:
        if mode not in ("brush", "eraser"):
            raise ValueError(f"mode must be 'brush' or 'eraser', got {mode!r}")
        self.before = tuple(instances)
        self.image_size = image_size
        self.mode = mode
        self.radius = float(radius)
        self.erase_others = erase_others
        self.new_instance = new_instance  # brush with nothing selected: the instance it creates
        self.target_id = new_instance.id if new_instance is not None else target_id
        self._by_id = {inst.id: inst for inst in self.before}
        self.working: dict[int, GrowableMask] = {}
        if new_instance is not None:
            self.working[new_instance.id] = GrowableMask(new_instance.mask)
        elif target_id is not None and target_id in self._by_id:
            self.working[target_id] = GrowableMask(self._by_id[target_id].mask)
        self.last: Point | None = None
        self.dirty: Rect | None = None

    # --- segments ----------------------------------------------------------------------------
    def press(self, p: Point) -> Rect | None:
        self.last = p
        return self._segment(p, p)

    def move(self, p: Point) -> Rect | None:
        p0 = self.last if self.last is not None else p
        self.last = p
        return self._segment(p0, p)

    def _segment(self, p0: Point, p1: Point) -> Rect | None:
        rect = segment_bounds(p0, p1, self.radius, self.image_size)
        if rect is None:
            return None
        footprint = segment_footprint(p0, p1, self.radius, rect)
        if self.mode == "brush":
            if self.target_id is not None and self.target_id in self.working:
                self.working[self.target_id].paint(rect, footprint)
            if self.erase_others:
                self._erase_from(rect, footprint, exclude=self.target_id)
        elif self.target_id is not None:
            if self.target_id in self.working:
                self.working[self.target_id].erase(rect, footprint)
        else:
            self._erase_from(rect, footprint, exclude=None)
        self.dirty = rect if self.dirty is None else _union(self.dirty, rect)
        return rect

    def _erase_from(self, rect: Rect, footprint, exclude: int | None) -> None:
        for inst in self.before:
            if inst.id == exclude:
                continue
            work = self.working.get(inst.id)
            if work is None:
                if rect_intersection(mask_rect(inst.mask), rect) is None:
                    continue
                work = GrowableMask(inst.mask)
                self.working[inst.id] = work
            work.erase(rect, footprint)

    # --- results -------------------------------------------------------------------------------
    def display_masks(self) -> dict[int, CroppedMask]:
        """The working masks to show instead of the instances' own while the stroke runs."""
        return {inst_id: work.as_cropped() for inst_id, work in self.working.items()}

    def result(self) -> tuple[AnnotatedInstance, ...]:
        """The instances after the stroke (the same objects where nothing changed)."""
        out: list[AnnotatedInstance] = []
        for inst in self.before:
            work = self.working.get(inst.id)
            if work is None or not work.changed:
                out.append(inst)
                continue
            mask = work.to_cropped()
            if mask.bits.size == 0:
                continue  # erased to nothing: the instance goes (undo brings it back)
            out.append(inst.with_mask(mask))
        if self.new_instance is not None:
            mask = self.working[self.new_instance.id].to_cropped()
            if mask.bits.size:
                out.append(self.new_instance.with_mask(mask))
        return tuple(out)

    def changed(self, result: Sequence[AnnotatedInstance]) -> bool:
        return len(result) != len(self.before) or any(a is not b for a, b in zip(result, self.before, strict=True))


def _union(a: Rect, b: Rect) -> Rect:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
