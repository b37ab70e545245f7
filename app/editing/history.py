"""Undo history: one QUndoStack per image in a QUndoGroup, so each image keeps its own history.

Every edit is a ``SnapshotCommand``: the image's instance tuple before and after, and the review
states of the stored predictions it changes (accepting one, rejecting one). Instances are
immutable, so a snapshot is a tuple of references and an undo step costs no mask copies. Undo and
redo write through the project store (``Project.commit``: instances and review states together).
Switching images switches the group's active stack; Undo/Redo always act on the image on screen.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from engine.annotations import AnnotatedInstance

Snapshot = tuple[AnnotatedInstance, ...]
Reviews = tuple[tuple[int, str], ...]  # (stored prediction id, 'pending' | 'accepted' | 'rejected')
UNDO_LIMIT = 500  # steps per image; a step only holds references to immutable instances


class SnapshotTarget(Protocol):
    def apply_snapshot(self, key: str, snapshot: Snapshot, select: int | None, reviews: Reviews = ()) -> None: ...


class SnapshotCommand(QUndoCommand):
    """Put an image's instances to ``after`` (redo) or back to ``before`` (undo).

    ``select_*``: the instance id to select afterwards (None: keep the selection if it still
    exists). ``reviews_*``: the review states of stored predictions after and before.
    """

    def __init__(
        self,
        target: SnapshotTarget,
        key: str,
        text: str,
        before: Snapshot,
        after: Snapshot,
        select_after: int | None = None,
        select_before: int | None = None,
        reviews_after: Reviews = (),
        reviews_before: Reviews = (),
    ) -> None:
        super().__init__(text)
        self.target = target
        self.key = key
        self.before = tuple(before)
        self.after = tuple(after)
        self.select_after = select_after
        self.select_before = select_before
        self.reviews_after = tuple(reviews_after)
        self.reviews_before = tuple(reviews_before)

    def redo(self) -> None:
        self.target.apply_snapshot(self.key, self.after, self.select_after, self.reviews_after)

    def undo(self) -> None:
        self.target.apply_snapshot(self.key, self.before, self.select_before, self.reviews_before)


class History:
    """The per-image undo stacks, keyed by the image's path."""

    def __init__(self, parent: QObject) -> None:
        self.group = QUndoGroup(parent)
        self._parent = parent
        self._stacks: dict[str, QUndoStack] = {}

    def stack(self, key: str) -> QUndoStack:
        stack = self._stacks.get(key)
        if stack is None:
            stack = QUndoStack(self._parent)
            stack.setUndoLimit(UNDO_LIMIT)
            self.group.addStack(stack)
            self._stacks[key] = stack
        return stack

    def has_stack(self, key: str) -> bool:
        return key in self._stacks

    def activate(self, key: str | None) -> None:
        self.group.setActiveStack(self.stack(key) if key is not None else None)

    @property
    def active_key(self) -> str | None:
        active = self.group.activeStack()
        for key, stack in self._stacks.items():
            if stack is active:
                return key
        return None

    def push(self, key: str, command: QUndoCommand) -> None:
        """Run ``command`` (its redo) and record it on the image's stack."""
        self.stack(key).push(command)

    def clear(self, key: str | None = None) -> None:
        for k, stack in self._stacks.items():
            if key is None or k == key:
                stack.clear()


class AlreadyApplied(QUndoCommand):
    """Wraps a command whose change was already made (an import): the first redo does nothing."""

    def __init__(self, command: QUndoCommand) -> None:
        super().__init__(command.text())
        self._command = command
        self._first = True

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self._command.redo()

    def undo(self) -> None:
        self._command.undo()
