"""The Classes dock on the real window: rename / merge / delete with undo and redo through the
window's Undo/Redo (checked in the store, and after reopening it), colours, and the visible class
picker for new instances (never silently the first class, never ``__ignore__``)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.editing import controller as controller_module
from app.editing import install_editing, prompts
from app.editing.class_panel import install_class_panel
from app.editing.class_picker import ClassPickerDialog
from app.instance_list import COL_CLASS
from app.overlay import pack_argb
from app.selection import annotation_key
from engine.annotations import IGNORE
from engine.project import Project

SQUARES = {  # polygons (x0, y0, x1, y1) per step, all inside 160x120
    "a": (10, 10, 40, 40),
    "b": (50, 10, 80, 40),
    "c": (10, 60, 40, 90),
    "d": (90, 60, 120, 90),
}


def _square(key: str) -> list[list[float]]:
    x0, y0, x1, y1 = SQUARES[key]
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _show(window, qtbot, path) -> None:
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(path))


def _draw(ed, key: str, category: str) -> int:
    ed.set_current_class(category)
    assert ed.add_polygon_instance(_square(key))
    return ed.selected_id


def _stored(folder) -> tuple[dict[str, int], dict[str, list[str]], dict[str, int]]:
    """Counts, instance classes per annotated image and COCO ids, as a fresh reader sees the store."""
    project = Project.open(folder)
    try:
        counts = project.class_counts()
        classes = {}
        for name in ("img_0.png", "img_1.png"):
            entry = project.annotations(name, create=False)
            classes[name] = [i.category for i in entry] if entry is not None else []
        ids = {c.name: c.id for c in project.classes}
    finally:
        project.close()
    return counts, classes, ids


def _press(window, qtbot, key: Qt.Key) -> None:
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=3000)
    qtbot.keyClick(window.canvas, key, Qt.KeyboardModifier.ControlModifier)


def _undo(window, qtbot) -> None:
    _press(window, qtbot, Qt.Key.Key_Z)


def _redo(window, qtbot) -> None:
    _press(window, qtbot, Qt.Key.Key_Y)


@pytest.fixture
def classes_window(window, qtbot, image_folder):
    ed = install_editing(window)
    manager = install_class_panel(window)
    assert install_class_panel(window) is manager
    _show(window, qtbot, image_folder / "img_0.png")
    yield window, ed, manager
    for project in ed.files.registry.projects:
        project.close()


def test_rename_merge_delete_with_undo_redo_in_the_store(classes_window, qtbot, image_folder, monkeypatch):
    window, ed, manager = classes_window
    folder = image_folder
    assert manager.add_class("cat") and manager.add_class("dog")
    a1 = _draw(ed, "a", "cat")
    _draw(ed, "b", "dog")
    _show(window, qtbot, folder / "img_1.png")
    _draw(ed, "a", "cat")
    ed.project.flush()
    counts, classes, ids = _stored(folder)
    assert counts == {"cat": 2, "dog": 1}
    cat_id, dog_id = ids["cat"], ids["dog"]

    # --- rename: the id stays, every instance follows, the picker follows -------------------------
    assert manager.rename("cat", "kitten")
    assert ed.current_class == "kitten" and manager.picker.currentText() == "kitten"
    assert [i.category for i in ed.annotations] == ["kitten"]
    assert window.instance_list.text(annotation_key(1), COL_CLASS) == "kitten"
    assert manager.panel.row_texts()["kitten"][1:3] == [str(cat_id), "2"]
    ed.project.flush()
    counts, classes, ids = _stored(folder)
    assert counts == {"kitten": 2, "dog": 1} and ids["kitten"] == cat_id
    assert classes == {"img_0.png": ["kitten", "dog"], "img_1.png": ["kitten"]}

    # A step after the rename, then Ctrl+Z twice: the step, then the rename (time order).
    _draw(ed, "c", "kitten")
    _undo(window, qtbot)
    assert [i.category for i in ed.annotations] == ["kitten"]
    _undo(window, qtbot)
    assert "cat" in ed.project.classes and "kitten" not in ed.project.classes
    assert [i.category for i in ed.annotations] == ["cat"] and ed.current_class == "cat"
    ed.project.flush()
    counts, classes, _ = _stored(folder)
    assert counts == {"cat": 2, "dog": 1}
    assert classes == {"img_0.png": ["cat", "dog"], "img_1.png": ["cat"]}
    # Ctrl+Y: the rename (undone last) comes back first, then the step, drawn as the renamed class.
    _redo(window, qtbot)
    assert "kitten" in ed.project.classes
    _redo(window, qtbot)
    assert [i.category for i in ed.annotations] == ["kitten", "kitten"]
    ed.project.flush()
    assert _stored(folder)[0] == {"kitten": 3, "dog": 1}

    # --- merge: instances move, the kept class's id stays ---------------------------------------------
    assert manager.merge("dog", "kitten")
    ed.project.flush()
    counts, classes, ids = _stored(folder)
    assert counts == {"kitten": 4} and ids == {"kitten": cat_id}
    assert classes["img_0.png"] == ["kitten", "kitten"]
    assert "dog" not in manager.panel.row_texts()
    _undo(window, qtbot)
    ed.project.flush()
    counts, classes, ids = _stored(folder)
    assert counts == {"kitten": 3, "dog": 1} and ids["dog"] == dog_id
    assert classes["img_0.png"] == ["kitten", "dog"]
    _redo(window, qtbot)
    ed.project.flush()
    assert _stored(folder)[0] == {"kitten": 4}
    _undo(window, qtbot)

    # --- delete: refused unless the user agrees to lose the instances (the question names them) -------
    asked: list[str] = []
    monkeypatch.setattr(prompts, "confirm", lambda parent, title, text: asked.append(text) or False)
    assert not manager.delete("kitten")
    assert "3 instances" in asked[0]
    assert "kitten" in ed.project.classes
    monkeypatch.setattr(prompts, "confirm", lambda parent, title, text: asked.append(text) or True)
    assert manager.delete("kitten")
    assert len(ed.annotations) == 0 and ed.overlay.pixel(25, 25) == 0
    assert not window.file_list.state(window.current_image_path).annotated
    ed.project.flush()
    counts, classes, _ = _stored(folder)
    assert counts == {"dog": 1} and classes == {"img_0.png": ["dog"], "img_1.png": []}
    _undo(window, qtbot)
    assert [i.category for i in ed.annotations] == ["kitten", "kitten"]
    assert window.file_list.state(window.current_image_path).annotated
    ed.project.flush()
    counts, classes, ids = _stored(folder)
    assert counts == {"kitten": 3, "dog": 1} and ids["kitten"] == cat_id
    assert classes == {"img_0.png": ["kitten", "dog"], "img_1.png": ["kitten", "kitten"]}
    _redo(window, qtbot)
    ed.project.flush()
    assert _stored(folder)[0] == {"dog": 1}
    _undo(window, qtbot)

    # An unused class is deleted without a question; the panel flags unused classes.
    assert manager.add_class("bird")
    assert manager.panel.row_texts()["bird"][2:] == ["0", "unused"]
    monkeypatch.setattr(prompts, "confirm", lambda *a: pytest.fail("no question for an unused class"))
    assert manager.delete("bird")
    assert "bird" not in ed.project.classes

    # Back on img_0: its own history still works after the class operations (the instance keeps its class).
    _show(window, qtbot, folder / "img_0.png")
    assert [i.category for i in ed.annotations] == ["kitten", "dog"]
    assert ed.annotations.find(a1).category == "kitten"

    # --- after reopening: exactly the last state ------------------------------------------------------------
    ed.project.flush()
    counts, classes, ids = _stored(folder)
    assert counts == {"kitten": 3, "dog": 1}
    assert classes == {"img_0.png": ["kitten", "dog"], "img_1.png": ["kitten", "kitten"]}
    assert ids == {"kitten": cat_id, "dog": dog_id}


def test_recolour_and_keep_are_undoable_and_colour_the_canvas(classes_window, qtbot, image_folder):
    window, ed, manager = classes_window
    manager.add_class("cat")
    inst = _draw(ed, "a", "cat")
    before = ed.overlay.pixel(25, 25)
    assert manager.recolour("cat", "#ff0000")
    assert ed.overlay.pixel(25, 25) == int(pack_argb((255, 0, 0))) != before
    assert ed.overlay.annotation_color(inst) == (255, 0, 0)
    assert ed.project.classes.get("cat").colour == "#ff0000"
    _undo(window, qtbot)
    assert ed.overlay.pixel(25, 25) == before and ed.project.classes.get("cat").colour == ""
    _redo(window, qtbot)
    assert ed.overlay.pixel(25, 25) == int(pack_argb((255, 0, 0)))

    manager.add_class("fish")
    assert [c.name for c in ed.project.exported_classes()] == ["cat"]
    manager.panel.select("fish")
    manager.panel.keep_box.setChecked(True)
    assert ed.project.classes.get("fish").keep
    assert manager.panel.row_texts()["fish"][3] == "unused, kept"
    assert [c.name for c in ed.project.exported_classes()] == ["cat", "fish"]
    _undo(window, qtbot)
    assert not ed.project.classes.get("fish").keep
    ed.project.flush()
    project = Project.open(image_folder)
    assert project.classes.get("cat").colour == "#ff0000" and not project.classes.get("fish").keep
    project.close()


def test_new_instances_take_the_class_shown_in_the_picker_never_the_first(
    classes_window, qtbot, image_folder, monkeypatch
):
    window, ed, manager = classes_window
    project = ed.project
    project.classes.ensure("cat")
    project.classes.ensure("dog")
    project.classes.ensure(IGNORE)  # e.g. an old project: it is still never offered
    ed.refresh_current()
    # Nothing chosen yet: both pickers say so, and drawing asks instead of using "cat".
    assert ed.current_class is None
    assert ed.class_row.class_combo.currentIndex() == -1 and manager.picker.currentIndex() == -1
    # The instance list's class picker is on screen (the toolbar one too when the window is wide enough).
    assert ed.class_row.class_combo.isVisibleTo(window) and ed.class_row.class_combo.placeholderText()
    assert manager.picker.placeholderText() == ed.class_row.class_combo.placeholderText()
    offered = [manager.picker.itemText(i) for i in range(manager.picker.count())]
    assert offered == ["cat", "dog"]
    assert [ed.class_row.class_combo.itemText(i) for i in range(ed.class_row.class_combo.count())] == ["cat", "dog"]
    asked: list[list[str]] = []

    def pick(parent, names, current, title, allow_new=True):
        asked.append(list(names))
        return "dog"

    monkeypatch.setattr(controller_module, "pick_class", pick)
    assert ed.add_polygon_instance(_square("a"))
    assert asked and ed.annotations.instances[-1].category == "dog"
    assert ed.current_class == "dog" and manager.picker.currentText() == "dog"
    assert ed.class_row.class_combo.currentText() == "dog"

    # Choosing in the toolbar picker sets the class of the next instance (and the dock shows it).
    manager.picker.activated.emit(manager.picker.findText("cat"))
    assert ed.current_class == "cat" and ed.class_row.class_combo.currentText() == "cat"
    ed.select(-1)
    assert ed.add_polygon_instance(_square("b"))
    assert ed.annotations.instances[-1].category == "cat"
    assert len(asked) == 1  # a class was chosen: no question
    # The counts follow edits a moment later (one query after a pause, not one per stroke).
    assert manager.panel.isVisible()
    qtbot.waitUntil(lambda: manager.panel.row_texts().get("cat", [""] * 3)[2] == "1", timeout=3000)
    row = manager.panel.row_texts()
    assert row["dog"][2] == "1" and IGNORE not in row

    # The search dialog never offers __ignore__, not even as a new class.
    dialog = ClassPickerDialog(None, ["cat", IGNORE, "dog"])
    assert dialog.visible_names() == ["cat", "dog"]
    dialog.filter_edit.setText(IGNORE)
    assert dialog.visible_names() == []
    dialog.deleteLater()
    # Nor can a class be added under that name.
    assert not manager.add_class(IGNORE)
    assert [c for c in ed.project.classes.names if c == IGNORE] == [IGNORE]  # only the old entry


def test_steps_on_other_images_follow_a_class_operation_and_its_undo(classes_window, qtbot, image_folder):
    """Image steps keep snapshots: after a rename is undone from another image, redoing a step
    made under the new name gives the old name (the renamed class is not brought back)."""
    window, ed, manager = classes_window
    assert manager.add_class("cat")
    _draw(ed, "a", "cat")
    assert manager.rename("cat", "kitten")
    _show(window, qtbot, image_folder / "img_1.png")
    _draw(ed, "b", "kitten")  # a step made after the rename, on another image
    _show(window, qtbot, image_folder / "img_0.png")
    _undo(window, qtbot)  # img_0's last step is older than the rename: the rename is undone
    assert ed.project.classes.names == ["cat"]
    _show(window, qtbot, image_folder / "img_1.png")
    assert [i.category for i in ed.annotations] == ["cat"]
    _undo(window, qtbot)
    assert len(ed.annotations) == 0
    _redo(window, qtbot)
    assert [i.category for i in ed.annotations] == ["cat"]
    assert ed.project.classes.names == ["cat"]  # "kitten" did not come back
    ed.project.flush()
    counts, classes, _ = _stored(image_folder)
    assert counts == {"cat": 2} and classes == {"img_0.png": ["cat"], "img_1.png": ["cat"]}


def test_undoing_the_addition_of_a_class_in_use_keeps_it(classes_window, qtbot, image_folder, errors):
    window, ed, manager = classes_window
    assert manager.add_class("bird")
    _show(window, qtbot, image_folder / "img_1.png")
    _draw(ed, "a", "bird")
    _show(window, qtbot, image_folder / "img_0.png")  # no step of its own: Ctrl+Z reaches the class step
    _undo(window, qtbot)
    assert "bird" in ed.project.classes and errors and "in use" in errors[-1][1]
    _redo(window, qtbot)
    assert ed.project.classes.names == ["bird"]


def test_the_panel_buttons_ask_and_act(classes_window, qtbot, image_folder, monkeypatch):
    from app.editing import class_ops

    window, ed, manager = classes_window
    panel = manager.panel
    monkeypatch.setattr(prompts, "ask_text", lambda parent, title, label, text="": "cat")
    qtbot.mouseClick(panel.buttons["add"], Qt.MouseButton.LeftButton)
    monkeypatch.setattr(prompts, "ask_text", lambda parent, title, label, text="": "dog")
    qtbot.mouseClick(panel.buttons["add"], Qt.MouseButton.LeftButton)
    assert list(panel.row_texts()) == ["cat", "dog"] and ed.current_class == "dog"
    _draw(ed, "a", "cat")
    _draw(ed, "b", "dog")
    assert not panel.buttons["rename"].isEnabled()  # nothing selected
    panel.select("cat")
    monkeypatch.setattr(prompts, "ask_text", lambda parent, title, label, text="": f"{text}s")
    qtbot.mouseClick(panel.buttons["rename"], Qt.MouseButton.LeftButton)
    assert list(panel.row_texts()) == ["cats", "dog"]
    monkeypatch.setattr(prompts, "ask_colour", lambda parent, title, current="": "#00ff00")
    panel.select("dog")
    qtbot.mouseClick(panel.buttons["recolour"], Qt.MouseButton.LeftButton)
    assert ed.project.classes.get("dog").colour == "#00ff00" and ed.class_row.class_colours["dog"] == (0, 255, 0)
    offered: list[list[str]] = []
    monkeypatch.setattr(class_ops, "pick_class", lambda parent, names, *a, **k: offered.append(names) or "cats")
    qtbot.mouseClick(panel.buttons["merge"], Qt.MouseButton.LeftButton)
    assert offered == [["cats"]] and [i.category for i in ed.annotations] == ["cats", "cats"]
    panel.select("cats")
    monkeypatch.setattr(prompts, "confirm", lambda parent, title, text: "2 instances" in text)
    qtbot.mouseClick(panel.buttons["delete"], Qt.MouseButton.LeftButton)
    assert panel.row_texts() == {} and len(ed.annotations) == 0
    assert window.class_manager is manager and manager.panel.windowTitle() == "Classes"
