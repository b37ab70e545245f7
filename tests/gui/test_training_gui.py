"""Fine-tuning from the app: the Training dock drives a real worker process on a tiny generated set.

A full run fills the loss curves, the progress bar and the before/after AP table, and its weights
become the current model; cancel mid-run stops within an iteration while the window keeps working;
a worker that fails (bad data) or dies (killed) is reported in the dock, never as a crash or a
modal dialog. The process wrapper is also tested with stand-in workers (partial lines, a kill).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt, QTimer

from app.training import TrainingController, install_training
from app.training.process import TrainingProcess
from app.training.setup_form import SOURCE_COCO, SOURCE_PROJECT, START_FILE

RUN_TIMEOUT_MS = 120_000


@pytest.fixture
def training(window, tiny_train_set, tmp_path) -> TrainingController:
    ctl = install_training(window)
    ctl.worker_threads = 1
    form = ctl.dock.form
    form.set_coco(str(tiny_train_set["data"]))
    form.set_weights_file(str(tiny_train_set["weights"]))
    form.epochs.setValue(1)
    form.batch.setValue(2)
    form.val.setValue(20)
    form.device.setCurrentIndex(form.device.findData("cpu"))
    form.runs_edit.setText(str(tmp_path / "runs"))
    ctl.show_dock()
    yield ctl
    if ctl.running:
        ctl.process.kill()
        ctl.process._proc.waitForFinished(5000)


class GapMeter:
    """Ticks every 50 ms on the GUI thread; the longest gap shows whether the event loop ever stalled."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.longest = 0.0
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        self.timer.start(50)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now


def test_training_run_fills_dock_and_uses_weights(window, qtbot, training, tiny_train_set, errors):
    assert install_training(window) is training and window.training is training
    assert "&Train" in [a.text() for a in window.menuBar().actions()]
    dock = training.dock
    assert dock.form.values().start.from_checkpoint and not dock.form.config.isEnabled()
    meter = GapMeter()
    with qtbot.waitSignal(training.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        qtbot.mouseClick(dock.start_button, Qt.MouseButton.LeftButton)
        assert training.running and dock.cancel_button.isEnabled() and not dock.form.isEnabled()
    meter.timer.stop()
    assert finished.args == ["done"], dock.error_label.text() + dock.log.toPlainText()[-2000:]
    assert meter.longest < 2.0  # the GUI never waited on the worker

    # progress bar and curves: one point per iteration for every loss component and the total
    assert dock.progress.maximum() == 2 and dock.progress.value() == 2
    for key in ("loss_mask", "loss_classifier", "loss_objectness", "total"):
        x, y = dock.plot.series(key)
        assert x == [1.0, 2.0] and all(v > 0 for v in y), key
    qtbot.waitUntil(lambda: dock.plot.drawn_points("loss_mask") == 2, timeout=3000)
    legend = [label.text for _, label in dock.plot.legend.items]
    assert "loss_mask" in legend and "total" in legend
    assert "images/s" in dock.stats_label.text()

    # before/after table from the worker's eval messages
    table = dock.table
    assert table.before is not None and table.after is not None
    for row in ("Mask AP", "Mask AP50", "Mask AP75", "Box AP"):
        assert table.value(row, "Before") != "" and table.value(row, "After") != ""
    assert "circle: mask AP" in table.row_labels() and "square: box AP" in table.row_labels()
    assert table.value("Mask AP", "After") == f"{100 * training.after['mask']['AP']:.1f}"
    assert "1 held-out image" in dock.results_label.text()
    assert "Finished" in dock.status_label.text()

    run_dir = Path(training.run_dir)
    assert json.loads((run_dir / "job.json").read_text())["threads"] == 1
    ckpt = training.checkpoint
    assert ckpt == str(run_dir / "model_final.safetensors") and Path(ckpt).is_file()

    # one click: the trained weights become the current model (loaded by the inference worker)
    assert dock.use_button.isEnabled() and training.use_action.isEnabled()
    with qtbot.waitSignal(window.models.modelReady, timeout=30_000) as ready:
        qtbot.mouseClick(dock.use_button, Qt.MouseButton.LeftButton)
    assert window.models.active.weights == str(Path(ckpt).resolve())
    assert ready.args[0].class_names == tiny_train_set["classes"]
    assert errors == []


def test_cancel_mid_run_keeps_gui_alive(window, qtbot, training, image_folder, errors):
    dock = training.dock
    form = dock.form
    form.epochs.setValue(40)
    form.batch.setValue(4)
    form.val.setValue(0)
    assert training.start()
    window.open_folder(str(image_folder))  # browsing while training runs
    qtbot.waitUntil(lambda: training.last_progress is not None, timeout=RUN_TIMEOUT_MS)
    window.next_image()
    assert 0 < dock.progress.value() < dock.progress.maximum()
    at_cancel = training.last_progress["iteration"]  # read just before the click: no event in between
    with qtbot.waitSignal(training.runFinished, timeout=60_000) as finished:
        qtbot.mouseClick(dock.cancel_button, Qt.MouseButton.LeftButton)
        assert dock.cancel_button.text() == "Stop now"  # a second click would kill it
    assert finished.args == ["cancelled"]
    assert training.last_progress["iteration"] <= at_cancel + 1  # stopped within one iteration
    assert "Cancelled after" in dock.status_label.text()
    assert Path(training.checkpoint).name == "last.safetensors" and Path(training.checkpoint).is_file()
    assert dock.use_button.text() == "Use the last saved weights" and dock.use_button.isEnabled()
    assert dock.start_button.isEnabled() and dock.form.isEnabled() and not dock.cancel_button.isEnabled()
    assert window.isVisible() and window.current_image_path is not None
    assert dock.results_label.text().startswith("No held-out images")
    assert errors == []


def test_worker_failure_is_shown_in_the_dock(window, qtbot, training, tmp_path, errors):
    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [], "categories": [], "annotations": []}')
    training.dock.form.set_coco(str(bad), str(tmp_path))
    with qtbot.waitSignal(training.runFinished, timeout=60_000) as finished:
        assert training.start()
    assert finished.args == ["error"]
    dock = training.dock
    assert not dock.error_label.isHidden()
    assert "broken.json" in dock.error_label.text() and "no categories" in dock.error_label.text()
    assert "Training failed" in dock.status_label.text()
    assert not dock.use_button.isEnabled() and dock.start_button.isEnabled()
    assert errors == [] and window.isVisible()


def test_settings_problems_are_shown_before_starting(window, training, errors):
    form = training.dock.form
    form.set_coco("")
    assert not training.start() and not training.running
    assert "COCO annotations file" in training.dock.error_label.text()
    form.set_coco("/nonexistent/annotations.json")
    assert not training.start() and "does not exist" in training.dock.error_label.text()
    form.start.setCurrentIndex(form.start.findData("pretrained"))
    form.arch.setCurrentIndex(form.arch.findData("yolact"))
    form.config.setCurrentIndex(form.config.findData("yolact_tiny"))
    with pytest.raises(ValueError, match="no published weights"):
        form.starting_weights()
    assert errors == []


def test_the_current_project_is_the_default_training_data_read_from_its_store(
    window, training, tiny_train_set, tmp_path
):
    """The current project (window.editing.project) is offered and chosen by default; a run names
    its folder (the worker reads the store itself) and is recorded in the store."""
    import shutil

    from engine.project import Project
    from engine.training.data import load_project_source
    from engine.training.worker_main import TrainJob

    folder = tmp_path / "project"
    shutil.copytree(tiny_train_set["data"].parent / "images", folder)
    shutil.copy(tiny_train_set["data"], folder / "annotations.json")
    project = Project.open(folder)
    (folder / "annotations.json").unlink()  # the store is the project now
    window.editing = SimpleNamespace(project=project)  # what the editing controller exposes
    form = training.dock.form
    assert form.source.currentData() == SOURCE_COCO  # the fixture chose a COCO file...
    training.refresh_sources()
    assert form.source.itemData(0) == SOURCE_PROJECT and "project (5 annotated)" in form.source.itemText(0)
    assert form.source.currentData() == SOURCE_PROJECT  # ...a project just opened is the default
    settings = form.values()
    assert settings.source == SOURCE_PROJECT and form.start.currentData() == START_FILE
    job = TrainJob.read(training._prepare(settings))
    assert job.project == str(folder) and job.coco is None and job.images is None
    source = load_project_source(job.project)
    assert source.classes == tiny_train_set["classes"] and len(source.records) == 5
    assert job.weights == str(tiny_train_set["weights"]) and job.architecture is None
    assert job.train["epochs"] == 1 and job.train["freeze"] == form.freeze.currentData()
    runs = project.store.training_runs()
    assert len(runs) == 1 and runs[0]["config"]["run_dir"] == str(training.run_dir)
    assert not (training.run_dir / "annotations_snapshot.json").exists()  # nothing serialised on the GUI thread
    # The user's choice stands for the same project.
    form.source.setCurrentIndex(form.source.findData(SOURCE_COCO))
    training.refresh_sources()
    assert form.source.currentData() == SOURCE_COCO
    empty = tmp_path / "empty_project"
    shutil.copytree(tiny_train_set["data"].parent / "images", empty)
    window.editing = SimpleNamespace(project=Project.open(empty))
    training.refresh_sources()
    assert form.source.currentData() == SOURCE_PROJECT
    with pytest.raises(ValueError, match="no annotated images yet"):
        form.values()
    del window.editing
    training.refresh_sources()
    assert form.source.currentData() == SOURCE_COCO


# --- the process wrapper with stand-in workers ---------------------------------------------------------
def _run_stand_in(qtbot, script: str, cancel_after_first: bool = False) -> tuple[list[dict], str, list]:
    proc = TrainingProcess(kill_timeout_ms=3000)
    messages: list[dict] = []
    log: list[str] = []
    proc.message.connect(messages.append)
    proc.logText.connect(log.append)
    if cancel_after_first:
        proc.message.connect(lambda _m: proc.cancel())
    with qtbot.waitSignal(proc.finished, timeout=20_000) as done:
        proc.start("unused.json", sys.executable, ["-c", script])
    return messages, "".join(log), done.args


def test_process_parses_split_lines_and_passes_other_output(qtbot):
    script = (
        "import sys, time\n"
        "out = sys.stdout\n"
        'out.write(\'{"kind": "progress", \'); out.flush(); time.sleep(0.3)\n'
        "out.write('\"iteration\": 1}\\nnot json at all\\n'); out.flush()\n"
        'out.write(\'{"kind": "eval", "stage": "after"}\\n\'); out.flush()\n'
        "sys.stderr.write('a warning\\n'); sys.stderr.flush()\n"
        'out.write(\'{"kind": "done", "cancelled": false}\')\n'  # last line without newline
    )
    messages, log, (code, crashed) = _run_stand_in(qtbot, script)
    assert messages == [
        {"kind": "progress", "iteration": 1},
        {"kind": "eval", "stage": "after"},
        {"kind": "done", "cancelled": False},
    ]
    assert "not json at all" in log and "a warning" in log
    assert code == 0 and not crashed


def test_process_polite_cancel_then_kill(qtbot):
    polite = (
        "import sys\n"
        'print(\'{"kind": "start"}\', flush=True)\n'
        "line = sys.stdin.readline().strip()\n"
        'print(\'{"kind": "done", "got": "%s"}\' % line, flush=True)\n'
    )
    messages, _, (code, crashed) = _run_stand_in(qtbot, polite, cancel_after_first=True)
    assert messages[-1] == {"kind": "done", "got": "cancel"} and code == 0 and not crashed
    stubborn = 'import time\nprint(\'{"kind": "start"}\', flush=True)\ntime.sleep(60)\n'
    t0 = time.perf_counter()
    messages, _, (code, crashed) = _run_stand_in(qtbot, stubborn, cancel_after_first=True)
    assert crashed and time.perf_counter() - t0 < 15  # killed after kill_timeout_ms, not 60 s


def test_worker_killed_mid_run_is_reported(window, qtbot, training, errors):
    """A worker that dies without a word (here: killed) is an error in the dock, the GUI is fine."""
    import os
    import signal

    with qtbot.waitSignal(training.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        with qtbot.waitSignal(training.process.message, timeout=30_000):  # the worker's first word
            assert training.start()
        os.kill(training.process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    assert finished.args == ["error"]
    text = training.dock.error_label.text()
    assert "without finishing" in text and "MaskScope itself is unaffected" in text
    assert training.dock.start_button.isEnabled() and errors == [] and window.isVisible()


# --- what the dock offers ----------------------------------------------------------------------------------
def test_offered_configs_and_defaults_match_the_engine():
    from app.training.options import CONFIGS, DEFAULT_LR
    from engine.cli.train import DEFAULT_LR as ENGINE_LR
    from engine.maskrcnn.configs import CONFIGS as MASKRCNN
    from engine.yolact.config import CONFIGS as YOLACT

    assert {c.name for c in CONFIGS["maskrcnn"]} == set(MASKRCNN)
    assert {c.name for c in CONFIGS["yolact"]} == set(YOLACT)
    for c in CONFIGS["maskrcnn"]:
        assert c.pretrained == (MASKRCNN[c.name].coco_weights is not None), c.name
    for c in CONFIGS["yolact"]:
        assert c.pretrained == (YOLACT[c.name].checkpoint is not None), c.name
    for arch in ("maskrcnn", "yolact"):
        assert DEFAULT_LR[(arch, "sgd")] == ENGINE_LR[(arch, "sgd")]
        assert DEFAULT_LR[(arch, "adamw")] == ENGINE_LR["adamw"]


def test_current_model_as_starting_point(tmp_path):
    from app.model_catalog import DEMO_KEY, DEMO_WEIGHTS, ModelChoice, choice_by_key, choice_for_file
    from app.training.options import format_duration, weights_for_model

    demo = weights_for_model(choice_by_key(DEMO_KEY))
    if DEMO_WEIGHTS.is_file():
        assert demo.weights == str(DEMO_WEIGHTS) and demo.from_checkpoint
    else:
        assert (demo.architecture, demo.weights) == ("maskrcnn", "random")
    coco = weights_for_model(choice_by_key("maskrcnn_r50_coco"))
    assert (coco.architecture, coco.config, coco.weights) == ("maskrcnn", "maskrcnn_resnet50_fpn", None)
    pth = tmp_path / "yolact_base_54_800000.pth"
    pth.write_bytes(b"x")
    mine = weights_for_model(choice_for_file(pth, "yolact", "yolact_base"))
    assert (mine.architecture, mine.config, mine.weights) == ("yolact", "yolact_base", str(pth))
    ours = tmp_path / "run.safetensors"
    ours.write_bytes(b"x")
    ckpt = weights_for_model(choice_for_file(ours, "checkpoint", None))
    assert ckpt.from_checkpoint and ckpt.architecture is None
    assert weights_for_model(choice_for_file(tmp_path / "gone.pth", "maskrcnn", None)) is None
    assert weights_for_model(ModelChoice("custom:fake", "fake", "fake", None, None)) is None
    assert weights_for_model(None) is None
    assert [format_duration(s) for s in (42, 725, 3723, float("nan"), None)] == ["0:42", "12:05", "1:02:03", "?", "?"]


def test_project_run_is_recorded_resumed_and_then_predicts_the_rest(
    window, qtbot, training, tiny_train_set, tmp_path, monkeypatch, errors
):
    """On the current project: the run is recorded in the store, a cancelled run resumes from its
    last checkpoint (not from iteration 0), and "Use these weights" offers to predict the images
    not marked done into a new prediction run, in the background."""
    import shutil

    from app.training import controller as training_module
    from engine.project import Project

    folder = tmp_path / "project"
    shutil.copytree(tiny_train_set["data"].parent / "images", folder)
    shutil.copy(tiny_train_set["data"], folder / "annotations.json")
    project = Project.open(folder)
    names = project.image_names()
    project.set_done(names[0])
    window.editing = SimpleNamespace(project=project)
    training.refresh_sources()
    form = training.dock.form
    assert form.source.currentData() == SOURCE_PROJECT
    form.epochs.setValue(3)
    form.batch.setValue(1)
    form.val.setValue(0)

    seen: list[dict] = []
    training.process.message.connect(lambda m: seen.append(m) if m.get("kind") in ("start", "progress") else None)
    with qtbot.waitSignal(training.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        assert training.start()
        qtbot.waitUntil(lambda: training.last_progress is not None, timeout=RUN_TIMEOUT_MS)
        training.cancel()
    assert finished.args == ["cancelled"]
    stopped_at = training.last_progress["iteration"]
    total = training.last_progress["total_iterations"]
    assert 0 < stopped_at < total
    runs = project.store.training_runs()
    assert runs[-1]["status"] == "cancelled" and runs[-1]["weights"].endswith("last.safetensors")
    assert training.dock.resume_button.isEnabled() and training.resume_action.isEnabled()

    seen.clear()
    with qtbot.waitSignal(training.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        assert training.resume()
    assert finished.args == ["done"], training.dock.error_label.text() + training.dock.log.toPlainText()[-2000:]
    start = next(m for m in seen if m["kind"] == "start")
    assert start["iteration"] == stopped_at  # continued where it stopped
    assert [m["iteration"] for m in seen if m["kind"] == "progress"][-1] == total
    runs = project.store.training_runs()
    assert len(runs) == 2 and runs[-1]["status"] == "done"
    assert runs[-1]["config"]["resumed_from"].endswith("last.safetensors")
    assert json.loads((training.run_dir / "job_resume.json").read_text())["resume"].endswith("last.safetensors")
    assert not training.dock.resume_button.isEnabled()

    asked: list[str] = []
    monkeypatch.setattr(training_module, "ask_predict_rest", lambda parent, text: asked.append(text) or True)
    with qtbot.waitSignal(training.predict_job.finished, timeout=RUN_TIMEOUT_MS) as done:
        assert training.use_weights()
    assert f"Predict the {len(names) - 1} images" in asked[0]
    result = done.args[0]
    assert result.done == len(names) - 1 and not result.cancelled
    reader = Project.open(folder)
    run = reader.runs()[-1]
    assert run.id == result.run_id == reader.active_run
    assert run.class_names == tiny_train_set["classes"] and run.weights == training.checkpoint
    predicted = {n for n in names if reader.store.predictions(n, run.id)}
    assert names[0] not in predicted  # done: left alone
    assert all(reader.status(n) != "new" for n in names[1:])
    reader.close()
    qtbot.waitUntil(lambda: "Done: prediction run" in training.dock.predict_label.text(), timeout=5000)
    assert errors == []
