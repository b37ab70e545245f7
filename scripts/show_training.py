"""Show fine-tuning from the app (for screenshots and a quick look).

Generates a small annotated shapes project in a temporary folder, opens it in the main window
(with the editing tools, so the annotations are on screen and the project is the training data),
and starts a short training run from the Training dock: the progress bar, the live loss curves and,
at the end, the before/after AP table fill in while the window stays usable. Starts from the demo
model when one is installed, else from a small randomly initialised Mask R-CNN. Nothing is written
outside the temporary folder.

    python scripts/show_training.py [--seconds N] [--epochs E]   (quits after N seconds; default: stays open)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_project(folder: Path, n_images: int, size: int) -> list[str]:
    """Images and their annotations.json in one folder (a MaskScope project); returns the classes."""
    from engine.synthetic import DEMO_CLASSES, write_coco_dataset

    data = write_coco_dataset(folder / "gen", n_images, size, DEMO_CLASSES, seed=77, n_objects=(2, 4))
    for image in (data.parent / "images").iterdir():
        shutil.move(str(image), folder / image.name)
    shutil.move(str(data), folder / "annotations.json")
    shutil.rmtree(data.parent)
    return list(DEMO_CLASSES)


def starting_weights(folder: Path, classes: list[str], size: int) -> str:
    """The demo model when installed; else a small random Mask R-CNN for ``size`` px images."""
    from app.training.options import DEMO_FILES

    if DEMO_FILES["maskrcnn"].is_file():
        return str(DEMO_FILES["maskrcnn"])
    import torch

    from engine.maskrcnn import create

    torch.manual_seed(0)
    seg = create("maskrcnn_r18_fpn", "random", "cpu", classes, min_size=size, max_size=size)
    return str(seg.save(folder.parent / "start.safetensors"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="maskscope_train_"))
    os.environ.setdefault("MASKSCOPE_SETTINGS", str(tmp / "settings.ini"))
    project = tmp / "shapes_project"
    project.mkdir()
    size = 128
    classes = make_project(project, args.images, size)
    weights = starting_weights(project, classes, size)

    from PySide6.QtCore import Qt, QTimer

    from app.application import create_application
    from app.main_window import MainWindow
    from app.training import install_training

    app = create_application()
    window = MainWindow()
    try:
        from app.editing import install_editing, prompts

        prompts.ask_save_changes = lambda parent, text: "discard"  # a demo: never ask on quit
        from app import dialogs

        dialogs.show_info = lambda *args, **kwargs: None  # the store-created note would block the run
        install_editing(window)
    except Exception as exc:  # the editing tools are optional here: train on the COCO file then
        print(f"editing tools not available ({exc}); training on the COCO file", file=sys.stderr)
    training = install_training(window)
    training.worker_threads = max(1, (os.cpu_count() or 2) - 1)
    window.resize(1500, 940)
    window.show()

    form = training.dock.form
    form.runs_edit.setText(str(tmp / "runs"))
    form.set_weights_file(weights)
    form.epochs.setValue(args.epochs)
    form.batch.setValue(2)
    form.val.setValue(25)
    form.optimizer.setCurrentIndex(form.optimizer.findData("adamw"))
    form.lr.setValue(3e-4)
    form.freeze.setCurrentIndex(form.freeze.findData(0))
    form.device.setCurrentIndex(form.device.findData("auto"))

    def begin() -> None:
        training.refresh_sources()
        if form.source.findData("project") >= 0:
            form.source.setCurrentIndex(form.source.findData("project"))
        else:
            form.set_coco(str(project / "annotations.json"), str(project))
        training.show_dock()
        window.resizeDocks([training.dock], [400], Qt.Orientation.Vertical)
        training.start()

    def when_shown(_path: str) -> None:
        window.imageShown.disconnect(when_shown)
        QTimer.singleShot(300, begin)

    window.imageShown.connect(when_shown)
    window.open_folder(str(project))
    if args.seconds > 0:
        QTimer.singleShot(int(args.seconds * 1000), window.close)
    code = app.exec()
    training.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
