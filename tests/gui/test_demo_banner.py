"""The demo banner: shown over the canvas for a demo model's result, not for other models, closable,
and its link opens Model > Manage models."""

from __future__ import annotations

from conftest import write_image
from gui_fakes import FakeSegmenter

from app.demo_banner import DEMO_SHAPES, MANAGE_MODELS, banner_text, is_demo_choice
from app.model_catalog import DEMO_KEY, DEMO_YOLACT_CHOICE, choice_by_key, choice_for_file


def _load(window, qtbot, choice) -> None:
    with qtbot.waitSignal(window.models.modelReady, timeout=10000):
        window.worker.set_segmenter(choice, FakeSegmenter())


def _predict(window, qtbot, path) -> None:
    if window.current_image is None:
        with qtbot.waitSignal(window.imageShown, timeout=10000):
            window.open_image(str(path))
    pred = FakeSegmenter().predict(window.current_image)
    window.set_prediction(window.current_image_path, pred)


def test_demo_choices_are_recognised(tmp_path):
    assert is_demo_choice(choice_by_key(DEMO_KEY)) and is_demo_choice(DEMO_YOLACT_CHOICE)
    assert not is_demo_choice(choice_by_key("maskrcnn_r50_coco"))
    assert not is_demo_choice(choice_for_file(tmp_path / "demo_mine.safetensors", "maskrcnn", None))
    assert not is_demo_choice(None)
    text = banner_text()
    assert all(shape in text for shape in DEMO_SHAPES) and MANAGE_MODELS in text


def test_banner_follows_the_model_and_stays_closed(window, qtbot, tmp_path):
    banner = window.demo_banner
    image = write_image(tmp_path / "photo.png", 320, 240)
    assert not banner.isVisible()

    _load(window, qtbot, choice_by_key(DEMO_KEY))
    _predict(window, qtbot, image)
    assert banner.isVisible()
    # Non-blocking: a child of the canvas floating at its top edge, not a dialog or a layout item.
    assert banner.parentWidget() is window.canvas and not banner.isWindow()
    assert banner.y() < 20 and banner.width() <= window.canvas.width()

    _load(window, qtbot, choice_by_key("maskrcnn_r50_coco"))
    assert not banner.isVisible()

    _load(window, qtbot, DEMO_YOLACT_CHOICE)
    _predict(window, qtbot, image)
    assert banner.isVisible()
    banner.close_button.click()
    assert not banner.isVisible()
    _predict(window, qtbot, image)
    assert not banner.isVisible()  # closed for the session


def test_link_opens_the_model_manager(window, qtbot, monkeypatch):
    opened: list[bool] = []
    monkeypatch.setattr(window.models, "open_manager", lambda: opened.append(True))
    window.demo_banner.label.linkActivated.emit("manage")
    assert opened == [True]
