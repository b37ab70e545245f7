"""The one selection of the window: at most one item, a prediction or an annotation.

An item is named by a key: ``("prediction", index)`` (index into the shown prediction's
instances, the same order as its stored predictions) or ``("annotation", id)``. The canvas, the
instance list, the inspectors and the editing tools all read and set this one key.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

PREDICTION = "prediction"
ANNOTATION = "annotation"
ItemKey = tuple[str, int]


def prediction_key(index: int) -> ItemKey | None:
    return (PREDICTION, int(index)) if index >= 0 else None


def annotation_key(instance_id: int) -> ItemKey | None:
    return (ANNOTATION, int(instance_id)) if instance_id > 0 else None


def prediction_index(key: ItemKey | None) -> int:
    """The prediction index ``key`` names, -1 when it names no prediction."""
    return key[1] if key is not None and key[0] == PREDICTION else -1


def annotation_id(key: ItemKey | None) -> int:
    """The annotation id ``key`` names, -1 when it names no annotation."""
    return key[1] if key is not None and key[0] == ANNOTATION else -1


class Selection(QObject):
    changed = Signal(object)  # the new key (ItemKey) or None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._key: ItemKey | None = None

    @property
    def key(self) -> ItemKey | None:
        return self._key

    def set(self, key: ItemKey | None) -> None:
        key = None if key is None else (str(key[0]), int(key[1]))
        if key != self._key:
            self._key = key
            self.changed.emit(key)
