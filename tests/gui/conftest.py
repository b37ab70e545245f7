"""GUI test setup: offscreen Qt, settings in a temp folder, a window with fast fake models."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One device pixel ratio and font DPI for every GUI test (the pixel snapshots are taken at 1): a
# scale factor set in the shell would change text metrics and so every layout. Tests of scaling
# start their own process with the factor they need (test_window_polish.py).
for _var in ("QT_SCALE_FACTOR", "QT_SCREEN_SCALE_FACTORS", "QT_FONT_DPI"):
    os.environ.pop(_var, None)

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from app import dialogs  # noqa: E402
from app.settings import AppSettings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory):
    """Belt and braces: even a default QSettings lands in a temp folder, never the user's."""
    root = tmp_path_factory.mktemp("qsettings")
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(root))
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, str(root))
    os.environ["MASKSCOPE_SETTINGS"] = str(root / "default.ini")
    yield


@pytest.fixture
def settings(tmp_path) -> AppSettings:
    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def errors(monkeypatch) -> list[tuple[str, str]]:
    """Dialogs never block: every error box is recorded here instead."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg, details=None: shown.append((title, msg)))
    monkeypatch.setattr(dialogs, "show_info", lambda parent, title, msg: shown.append((title, msg)))
    return shown


def write_image(path: Path, w: int = 160, h: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (9, 9), 3)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"img_{i}.png", 160 + 16 * i, 120, seed=i)
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG at all")
    return folder


@pytest.fixture
def new_window(qtbot, settings, errors):
    """Opens a shown main window, as a new session of the app would (same settings); every one
    made is shut down at the end of the test."""
    from app.main_window import MainWindow

    made: list[MainWindow] = []

    def make() -> MainWindow:
        win = MainWindow(settings=settings, torch_threads=1)
        qtbot.addWidget(win)
        win.resize(900, 650)
        win.show()
        qtbot.waitExposed(win)
        made.append(win)
        return win

    yield make
    for win in made:
        win.shutdown()


@pytest.fixture
def window(new_window):
    return new_window()


@pytest.fixture
def fake_model(window, qtbot):
    from gui_fakes import FakeSegmenter

    seg = FakeSegmenter()
    with qtbot.waitSignal(window.models.modelReady, timeout=10000):
        window.use_segmenter(seg, "fake")
    return seg


@pytest.fixture
def update_snapshots(request) -> bool:
    """True under ``pytest --update-snapshots`` (see scripts/update_snapshots.py)."""
    return bool(request.config.getoption("--update-snapshots"))
