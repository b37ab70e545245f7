"""Predicting the images not yet done into a new prediction run of the store (no Qt, stub model)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.masks import CroppedMask
from engine.predict_run import file_sha256, images_not_done, predict_into_store
from engine.project import Project, store_path_for
from engine.segmenter import Instance, Prediction

H, W = 30, 40


class Stub:
    """One square per image, its score from the image's mean colour (so images differ)."""

    class_names = ["cat", "dog"]

    def __init__(self) -> None:
        self.seen = 0

    def predict(self, image: np.ndarray) -> Prediction:
        self.seen += 1
        h, w = image.shape[:2]
        bits = np.ones((10, 12), bool)
        inst = Instance(
            1, float(image.mean()) / 255.0, np.array([2, 3, 14, 13], np.float32), CroppedMask(2, 3, bits, (h, w))
        )
        return Prediction((h, w), [inst], list(self.class_names))


def _folder(tmp_path):
    for k, n in enumerate(("a.png", "b.png", "c.png", "d.png")):
        Image.new("RGB", (W, H), (40 * k, 40 * k, 40 * k)).save(tmp_path / n)
    project = Project.open(tmp_path)
    project.set_done("a.png")
    project.close()
    return tmp_path


def test_predicts_the_images_not_done_into_a_new_active_run(tmp_path):
    folder = _folder(tmp_path)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"weights")
    project = Project.open(folder)
    todo = images_not_done(project.image_names(), {n: s.status for n, s in project.summaries().items()})
    project.close()
    assert todo == ["b.png", "c.png", "d.png"]
    seen = []
    stub = Stub()
    result = predict_into_store(
        store_path_for(folder), folder, todo + ["gone.png"], stub, "maskrcnn (fine-tuned)", weights,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert result.done == 3 and not result.cancelled and stub.seen == 3
    assert [n for n, _ in result.failed] == ["gone.png"]
    assert seen[-1] == (4, 4) and "3 of 4 images" in result.summary()

    project = Project.open(folder)
    run = project.runs()[-1]
    assert run.id == result.run_id == project.active_run
    assert run.class_names == ["cat", "dog"] and run.weights_sha256 == file_sha256(weights)
    assert run.model == "maskrcnn (fine-tuned)"
    preds = project.predictions("c.png")
    assert len(preds) == 1 and preds[0].label == 1 and preds[0].review == "pending"
    assert preds[0].mask().area == 120
    assert project.predictions("a.png") == []  # done: not predicted again
    assert project.status("b.png") == "predicted" and project.status("a.png") == "done"
    project.close()


def test_cancel_keeps_the_images_finished_so_far(tmp_path):
    folder = _folder(tmp_path)
    stub = Stub()
    result = predict_into_store(
        store_path_for(folder), folder, ["b.png", "c.png", "d.png"], stub, "m", cancel=lambda: stub.seen >= 1
    )
    assert result.cancelled and result.done == 1 and stub.seen == 1
    project = Project.open(folder)
    assert len(project.predictions("b.png", result.run_id)) == 1
    assert project.predictions("c.png", result.run_id) == []
    project.close()
