"""Menus, toolbar and shortcuts of the editing tools, added to the main window's menus.

File: Save Annotations (Ctrl+S), Save Annotations As..., Import..., Export COCO...
Edit: Undo (Ctrl+Z), Redo (Ctrl+Shift+Z, Ctrl+Y), accept/reject predictions, annotation edits.
Annotate (menu and toolbar): Select (V), Brush (U), Eraser (E), Polygon (P), Box prompt (B),
Point prompt (K), brush size ([ ]), erase from others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QMenu, QToolBar

from app.editing.brush_tool import MAX_SIZE, MIN_SIZE
from app.icons import icon

if TYPE_CHECKING:
    from app.editing.controller import EditingController


@dataclass
class EditingActions:
    controller: EditingController
    save: QAction
    save_as: QAction
    import_file: QAction
    import_folder: QAction
    export: QAction
    undo: QAction
    redo: QAction
    accept: QAction
    accept_all: QAction
    reject: QAction
    new_instance: QAction
    relabel: QAction
    fill_holes: QAction
    delete: QAction
    add_class: QAction
    grow_brush: QAction
    shrink_brush: QAction
    erase_others: QAction
    annotate_menu: QMenu
    toolbar: QToolBar
    size_spin: QDoubleSpinBox
    mark_done: QAction
    next_review: QAction
    tool_actions: dict[str, QAction] = field(default_factory=dict)

    def update_enabled(self) -> None:
        c = self.controller
        has_image = c.annotations is not None
        has_sel = c.selected_annotation() is not None
        for action in (self.relabel, self.fill_holes, self.delete):
            action.setEnabled(has_sel)
        for action in (self.new_instance, self.accept, self.accept_all, self.reject, self.mark_done):
            action.setEnabled(has_image)
        for action in (self.save, self.save_as, self.import_file, self.import_folder, self.export, self.add_class):
            action.setEnabled(c.project is not None)


def _action(window, text: str, slot, shortcuts=(), tip: str | None = None, icon_name: str | None = None) -> QAction:
    action = QAction(text, window)
    keys = [QKeySequence(s) for s in shortcuts]
    if keys:
        action.setShortcuts(keys)
    if icon_name:
        action.setIcon(icon(icon_name))
    shortcut_text = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
    tip_text = tip or text.replace("&", "").replace("\u2026", "")
    action.setToolTip(f"{tip_text} ({shortcut_text})" if shortcut_text else tip_text)
    action.setStatusTip(tip_text)
    action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)  # shortcuts work with menus and toolbars hidden
    return action


def _unique(keys: list[QKeySequence]) -> list[QKeySequence]:
    """The same key twice on one action makes Qt call the shortcut ambiguous and do nothing."""
    out: list[QKeySequence] = []
    for k in keys:
        if not k.isEmpty() and all(k != o for o in out):
            out.append(k)
    return out


def build_editing_actions(c: EditingController) -> EditingActions:
    window = c.window
    K = QKeySequence.StandardKey  # noqa: N806 - Qt naming
    wa = window.actions_

    save = _action(
        window,
        "&Save Annotations",
        c.files.save,
        (K.Save,),
        "Write annotations.json (COCO); every edit is already stored in .maskscope/project.db",
        "save",
    )
    save_as = _action(window, "Save Annotations &As\u2026", c.files.save_as, ("Ctrl+Shift+S",))
    import_file = _action(window, "&Import COCO or labelme\u2026", lambda: c.files.import_annotations())
    import_folder = _action(window, "Import labelme &Folder\u2026", lambda: c.files.import_annotations(folder=True))
    export = _action(window, "&Export COCO\u2026", lambda: c.files.export(), ("Ctrl+E",))

    undo = c.history.create_undo_action(window, "&Undo")  # reaches image and project (class) steps
    undo.setShortcuts(_unique([QKeySequence(K.Undo), QKeySequence("Ctrl+Z")]))
    undo.setIcon(icon("undo"))
    redo = c.history.create_redo_action(window, "&Redo")
    redo.setShortcuts(_unique([QKeySequence(K.Redo), QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")]))
    redo.setIcon(icon("redo"))
    window.addAction(undo)
    window.addAction(redo)

    accept = _action(
        window,
        "&Accept Prediction",
        lambda: c.accept_prediction(),
        ("Ctrl+Return",),
        "Add the selected predicted instance to the annotations",
        "accept",
    )
    accept_all = _action(
        window,
        "Accept All &Shown Predictions",
        c.accept_all_predictions,
        ("Ctrl+Shift+Return",),
        "Add every prediction at or above the score threshold to the annotations",
        "accept-all",
    )
    reject = _action(
        window,
        "&Reject Prediction",
        lambda: c.reject_prediction(),
        ("Ctrl+Backspace",),
        "Hide the selected predicted instance",
        "reject",
    )
    new_instance = _action(
        window,
        "&New Instance\u2026",
        lambda: c.new_instance(),
        ("N",),
        "Choose a class; the next stroke or polygon creates the instance",
    )
    relabel = _action(window, "Re&label\u2026", lambda: c.relabel(), ("C",), "Change the selected annotation's class")
    fill_holes = _action(window, "&Fill Holes", lambda: c.fill_holes(), ("Ctrl+Shift+F",))
    delete = _action(window, "&Delete Annotation", lambda: c.delete(), (K.Delete,))
    add_class = _action(window, "Add &Class\u2026", lambda: c.add_class(), (), "Add a class to the project")
    mark_done = _action(
        window, "&Mark Image Done", c.review.toggle_done, ("Ctrl+D",), "Mark the image reviewed (again: back in review)"
    )
    next_review = _action(
        window,
        "Next Image Needing &Review",
        c.review.next_needing_review,
        ("Shift+D",),
        "The next image not marked done that has predictions to review",
    )

    tool_group = QActionGroup(window)
    tool_group.setExclusive(True)
    tool_actions: dict[str, QAction] = {}
    for name, text, keys, tip in (
        ("select", "&Select", ("V",), "Select annotations and predictions by clicking"),
        ("brush", "&Brush", ("U",), "Paint the selected annotation (or a new one)"),
        ("eraser", "&Eraser", ("E",), "Erase from the selected annotation (or from all)"),
        ("polygon", "&Polygon", ("P",), "Draw a polygon instance; drag vertices to edit"),
        ("box", "Bo&x Prompt", ("B",), "Drag a box: the model segments the object in it (Enter accepts)"),
        ("point", "Poin&t Prompt", ("K",), "Click an object: the model's candidates (Tab cycles, Enter accepts)"),
    ):
        icon_name = {"box": "box-prompt", "point": "point-prompt"}.get(name, name)
        action = _action(window, text, lambda n=name: c.set_tool(n), keys, tip, icon_name)
        action.setCheckable(True)
        tool_group.addAction(action)
        tool_actions[name] = action
    tool_actions["select"].setChecked(True)

    grow = _action(window, "Bigger Brush", c.grow_brush, ("]",))
    shrink = _action(window, "Smaller Brush", c.shrink_brush, ("[",))
    erase_others = QAction("Brush &Erases Other Instances", window)
    erase_others.setCheckable(True)
    erase_others.setChecked(c.erase_others)
    erase_others.setToolTip("A brush stroke also takes its pixels away from overlapping instances")
    erase_others.toggled.connect(c.set_erase_others)
    window.addAction(erase_others)

    # --- menus ---------------------------------------------------------------------------------
    file_menu: QMenu = wa.file_menu
    before = wa.quit
    for item in (save, save_as, None, import_file, import_folder, export, None):
        if item is None:
            file_menu.insertSeparator(before)
        else:
            file_menu.insertAction(before, item)
    before = wa.first  # after Previous / Next Image
    for item in (next_review, mark_done):
        if item is None:
            file_menu.insertSeparator(before)
        else:
            file_menu.insertAction(before, item)

    edit_menu: QMenu = wa.edit_menu
    first = edit_menu.actions()[0] if edit_menu.actions() else None
    edit_menu.insertActions(first, [undo, redo])
    edit_menu.insertSeparator(first)
    edit_menu.addSeparator()
    edit_menu.addActions([accept, accept_all, reject])
    edit_menu.addSeparator()
    edit_menu.addActions([new_instance, relabel, fill_holes, delete, add_class])

    annotate_menu = QMenu("&Annotate", window)
    annotate_menu.addActions(list(tool_actions.values()))
    annotate_menu.addSeparator()
    annotate_menu.addActions([grow, shrink, erase_others])
    window.menuBar().insertMenu(wa.model_menu.menuAction(), annotate_menu)

    # --- toolbar -----------------------------------------------------------------------------------
    toolbar = QToolBar("Annotate toolbar", window)
    toolbar.setObjectName("AnnotateToolbar")
    toolbar.setIconSize(wa.toolbar.iconSize())
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    toolbar.addActions([undo, redo])
    toolbar.addSeparator()
    toolbar.addActions(list(tool_actions.values()))
    size_spin = QDoubleSpinBox(toolbar)
    size_spin.setRange(MIN_SIZE, MAX_SIZE)
    size_spin.setDecimals(0)
    size_spin.setSuffix(" px")
    size_spin.setValue(c.brush_size)
    size_spin.setToolTip("Brush size in image pixels ([ and ] change it)")
    size_spin.valueChanged.connect(c.set_brush_size)
    c.brushSizeChanged.connect(lambda v: size_spin.setValue(v) if abs(size_spin.value() - v) >= 0.5 else None)
    toolbar.addWidget(size_spin)
    others_box = QCheckBox("Erase others", toolbar)
    others_box.setToolTip(erase_others.toolTip())
    others_box.setChecked(c.erase_others)
    others_box.toggled.connect(erase_others.setChecked)
    erase_others.toggled.connect(others_box.setChecked)
    toolbar.addWidget(others_box)
    toolbar.addSeparator()
    toolbar.addActions([accept, accept_all, reject])
    toolbar.addSeparator()
    toolbar.addActions([mark_done, next_review])
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    wa.panels_menu.addAction(toolbar.toggleViewAction())

    return EditingActions(
        controller=c,
        save=save,
        save_as=save_as,
        import_file=import_file,
        import_folder=import_folder,
        export=export,
        undo=undo,
        redo=redo,
        accept=accept,
        accept_all=accept_all,
        reject=reject,
        new_instance=new_instance,
        relabel=relabel,
        fill_holes=fill_holes,
        delete=delete,
        add_class=add_class,
        grow_brush=grow,
        shrink_brush=shrink,
        erase_others=erase_others,
        annotate_menu=annotate_menu,
        toolbar=toolbar,
        size_spin=size_spin,
        mark_done=mark_done,
        next_review=next_review,
        tool_actions=tool_actions,
    )
