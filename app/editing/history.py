"""Undo history: one QUndoStack per image in a QUndoGroup, so each image keeps its own history,
plus one stack per project for what changes the whole project (class operations).

Every edit is a ``SnapshotCommand``: the image's instance tuple before and after, and the review
states of the stored predictions it changes (accepting one, rejecting one). Instances are
immutable, so a snapshot is a tuple of references and an undo step costs no mask copies. Undo and
redo write through the project store (``Project.commit``: instances and review states together).
Switching images switches the group's active stack; Undo/Redo always act on the image on screen.

Project-level commands (``app.editing.class_panel.ClassCommand``) live on the stack of the
project on screen (``set_project``), outside the group. The window's Undo/Redo actions
(``create_undo_action`` / ``create_redo_action``) reach both: Undo takes whichever of the two
stacks did its last step most recently, Redo whichever undid most recently; so Ctrl+Z walks back
through strokes and class operations in the order they were made. A project step undone before
a newer edit anywhere is not redone any more (as a push clears a stack's redo steps). Every step
is stamped from one counter when it is done or undone (``indexChanged``), whoever triggered it.
"""

from __future__ import annotations

import itertools
from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QUndoCommand, QUndoGroup, QUndoStack

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
    """The per-image undo stacks (keyed by the image's path) and the per-project ones."""

    def __init__(self, parent: QObject) -> None:
        self.group = QUndoGroup(parent)
        self._parent = parent
        self._stacks: dict[str, QUndoStack] = {}
        self._project_stacks: dict[str, QUndoStack] = {}
        self._project_key: str | None = None
        self._clock = itertools.count(1)
        self._last_push = 0
        self._actions: list[tuple[QAction, bool]] = []
        self.group.activeStackChanged.connect(lambda _s: self._sync_actions())

    def _new_stack(self) -> QUndoStack:
        stack = QUndoStack(self._parent)
        stack.setUndoLimit(UNDO_LIMIT)
        state = {"index": 0}
        stack.indexChanged.connect(lambda index, st=stack, state=state: self._on_index(st, state, index))
        stack.cleanChanged.connect(lambda _clean: self._sync_actions())
        return stack

    def stack(self, key: str) -> QUndoStack:
        stack = self._stacks.get(key)
        if stack is None:
            stack = self._new_stack()
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

    def stacks(self) -> dict[str, QUndoStack]:
        """The image stacks by key (class operations rewrite their snapshots)."""
        return dict(self._stacks)

    # --- project-level steps ------------------------------------------------------------------------
    def project_stack(self, key: str) -> QUndoStack:
        stack = self._project_stacks.get(key)
        if stack is None:
            stack = self._new_stack()
            self._project_stacks[key] = stack
        return stack

    def set_project(self, key: str | None) -> None:
        """The project on screen: its stack joins Undo/Redo."""
        if key != self._project_key:
            self._project_key = key
            self._sync_actions()

    def push_project(self, key: str, command: QUndoCommand) -> None:
        """Run ``command`` and record it on the project's stack (it becomes the project on screen)."""
        self.set_project(key)
        self.project_stack(key).push(command)

    def _current_project_stack(self) -> QUndoStack | None:
        return self._project_stacks.get(self._project_key) if self._project_key is not None else None

    def _on_index(self, stack: QUndoStack, state: dict, index: int) -> None:
        try:
            self._stamp(stack, state, index)
        except RuntimeError:  # the stacks go with the window; their last signals find them half gone
            return
        self._sync_actions()

    def _stamp(self, stack: QUndoStack, state: dict, index: int) -> None:
        previous, state["index"] = state["index"], index
        if index > previous:
            for i in range(previous, index):
                cmd = stack.command(i)
                if cmd is None:
                    continue
                stamp = next(self._clock)
                if getattr(cmd, "_done_at", None) is None:
                    self._last_push = stamp  # a new step, not a redo
                cmd._done_at = stamp
        elif index < previous:
            for i in range(previous - 1, index - 1, -1):
                cmd = stack.command(i)
                if cmd is not None:
                    cmd._undone_at = next(self._clock)
        top = stack.command(index - 1) if index > 0 else None
        if top is not None and getattr(top, "_done_at", None) is None:
            top._done_at = next(self._clock)  # the undo limit dropped the oldest step: indices shifted

    def _undo_stack(self) -> QUndoStack | None:
        """The stack whose last done step is the most recent."""
        best, best_at = None, -1
        for stack in (self.group.activeStack(), self._current_project_stack()):
            if stack is not None and stack.canUndo():
                at = getattr(stack.command(stack.index() - 1), "_done_at", 0) or 0
                if at > best_at:
                    best, best_at = stack, at
        return best

    def _redo_stack(self) -> QUndoStack | None:
        """The stack whose next redo step was undone most recently."""
        best, best_at = None, -1
        project = self._current_project_stack()
        for stack in (self.group.activeStack(), project):
            if stack is not None and stack.canRedo():
                at = getattr(stack.command(stack.index()), "_undone_at", 0) or 0
                if stack is project and at < self._last_push:
                    continue  # undone before a newer edit: redoing it now would rewrite that edit
                if at > best_at:
                    best, best_at = stack, at
        return best

    def undo(self) -> bool:
        stack = self._undo_stack()
        if stack is None:
            return False
        stack.undo()
        return True

    def redo(self) -> bool:
        stack = self._redo_stack()
        if stack is None:
            return False
        stack.redo()
        return True

    def can_undo(self) -> bool:
        return self._undo_stack() is not None

    def can_redo(self) -> bool:
        return self._redo_stack() is not None

    def create_undo_action(self, parent: QObject, text: str = "&Undo") -> QAction:
        return self._make_action(parent, text, redo=False)

    def create_redo_action(self, parent: QObject, text: str = "&Redo") -> QAction:
        return self._make_action(parent, text, redo=True)

    def _make_action(self, parent: QObject, text: str, redo: bool) -> QAction:
        action = QAction(text, parent)
        action.setProperty("base_text", text)
        action.triggered.connect(lambda _checked=False: self.redo() if redo else self.undo())
        self._actions.append((action, redo))
        self._sync_actions()
        return action

    def _sync_actions(self) -> None:
        try:
            self._update_actions()
        except RuntimeError:  # the group or a stack is being destroyed with the window
            pass

    def _update_actions(self) -> None:
        for action, redo in self._actions:
            stack = self._redo_stack() if redo else self._undo_stack()
            base = str(action.property("base_text"))
            action.setEnabled(stack is not None)
            step = (stack.redoText() if redo else stack.undoText()) if stack is not None else ""
            action.setText(f"{base} {step}" if step else base)


class AlreadyApplied(QUndoCommand):
    """Wraps a command whose change was already made (an import): the first redo does nothing."""

    def __init__(self, command: QUndoCommand) -> None:
        super().__init__(command.text())
        self._command = command
        self._first = True

    @property
    def wrapped(self) -> QUndoCommand:
        return self._command

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self._command.redo()

    def undo(self) -> None:
        self._command.undo()
