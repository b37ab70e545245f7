"""Suite-wide settings: tests run torch on one thread (the CI machine has 2 cores and Qt's
GUI thread needs one; oversubscribed OpenMP threads made tests several times slower). Also the
fixtures that tests in more than one folder share."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here (not in tests/gui) so that the option is known however the suite is started.
    parser.addoption(
        "--update-snapshots",
        action="store_true",
        help="rewrite the GUI pixel-snapshot references (tests/gui/snapshots) instead of comparing",
    )


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory):
    """Stores of read-only or bundled folders go to a temp folder, never the user's data directory."""
    os.environ["MASKSCOPE_DATA_DIR"] = str(tmp_path_factory.mktemp("maskscope_data"))
    yield


@pytest.fixture(scope="module")
def tiny_train_set(tmp_path_factory) -> dict:
    """5 generated 64-96 px images of two classes and a small random Mask R-CNN checkpoint
    (64-96 px input) for them: what the training worker and the Training dock tests train on."""
    from engine.maskrcnn import create
    from engine.synthetic import write_coco_dataset

    classes = ["circle", "square"]
    root = tmp_path_factory.mktemp("tiny_train")
    data: Path = write_coco_dataset(root / "data", 5, (64, 96), classes, seed=4)
    torch.manual_seed(0)
    seg = create("maskrcnn_r18_fpn", "random", "cpu", classes, min_size=64, max_size=96)
    return {"data": data, "weights": seg.save(root / "tiny.safetensors"), "classes": classes}
