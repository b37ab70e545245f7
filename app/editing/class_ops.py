"""Class operations (add, rename, merge into, delete, recolour, keep when unused) as undo steps,
and what keeps the Classes dock, the class pickers and the canvas colours current.

``ClassManager`` owns the Classes dock (``app.editing.class_panel``), a "Class:" picker on the
Annotate toolbar (the class the next new instance gets, in step with the instance list's
picker), and routes "Add Class..." through here, so adding is undoable too.

Undo design: a class operation changes the whole project, not one image, so it is a
``ClassCommand`` on the project's own undo stack (``History.push_project``); the window's
Undo/Redo reach it in time order with the image steps (see ``app.editing.history``). The engine
does the work and returns what undoing needs (``Project.rename_class`` ... ->
``ClassUndo``, ``Project.undo_class_operation``). Image steps keep immutable snapshots, which
would still name the old class after a rename, merge or delete (and redoing one would bring the
class back), so the command rewrites every snapshot of the project's image stacks as the engine
rewrote the store (shared instances stay shared). Undo puts the very same tuples back, and maps
the steps made since exactly as the engine maps the store back (a rename's new name to the old
one; a merge's moved instances, by image and id, to their old class).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QColor, QUndoCommand
from PySide6.QtWidgets import QComboBox, QLabel

from app import dialogs
from app.colors import class_colours
from app.editing import prompts
from app.editing.class_panel import NO_COLOUR_RGB, ClassPanel
from app.editing.class_picker import pick_class
from app.editing.class_row import NO_CLASS_TEXT
from app.editing.history import SnapshotCommand
from app.icons import swatch
from engine.annotations import IGNORE, AnnotatedInstance
from engine.errors import MaskScopeError
from engine.project import ClassUndo, Project

if TYPE_CHECKING:
    from app.editing.controller import EditingController
    from app.main_window import MainWindow

COUNT_DELAY_MS = 400  # counts follow edits after this pause (one GROUP BY query, not one per stroke)

# (image name, instance) -> the instance as the class operation leaves it; None drops it
Change = Callable[[str, AnnotatedInstance], AnnotatedInstance | None]


def project_key(project: Project) -> str:
    return f"project:{project.folder}"


class ClassCommand(QUndoCommand):
    """One class operation as an undo step (see the module doc)."""

    def __init__(
        self,
        manager: ClassManager,
        project: Project,
        text: str,
        do: Callable[[ClassUndo | None], ClassUndo],
        change: Change | None = None,
    ) -> None:
        super().__init__(text)
        self.manager = manager
        self.project = project
        self._do = do
        self._change = change
        self.record: ClassUndo | None = None
        self._saved: list[tuple[SnapshotCommand, tuple, tuple]] = []
        self.error: str | None = None

    def redo(self) -> None:
        try:
            self.record = self._do(self.record)
        except (MaskScopeError, ValueError, KeyError) as exc:
            # The project changed since (e.g. the name is taken now): drop the step, say why.
            self.error = str(exc)
            self.setObsolete(True)
            self.manager.report_error(self.text(), self.error)
            return
        if self._change is not None:
            self._saved = self.manager.rewrite_snapshots(self.project, self._change)
        self.manager.changed(self.project, self.record)

    def undo(self) -> None:
        if self.record is None:
            return
        record = self.record
        if record.kind == "add" and self.project.class_counts().get(record.before.name, 0):
            # Instances of the new class were drawn since (on another image): the class stays.
            self.manager.report_error(f"Undo {self.text()}", f"\u201c{record.before.name}\u201d is in use; it stays.")
            return
        try:
            self.project.undo_class_operation(record)
        except (MaskScopeError, ValueError, KeyError) as exc:
            # e.g. a class of that name was added since; never let an error escape into Qt
            self.manager.report_error(f"Undo {self.text()}", str(exc))
            return
        restored = self.manager.restore_snapshots(self._saved)
        self._saved = []
        back = back_change(self.record)
        if back is not None:  # steps made after the operation follow the store back
            self.manager.rewrite_snapshots(self.project, back, skip=restored)
        self.manager.changed(self.project, self.record, undone=True)


def back_change(record: ClassUndo) -> Change | None:
    """What undoing ``record`` does to an instance (as ``Project.undo_class_operation`` does to rows)."""
    old = record.before.name
    if record.kind == "rename":
        new = record.target
        return lambda _name, i: i.with_category(old) if i.category == new else i
    if record.kind == "merge":
        target, moved = record.target, set(record.moved)
        return lambda name, i: i.with_category(old) if i.category == target and (name, i.id) in moved else i
    return None


class ClassManager(QObject):
    """Runs class operations as undo steps and keeps the panel, pickers and colours current."""

    classesChanged = Signal()

    def __init__(self, window: MainWindow, controller: EditingController) -> None:
        super().__init__(controller)
        self.window = window
        self.c = controller
        self.panel = ClassPanel(window)
        window.add_dock(self.panel)
        self.picker = QComboBox()
        self.picker.setObjectName("ToolbarClassPicker")
        self.picker.setToolTip("Class of the next new instance (a stroke or polygon with nothing selected)")
        self.picker.setPlaceholderText(NO_CLASS_TEXT)
        self.picker.setMinimumContentsLength(12)
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        # First on the Annotate toolbar, so a narrow window never folds it into the overflow menu.
        toolbar = controller.actions.toolbar
        first = toolbar.actions()[0] if toolbar.actions() else None
        self._picker_label = QLabel(" Class: ")
        if first is None:
            toolbar.addWidget(self._picker_label)
            toolbar.addWidget(self.picker)
            toolbar.addSeparator()
        else:
            toolbar.insertWidget(first, self._picker_label)
            toolbar.insertWidget(first, self.picker)
            toolbar.insertSeparator(first)
        self._project: Project | None = None
        self._rows: list[tuple] = []
        self._stale = False
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.timeout.connect(self._on_count_timer)

        p = self.panel
        p.addRequested.connect(lambda: self.add_class())
        p.renameRequested.connect(lambda name: self.rename(name))
        p.mergeRequested.connect(lambda name: self.merge(name))
        p.deleteRequested.connect(lambda name: self.delete(name))
        p.recolourRequested.connect(lambda name: self.recolour(name))
        p.keepToggled.connect(lambda name, on: self.set_keep(name, on))
        p.useRequested.connect(controller.set_current_class)
        self.picker.activated.connect(lambda i: controller.set_current_class(self.picker.itemText(i)))
        controller.class_row.classesShown.connect(self._sync_picker)
        # "Add Class..." (menu and the dock's +) becomes an undoable class operation too.
        for signal in (controller.actions.add_class.triggered, controller.class_row.addClassRequested):
            signal.disconnect()
            signal.connect(lambda *_a: self.add_class())
        controller.annotationsChanged.connect(lambda _key: self._count_timer.start(COUNT_DELAY_MS))
        p.visibilityChanged.connect(self._on_panel_visibility)
        window.imageShown.connect(lambda _path: self._on_image_shown())
        controller.files.projectOpened.connect(lambda _p: self.refresh())
        self.refresh()

    @property
    def project(self) -> Project | None:
        return self.c.project

    # --- operations (each an undo step; None arguments are asked for) ---------------------------------
    def add_class(self, name: str | None = None) -> bool:
        project = self._require_project()
        if project is None:
            return False
        if name is None:
            name = prompts.ask_text(self.window, "Add class", "Name of the new class:")
            if not name:
                return False
        if name in project.classes:
            self.c.set_current_class(name)
            return False
        if not self._valid_new_name(name):
            return False

        def do(prev: ClassUndo | None) -> ClassUndo:
            if prev is not None and prev.before.name in project.classes:
                return prev  # its undo kept it (in use): nothing to redo
            return project.redo_class_operation(prev) if prev is not None else project.add_class(name)

        ok = self._push(project, f"Add Class {name}", do)
        if ok:
            self.c.set_current_class(name)
        return ok

    def rename(self, old: str, new: str | None = None) -> bool:
        project = self._require_project(old)
        if project is None:
            return False
        if new is None:
            new = prompts.ask_text(self.window, "Rename class", f"New name for \u201c{old}\u201d:", old)
            if not new or new == old:
                return False
        if new in project.classes:
            dialogs.show_error(
                self.window,
                "Cannot rename",
                f"There is already a class \u201c{new}\u201d. Use \u201cMerge into\u2026\u201d to join the two.",
            )
            return False
        if not self._valid_new_name(new):
            return False
        ok = self._push(
            project,
            f"Rename Class {old} to {new}",
            lambda _prev: project.rename_class(old, new),
            lambda _n, i: i.with_category(new) if i.category == old else i,
        )
        return ok

    def merge(self, source: str, target: str | None = None) -> bool:
        project = self._require_project(source)
        if project is None:
            return False
        others = [n for n in project.classes.names if n != source]
        if target is None:
            if not others:
                return False
            target = pick_class(self.window, others, None, f"Merge \u201c{source}\u201d into", allow_new=False)
            if target is None:
                return False
        if target not in others:
            dialogs.show_error(self.window, "Cannot merge", f"Choose another existing class than \u201c{source}\u201d.")
            return False
        count = self._counts().get(source, 0)
        ok = self._push(
            project,
            f"Merge Class {source} into {target}",
            lambda _prev: project.merge_classes(source, target),
            lambda _n, i: i.with_category(target) if i.category == source else i,
        )
        if ok:
            moved = f"{count} instances moved (Ctrl+Z undoes)"
            self.c.status(f"Merged \u201c{source}\u201d into \u201c{target}\u201d: {moved}.")
        return ok

    def delete(self, name: str, with_instances: bool | None = None) -> bool:
        """Delete a class; one that is used is only deleted with its instances, after asking."""
        project = self._require_project(name)
        if project is None:
            return False
        count = self._counts().get(name, 0)
        if count and with_instances is None:
            with_instances = prompts.confirm(
                self.window,
                "Delete class",
                f"\u201c{name}\u201d is used by {count} instance{'s' if count != 1 else ''}.\n\n"
                f"Delete the class and its {count} instance{'s' if count != 1 else ''}? "
                "(Ctrl+Z brings them back.) To keep them, merge the class into another one instead.",
            )
            if not with_instances:
                return False
        if count and not with_instances:
            dialogs.show_error(
                self.window,
                "Class in use",
                f"\u201c{name}\u201d is used by {count} instances; merge it into another class or delete them with it.",
            )
            return False
        gone = f" and its {count} instances" if count else ""
        ok = self._push(
            project,
            f"Delete Class {name}" + (f" ({count} instances)" if count else ""),
            lambda _prev: project.delete_class(name, delete_instances=bool(count)),
            (lambda _n, i: None if i.category == name else i) if count else None,
        )
        if ok:
            self.c.status(f"Deleted class \u201c{name}\u201d{gone} (Ctrl+Z undoes).")
        return ok

    def recolour(self, name: str, colour: str | None = None) -> bool:
        project = self._require_project(name)
        if project is None:
            return False
        cat = project.classes.get(name)
        assert cat is not None  # _require_project checked the name
        if colour is None:
            colour = prompts.ask_colour(self.window, f"Colour of \u201c{name}\u201d", cat.colour)
            if colour is None:
                return False
        colour = QColor(colour).name() if QColor(colour).isValid() else ""
        if not colour or colour == cat.colour:
            return False
        return self._push(project, f"Colour of {name}", lambda _prev: project.update_class(name, colour=colour))

    def set_keep(self, name: str, keep: bool) -> bool:
        project = self._require_project(name)
        if project is None:
            return False
        cat = project.classes.get(name)
        assert cat is not None  # _require_project checked the name
        if cat.keep == keep:
            return False
        text = f"Keep {name} When Unused" if keep else f"Drop {name} When Unused"
        return self._push(project, text, lambda _prev: project.update_class(name, keep=keep))

    # --- used by ClassCommand ---------------------------------------------------------------------------
    def rewrite_snapshots(
        self, project: Project, change: Change, skip: AbstractSet[int] = frozenset()
    ) -> list[tuple[SnapshotCommand, tuple, tuple]]:
        """Apply ``change`` to every snapshot on the project's image stacks (but the commands
        whose ``id`` is in ``skip``); returns what to put back."""
        memo: dict[int, tuple[AnnotatedInstance, AnnotatedInstance | None]] = {}

        def convert(name: str, snapshot: tuple) -> tuple:
            out, changed = [], False
            for inst in snapshot:
                entry = memo.get(id(inst))
                if entry is None:
                    entry = memo[id(inst)] = (inst, change(name, inst))  # the instance is kept: ids stay valid
                new = entry[1]
                changed = changed or new is not inst
                if new is not None:
                    out.append(new)
            return tuple(out) if changed else snapshot

        saved = []
        registry = self.c.files.registry
        for key, stack in self.c.history.stacks().items():
            found = registry.find(key)
            if found is None or found[0] is not project:
                continue
            for i in range(stack.count()):
                cmd = stack.command(i)
                cmd = getattr(cmd, "wrapped", cmd)
                if not isinstance(cmd, SnapshotCommand) or id(cmd) in skip:
                    continue
                before, after = convert(found[1], cmd.before), convert(found[1], cmd.after)
                if before is not cmd.before or after is not cmd.after:
                    saved.append((cmd, cmd.before, cmd.after))
                    cmd.before, cmd.after = before, after
        return saved

    @staticmethod
    def restore_snapshots(saved: list[tuple[SnapshotCommand, tuple, tuple]]) -> set[int]:
        """Put the tuples ``rewrite_snapshots`` replaced back; returns the ids of those commands."""
        for cmd, before, after in saved:
            cmd.before, cmd.after = before, after
        return {id(cmd) for cmd, _b, _a in saved}

    def changed(self, project: Project, record: ClassUndo, undone: bool = False) -> None:
        """After an operation or its undo: the view shows the project as it is now."""
        # The class of new instances follows its class through a rename or merge (and back).
        old, new = record.before.name, record.target
        if record.kind == "rename":
            follow = {new: old} if undone else {old: new}
        else:
            follow = {} if undone or record.kind != "merge" else {old: new}
        if project is self.c.project and self.c.current_class in follow:
            self.c.current_class = follow[self.c.current_class]
        if project is self.c.project:
            self.c.refresh_current()
        if record.rows:  # instances deleted or put back: those images' marks in the file list
            for name in {r[0] for r in record.rows}:
                path = str(project.folder / name)
                self.window.set_file_state(path, annotated=project.has_annotations(name))
        self.refresh()

    def report_error(self, what: str, message: str) -> None:
        dialogs.show_error(self.window, f"{what} failed", message)

    # --- view ----------------------------------------------------------------------------------------------
    def _on_panel_visibility(self, visible: bool) -> None:
        if visible and self._stale:  # counts changed while the panel was hidden
            self.refresh()

    def refresh(self) -> None:
        """Panel rows, picker swatches and canvas colours from the project's classes."""
        project = self.c.project
        if project is None:
            self.panel.set_classes([], None)
            self.c.overlay.set_class_colours({})
            return
        self.c.history.set_project(project_key(project))
        self._count_timer.stop()
        self._stale = False
        counts = self._counts()
        self._rows = [
            (c.name, c.id, counts.get(c.name, 0), c.colour, c.keep) for c in project.classes if c.name != IGNORE
        ]
        self.panel.set_classes(self._rows, self.c.current_class)
        colours = class_colours(project.classes)
        row = self.c.class_row
        self.c.overlay.set_class_colours(colours)
        if colours != row.class_colours:
            row.class_colours = colours
            self.c.refresh_current()  # the list's swatches
            row.set_classes(project.classes.names, self.c.current_class)
        self.classesChanged.emit()

    def _on_image_shown(self) -> None:
        project = self.c.project
        if project is not self._project:
            self._project = project
            self.refresh()

    def _sync_picker(self, names: list[str], current: str) -> None:
        self.picker.blockSignals(True)
        self.picker.clear()
        dpr = self.picker.devicePixelRatioF()
        colours = self.c.class_row.class_colours
        for name in names:
            rgb = colours.get(name)
            self.picker.addItem(swatch(rgb, dpr) if rgb else swatch(NO_COLOUR_RGB, dpr), name)
        self.picker.setCurrentIndex(names.index(current) if current in names else -1)
        self.picker.blockSignals(False)
        known = [r[0] for r in self._rows]
        if known != names:  # a class came or went outside this panel (a relabel, an import)
            self._count_timer.start(0)
        else:  # only the current class changed: move the bold mark, no recount
            self.panel.set_classes(self._rows, current or None)

    def _on_count_timer(self) -> None:
        if self.panel.isVisible():
            self.refresh()
        else:
            self._stale = True  # counted when the panel is shown

    # --- helpers ---------------------------------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        project = self.c.project
        return project.class_counts() if project is not None else {}

    def _require_project(self, name: str | None = None) -> Project | None:
        project = self.c.project
        if project is None:
            self.c.status("Open an image folder first: classes belong to its project.")
            return None
        if name is not None and name not in project.classes:
            self.c.status(f"There is no class \u201c{name}\u201d.")
            return None
        self.c.commit_pending()
        return project

    def _valid_new_name(self, name: str) -> bool:
        if name == IGNORE:
            dialogs.show_error(
                self.window,
                "Not a class name",
                f"\u201c{IGNORE}\u201d marks ignore regions (labelme's convention); it cannot name a class.",
            )
            return False
        return True

    def _push(self, project: Project, text: str, do, change: Change | None = None) -> bool:
        command = ClassCommand(self, project, text, do, change)
        self.c.history.push_project(project_key(project), command)
        return command.error is None
