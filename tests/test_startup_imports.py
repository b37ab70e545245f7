"""The window opens before the heavy libraries load: importing the main window, building it and
showing it must not import torch or pyqtgraph (they cost seconds on a slow machine; the inference
worker imports torch with its first job, the plots import pyqtgraph when first shown).

Checked in a fresh interpreter, since this test process has imported both long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "pyqtgraph")

PROBE = r"""
import json, sys
heavy = {heavy!r}
loaded = lambda: [m for m in heavy if m in sys.modules]
out = {{}}
import app.main_window
out["import"] = loaded()
if {build!r}:
    from app.application import create_application
    from PySide6.QtCore import QSettings
    from app.settings import AppSettings
    qt_app = create_application([])
    window = app.main_window.MainWindow(AppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat)))
    window.show()
    qt_app.processEvents()
    out["shown"] = loaded()
    window.close()
print(json.dumps(out))
"""


def _probe(build: bool, tmp_path: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    code = PROBE.format(heavy=HEAVY, build=build)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "settings.ini")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_main_window_loads_no_heavy_library(tmp_path):
    assert _probe(False, tmp_path)["import"] == []


def test_building_and_showing_the_window_loads_no_heavy_library(tmp_path):
    out = _probe(True, tmp_path)
    assert out["import"] == [] and out["shown"] == []


LAUNCH = r"""
import json, sys
from PySide6.QtCore import QSettings, QTimer
from app import application
from app.settings import AppSettings
import app.main_window as mw

settings = AppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat))
original = mw.MainWindow.__init__
mw.MainWindow.__init__ = lambda self, *a, **k: original(self, settings, torch_threads=1)
qt_app, window = application.launch([sys.argv[2]])
out = {"before_loop": {"requested": window.models.requested is not None, "torch": "torch" in sys.modules}}
def ready(_seg):
    out["ready"] = {"model": window.models.active.key}
    qt_app.quit()
window.models.modelReady.connect(ready)
QTimer.singleShot(90000, qt_app.quit)
qt_app.exec()
print(json.dumps(out))
"""


def test_launch_shows_the_window_before_asking_for_the_demo_model(tmp_path):
    """``launch`` returns with the window shown and nothing torch-related started; the demo model is
    requested from the event loop, after the first paint, and then loads."""
    import cv2
    import numpy as np

    image = tmp_path / "photo.png"
    assert cv2.imwrite(str(image), np.full((40, 60, 3), 128, np.uint8))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(tmp_path / "settings.ini"), str(image)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["before_loop"] == {"requested": False, "torch": False}
    assert out["ready"]["model"] == "demo"


SHOW_STORED = r"""
import json, sys
from PySide6.QtCore import QSettings, QTimer
from app.application import create_application
from app.settings import AppSettings
import app.main_window as mw
qt_app = create_application([])
window = mw.MainWindow(AppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat)))
window.show()
window.open_image(sys.argv[2])
def check():
    if window.current_prediction is None:
        QTimer.singleShot(50, check)
        return
    print(json.dumps({"instances": len(window.current_prediction), "torch": "torch" in sys.modules}))
    window.close()
    qt_app.quit()
QTimer.singleShot(0, check)
QTimer.singleShot(60000, qt_app.quit)
qt_app.exec()
"""


def test_showing_stored_predictions_does_not_import_torch(tmp_path):
    """Reopening a folder shows its stored run without the model: torch must not load on the GUI thread
    for that (a 1.2 s freeze when it did)."""
    import numpy as np
    from PIL import Image

    from engine.masks import CroppedMask
    from engine.prediction import Instance, Prediction
    from engine.project import Project

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (64, 48)).save(folder / "a.png")
    project = Project.open(folder)
    full = np.zeros((48, 64), bool)
    full[4:20, 5:30] = True
    box = np.array([5, 4, 30, 20], np.float32)
    run = project.add_run("m", {"class_names": ["cat"]})
    project.add_predictions(
        run, "a.png", Prediction((48, 64), [Instance(0, 0.9, box, CroppedMask.from_full(full))], ["cat"])
    )
    project.close()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", SHOW_STORED, str(tmp_path / "settings.ini"), str(folder / "a.png")],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"instances": 1, "torch": False}
