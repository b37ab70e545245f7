"""The review loop on the real window: a folder run is stored, reviewed, and found again in a new
session without re-running; undo of accept/reject restores review states; done marks, next
image needing review, review order by uncertainty, a second model's run beside the first."""

from __future__ import annotations

from gui_fakes import FakeSegmenter
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.editing import install_editing
from app.image_loader import normalise_path
from app.instance_list import COL_STATE
from app.selection import prediction_key
from engine.project import store_path_for
from engine.store.store import ProjectStore


def _run_folder(window, qtbot, image_folder, seg=None, label="fake"):
    ed = install_editing(window)
    seg = seg or FakeSegmenter()
    with qtbot.waitSignal(window.models.modelReady, timeout=10000):
        window.use_segmenter(seg, label)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image_folder / "img_0.png"))  # the folder's first file is broken.jpg
    with qtbot.waitSignal(window.folderRunFinished, timeout=30000):
        window.run_folder()
    qtbot.waitUntil(lambda: window.current_prediction is not None, timeout=5000)
    qtbot.waitUntil(lambda: ed.review.writes_in_flight == 0, timeout=5000)  # the writer stored them all
    return ed, seg


def _path(folder, name):
    return normalise_path(folder / name)


def _reviews_on_disk(folder, name="img_0.png"):
    store = ProjectStore(store_path_for(folder), readonly=True)
    try:
        run = store.runs()[-1].id
        return [p.review for p in store.predictions(name, run)]
    finally:
        store.close()


def test_a_reviewed_folder_run_is_there_in_a_new_session_without_running(
    window, new_window, qtbot, image_folder, errors
):
    ed, seg = _run_folder(window, qtbot, image_folder)
    assert seg.calls == 3  # broken.jpg cannot be read
    img0 = _path(image_folder, "img_0.png")
    assert window.current_image_path == img0
    window.select_instance(1)
    ed.actions.reject.trigger()
    window.select_instance(0)
    ed.actions.accept.trigger()
    assert list(window.canvas.overlay.visible) == [False, False, False]
    assert window.file_list.state(img0).pending == 0 and window.file_list.state(img0).annotations == 1
    assert window.file_list.state(_path(image_folder, "img_1.png")).pending == 2  # 0.95 and 0.70; 0.30 is under
    window.close()

    win2 = new_window()
    ed2 = install_editing(win2)
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.open_image(str(image_folder / "img_0.png"))
    assert win2.models.active is None  # nothing ran: what is shown comes from the store
    pred = win2.current_prediction
    assert [round(i.score, 2) for i in pred.instances] == [0.95, 0.70, 0.30]
    assert [p.review for p in ed2.review.stored(img0)] == ["accepted", "rejected", "pending"]
    assert list(win2.canvas.overlay.visible) == [False, False, False]
    assert not win2.instance_list.is_checked(prediction_key(1))  # the rejected one is unticked, and says so
    assert win2.instance_list.text(prediction_key(1), COL_STATE) == "rejected"
    ann = ed2.annotations.instances
    assert [i.category for i in ann] == ["disc"] and ann[0].prediction_id == ed2.review.stored(img0)[0].id
    img1 = _path(image_folder, "img_1.png")
    assert win2.file_list.state(img1).pending == 2  # counts for images not opened yet, from the store
    assert win2.file_list.state(img0).annotations == 1
    with qtbot.waitSignal(win2.imageShown, timeout=10000):
        win2.show_file(img1)
    assert len(win2.current_prediction.instances) == 3
    assert list(win2.canvas.overlay.visible) == [True, True, False]
    assert [t for t, _ in errors] == []


def test_undo_redo_of_accept_and_reject_restores_review_states(window, qtbot, image_folder):
    ed, _ = _run_folder(window, qtbot, image_folder)
    window.select_instance(0)
    ed.accept_prediction()
    ed.reject_prediction(1)
    ed.project.flush()
    assert _reviews_on_disk(image_folder) == ["accepted", "rejected", "pending"]
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=3000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the reject
    assert [p.review for p in ed.review.stored(window.current_image_path)] == ["accepted", "pending", "pending"]
    assert list(window.canvas.overlay.visible) == [False, True, False]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the accept
    assert len(ed.annotations) == 0
    assert list(window.canvas.overlay.visible) == [True, True, False]
    ed.project.flush()
    assert _reviews_on_disk(image_folder) == ["pending", "pending", "pending"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert len(ed.annotations) == 1 and list(window.canvas.overlay.visible) == [False, True, False]
    ed.project.flush()
    assert _reviews_on_disk(image_folder) == ["accepted", "pending", "pending"]
    # Unticking a prediction in the list rejects it (one undo step); ticking it puts it back.
    window.instance_list.item(prediction_key(1)).setCheckState(Qt.CheckState.Unchecked)
    assert [p.review for p in ed.review.stored(window.current_image_path)][1] == "rejected"
    assert ed.history.group.activeStack().undoText() == "Reject Prediction #2"
    window.show_all_instances()
    assert [p.review for p in ed.review.stored(window.current_image_path)][1] == "pending"


def test_mark_done_and_next_image_needing_review(window, qtbot, image_folder):
    ed, _ = _run_folder(window, qtbot, image_folder)
    img0, img1, img2 = (_path(image_folder, f"img_{i}.png") for i in range(3))
    ed.accept_all_predictions()
    ed.actions.mark_done.trigger()
    assert window.file_list.state(img0).done
    assert ed.project.status("img_0.png") == "done"
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        ed.actions.next_review.trigger()
    assert window.current_image_path == img1
    window.select_instance(0)
    ed.reject_prediction()
    ed.reject_prediction(1)
    assert window.file_list.state(img1).pending == 0
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        ed.actions.next_review.trigger()  # img_1 has nothing pending any more: img_2
    assert window.current_image_path == img2
    ed.actions.mark_done.trigger()
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        ed.actions.next_review.trigger()  # none pending anywhere: the next one not done
    assert window.current_image_path == img1
    assert "not marked done" in window.statusBar().currentMessage()
    ed.actions.mark_done.trigger()
    assert not ed.actions.next_review.trigger() and window.current_image_path == img1
    assert "Every image is marked done" in window.statusBar().currentMessage()
    ed.actions.mark_done.trigger()  # again: back in review
    assert not window.file_list.state(img1).done and ed.project.status("img_1.png") != "done"


def test_review_order_by_model_uncertainty(window, qtbot, image_folder):
    ed, _ = _run_folder(window, qtbot, image_folder)
    img0, img1, img2 = (_path(image_folder, f"img_{i}.png") for i in range(3))
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.show_file(img1)
    ed.reject_prediction(1)  # img_1's most uncertain pending prediction (0.70) is gone: margin 0.45
    combo = window.file_list.order_combo
    combo.setCurrentIndex(combo.findData("uncertainty"))
    combo.activated.emit(combo.currentIndex())
    assert window.files[:3] == [img0, img2, img1]
    assert window.files[3].endswith("broken.jpg")  # nothing to review there: last
    assert (
        window.current_image_path == img1
        and window.file_list.list.currentItem().data(Qt.ItemDataRole.UserRole + 1) == img1
    )
    combo.setCurrentIndex(combo.findData("folder"))
    combo.activated.emit(combo.currentIndex())
    assert window.files[1:] == [img0, img1, img2]


def test_a_second_models_run_is_kept_and_the_picker_switches(window, qtbot, image_folder):
    ed, _ = _run_folder(window, qtbot, image_folder)
    window.select_instance(1)
    ed.reject_prediction()
    first_run = ed.project.active_run

    class OtherFake(FakeSegmenter):
        def _predict(self, image, trace):
            pred = super()._predict(image, trace)
            pred.instances = pred.instances[:1]  # one instance only
            return pred

    with qtbot.waitSignal(window.models.modelReady, timeout=10000):
        window.use_segmenter(OtherFake(), "other")
    with qtbot.waitSignal(window.predictionArrived, timeout=10000):
        window.run_current()
    second_run = ed.project.active_run
    assert second_run != first_run
    assert len(window.current_prediction.instances) == 1
    combo = window.file_list.run_combo
    assert combo.count() == 2 and combo.currentData() == second_run
    combo.setCurrentIndex(combo.findData(first_run))
    combo.activated.emit(combo.currentIndex())
    assert ed.project.active_run == first_run
    assert len(window.current_prediction.instances) == 3
    assert [p.review for p in ed.review.stored(window.current_image_path)] == ["pending", "rejected", "pending"]
    assert list(window.canvas.overlay.visible) == [True, False, False]


def test_a_folder_run_again_resumes_the_stored_run(window, new_window, qtbot, image_folder):
    ed, _ = _run_folder(window, qtbot, image_folder)
    run = ed.project.active_run
    window.close()
    win2 = new_window()
    seg2 = FakeSegmenter()
    ed2, _ = _run_folder(win2, qtbot, image_folder, seg=seg2)
    assert seg2.calls == 0  # every readable image is in the stored run already
    assert ed2.project.active_run == run and len(ed2.project.runs()) == 1
    (image_folder / "img_3.png").write_bytes((image_folder / "img_0.png").read_bytes())  # a new image
    win2.open_image(str(image_folder / "img_0.png"))
    with qtbot.waitSignal(win2.folderRunFinished, timeout=30000):
        win2.run_folder()
    qtbot.waitUntil(lambda: ed2.review.writes_in_flight == 0, timeout=5000)
    assert seg2.calls == 1 and ed2.project.active_run == run
    assert len(ed2.project.predictions("img_3.png", run)) == 3


def test_predictions_are_stored_on_the_writer_thread(window, qtbot, image_folder, monkeypatch):
    import threading

    ed = install_editing(window)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image_folder / "img_0.png"))
    threads = []
    original = ProjectStore.add_predictions

    def recording(self, *args, **kwargs):
        threads.append(threading.current_thread())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ProjectStore, "add_predictions", recording)
    with qtbot.waitSignal(ed.review.predictionsStored, timeout=5000):
        window.set_prediction(window.current_image_path, FakeSegmenter().predict(window.current_image))
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert len(ed.review.stored(window.current_image_path)) == 3


def test_file_list_counts_follow_the_score_threshold(window, qtbot, image_folder):
    ed, _ = _run_folder(window, qtbot, image_folder)
    img1 = _path(image_folder, "img_1.png")
    assert window.file_list.state(img1).pending == 2 and window.file_list.state(img1).predicted
    assert "2 / 0" in window.file_list._items[img1].text()
    window.set_score_threshold(0.8)  # only the 0.95 one is shown now
    qtbot.waitUntil(lambda: window.file_list.state(img1).pending == 1, timeout=3000)
    assert list(window.canvas.overlay.visible) == [True, False, False]
