"""Inference through the worker thread: results keyed by path, folder runs with cancel, model errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import write_image
from gui_fakes import FakeSegmenter

from app.image_loader import normalise_path
from app.model_catalog import DEMO_KEY, demo_is_placeholder


def _open(window, qtbot, path: Path) -> None:
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(path))


def test_run_current_through_worker(window, qtbot, image_folder, fake_model):
    _open(window, qtbot, image_folder / "img_1.png")
    composites = window.canvas.overlay.composite_count
    with qtbot.waitSignal(window.predictionArrived, timeout=10000) as blocker:
        window.actions_.run.trigger()
    # The worker composited the mask layer for the current threshold: the GUI thread did not.
    assert window.canvas.overlay.composite_count == composites
    assert window.canvas.overlay.fill.qimage is not None
    path = normalise_path(image_folder / "img_1.png")
    assert blocker.args == [path]
    assert fake_model.calls == 1
    pred = window.current_prediction
    assert pred is window.predictions[path] and len(pred.instances) == 3
    assert window.file_list.state(path).predicted
    assert window.canvas.overlay.prediction_count == 3
    assert list(window.canvas.overlay.visible) == [True, True, False]  # 0.30 is under the 0.5 default
    assert window.time_label.text().endswith("ms")


def test_switching_images_while_running_is_safe(window, qtbot, image_folder):
    slow = FakeSegmenter(delay=0.6)
    with qtbot.waitSignal(window.models.modelReady, timeout=10000):
        window.use_segmenter(slow, "slow fake")
    first = normalise_path(image_folder / "img_0.png")
    second = normalise_path(image_folder / "img_1.png")
    _open(window, qtbot, Path(first))
    with qtbot.waitSignal(window.predictionArrived, timeout=10000) as blocker:
        window.run_current()
        with qtbot.waitSignal(window.imageShown, timeout=10000):
            window.show_file(second)  # switch while the model works on the first image
    assert blocker.args == [first]
    assert window.current_image_path == second
    assert window.current_prediction is None  # the result belongs to the first image only
    assert window.canvas.overlay.prediction_count == 0
    assert window.file_list.state(first).predicted
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.show_file(first)  # going back shows the cached result
    assert window.current_prediction is window.predictions[first]
    assert window.canvas.overlay.prediction_count == 3
    assert window.instance_list.model.rowCount() == 3 and window.instance_list.visible_row_count() == 2


def test_folder_run_marks_every_image_and_broken_ones(window, qtbot, image_folder, fake_model, errors):
    with qtbot.waitSignal(window.imageFailed, timeout=10000):
        window.open_folder(str(image_folder))
    with qtbot.waitSignal(window.folderRunFinished, timeout=20000) as blocker:
        window.run_folder()
    assert blocker.args == [4, 4, False]
    for name in ("img_0.png", "img_1.png", "img_2.png"):
        assert window.file_list.state(normalise_path(image_folder / name)).predicted
    broken = normalise_path(image_folder / "broken.jpg")
    assert window.file_list.state(broken).error and broken not in window.predictions
    assert errors == []  # a folder run reports unreadable files in the list and the status bar
    assert "could not be read" in window.statusBar().currentMessage()
    assert not window.progress_bar.isVisible()


def test_folder_run_cancel(window, qtbot, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        write_image(folder / f"p{i}.png", 64, 48, seed=i)
    slow = FakeSegmenter(delay=0.25)
    with qtbot.waitSignal(window.models.modelReady, timeout=10000):
        window.use_segmenter(slow, "slow fake")
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_folder(str(folder))
    with qtbot.waitSignal(window.predictionArrived, timeout=10000):
        window.run_folder()
    assert window.progress_bar.isVisible() and window.cancel_button.isVisible()
    with qtbot.waitSignal(window.folderRunFinished, timeout=10000) as blocker:
        window.cancel_button.click()
    done, total, cancelled = blocker.args
    assert cancelled and total == 6 and done < 6
    assert len(window.predictions) == done
    assert not window.cancel_button.isVisible()


def test_real_maskrcnn_through_worker(window, qtbot, tmp_path):
    """The demo model (small Mask R-CNN; random init until trained weights ship) end to end."""
    path = write_image(tmp_path / "tiny.png", 96, 80)
    _open(window, qtbot, path)
    with qtbot.waitSignal(window.models.modelReady, timeout=180000) as blocker:
        window.models.choose(DEMO_KEY)
    segmenter = blocker.args[0]
    assert segmenter.architecture == "maskrcnn"
    assert ("untrained placeholder" in window.windowTitle()) == demo_is_placeholder()
    assert "loading" not in window.model_label.text()
    assert window.device_label.text() == str(segmenter.device).upper()
    with qtbot.waitSignal(window.predictionArrived, timeout=120000):
        window.run_current()
    pred = window.current_prediction
    assert pred.image_size == (80, 96)
    assert pred.class_names == segmenter.class_names
    scores = [inst.score for inst in pred.instances]
    assert scores == sorted(scores, reverse=True)
    assert window.canvas.overlay.prediction_count == len(pred.instances)


def test_bad_weights_file_shows_dialog_and_keeps_model(window, qtbot, tmp_path, fake_model, errors):
    bad = tmp_path / "mine.safetensors"
    bad.write_bytes(b"\x00garbage")
    with qtbot.waitSignal(window.worker.modelFailed, timeout=30000):
        window.models.load_weights_file(str(bad))
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=3000)
    title, message = errors[0]
    assert title == "Could not load model"
    assert "mine.safetensors" in message and "Load weights" in message
    assert "Still using: fake" in message
    assert window.models.active.label == "fake" and not window.models.loading
    assert window.models.combo.currentText() == "fake"


def test_pth_asks_which_model(window, qtbot, tmp_path, fake_model, errors, monkeypatch):
    from app import dialogs

    asked = []
    monkeypatch.setattr(
        dialogs, "ask_model_kind", lambda parent, name, options, guess: asked.append((name, options[guess])) or None
    )
    weights = tmp_path / "yolact_resnet50_54_800000.pth"
    weights.write_bytes(b"not a pickle")
    window.models.load_weights_file(str(weights))
    assert asked == [("yolact_resnet50_54_800000.pth", ("YOLACT ResNet-50 (COCO)", "yolact", "yolact_resnet50"))]
    assert window.models.active.label == "fake"  # cancelled: nothing changes


def test_run_without_image_or_model(window, errors):
    window.run_current()
    assert "Open an image first" in window.statusBar().currentMessage()
    assert errors == []
    window.run_folder()
    assert "Open a folder first" in window.statusBar().currentMessage()


def test_prediction_state_api(window, qtbot, image_folder):
    _open(window, qtbot, image_folder / "img_2.png")
    seen = []
    window.predictionChanged.connect(lambda: seen.append(window.current_prediction))
    pred = FakeSegmenter().predict(window.current_image)
    window.set_prediction(window.current_image_path, pred)
    assert seen == [pred]
    assert isinstance(window.current_image, np.ndarray) and window.current_image.shape == (120, 192, 3)


def test_missing_yolact_weights_says_what_to_do(window, qtbot, fake_model, errors, monkeypatch, tmp_path):
    monkeypatch.setenv("MASKSCOPE_WEIGHTS_DIR", str(tmp_path))  # nothing there, whatever the machine has
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with qtbot.waitSignal(window.worker.modelFailed, timeout=60000):
        window.models.choose("yolact_r50_coco")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=3000)
    message = errors[0][1]
    assert "yolact_resnet50_54_800000.pth" in message and str(tmp_path) in message
    assert "Load weights" in message
    assert window.models.active.label == "fake"


def test_start_up_run_waits_for_the_model_chosen_after_the_image(window, qtbot, image_folder, errors):
    # At start-up a small image can be on screen before the demo model is chosen (after the first paint).
    path = image_folder / "img_0.png"
    _open(window, qtbot, path)
    assert window.models.requested is None and window.models.active is None
    window.request_auto_run(str(path))
    assert errors == []  # no "Choose a model first": the run waits
    with qtbot.waitSignal(window.predictionArrived, timeout=10000):
        window.use_segmenter(FakeSegmenter(), "fake")
    assert window.current_prediction is not None and errors == []
