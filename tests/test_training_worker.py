"""The GUI's training process (engine.training.worker_main): its job file, the JSON-lines protocol
on stdout, cancel within one iteration (stdin line and closed stdin), and errors as messages."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import DataError
from engine.training.worker_main import Channel, ProtocolCallback, TrainJob, watch_stdin

ROOT = Path(__file__).resolve().parents[1]
MASKRCNN_LOSSES = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}


def _job(train_set: dict, out: Path, **train) -> Path:
    settings = {"epochs": 1, "batch_size": 2, "warmup_iters": 1, "val_fraction": 0.2, "freeze": 1, **train}
    data, weights = str(train_set["data"]), str(train_set["weights"])
    job = TrainJob(out_dir=str(out), coco=data, weights=weights, device="cpu", train=settings, threads=1)
    return job.write(out.parent / f"{out.name}_job.json")


def _start(job: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.training.worker_main", "--job", str(job), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _messages(text: str) -> list[dict]:
    """Every stdout line must be one protocol object."""
    lines = [line for line in text.splitlines() if line.strip()]
    msgs = [json.loads(line) for line in lines]
    assert all(isinstance(m, dict) and isinstance(m.get("kind"), str) for m in msgs)
    return msgs


def test_job_round_trip_and_validation(tmp_path):
    job = TrainJob(out_dir=str(tmp_path / "o"), coco="a.json", images="imgs", weights="random", train={"epochs": 3})
    back = TrainJob.read(job.write(tmp_path / "job.json"))
    assert back == job
    with pytest.raises(DataError, match="exactly one data source"):
        TrainJob.from_dict({"out_dir": "o"}, "j.json")
    with pytest.raises(DataError, match="unknown training settings"):
        TrainJob.from_dict({"out_dir": "o", "coco": "a.json", "train": {"epoch": 3}}, "j.json")
    with pytest.raises(DataError, match="unknown job fields"):
        TrainJob.from_dict({"out_dir": "o", "coco": "a.json", "wieghts": "x"}, "j.json")
    with pytest.raises(DataError, match="not found"):
        TrainJob.read(tmp_path / "missing.json")


def test_protocol_lines_are_strict_json(tmp_path):
    from engine.training.callbacks import TrainEvent

    out = (tmp_path / "proto.txt").open("w")
    cb = ProtocolCallback(Channel(out))
    cb(TrainEvent("step", 3, 10, 0, 2, {"loss_mask": float("nan"), "loss_box": 0.5}, 1.5, 0.01, 2.0, float("inf")))
    cb(TrainEvent("checkpoint", 5, 10, 0, 2, checkpoint="x.safetensors"))
    out.close()
    text = (tmp_path / "proto.txt").read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON: non-finite values become null
    progress, ckpt = _messages(text)
    assert progress["kind"] == "progress" and progress["losses"] == {"loss_mask": None, "loss_box": 0.5}
    assert progress["eta_s"] is None and progress["iteration"] == 3 and progress["skipped"] is False
    assert ckpt == {"kind": "checkpoint", "path": "x.safetensors", "epoch": 1, "iteration": 5}


def test_worker_reports_progress_eval_checkpoint_done(tiny_train_set, tmp_path):
    from engine.checkpoint import load_checkpoint

    out = tmp_path / "run"
    proc = _start(_job(tiny_train_set, out))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    msgs = _messages(stdout)
    kinds = [m["kind"] for m in msgs]
    assert kinds[0] == "status" and kinds[-1] == "done"
    setup = next(m for m in msgs if m["kind"] == "setup")
    assert setup["classes"] == tiny_train_set["classes"] and setup["train_images"] == 4 and setup["val_images"] == 1
    progress = [m for m in msgs if m["kind"] == "progress"]
    assert [p["iteration"] for p in progress] == [1, 2] and progress[-1]["total_iterations"] == 2
    for p in progress:
        assert MASKRCNN_LOSSES <= set(p["losses"])
        assert all(math.isfinite(v) for v in p["losses"].values())
        assert math.isclose(p["loss"], sum(p["losses"].values()), rel_tol=1e-4)
        assert p["lr"] > 0 and p["images_per_s"] > 0 and p["eta_s"] >= 0
    evals = [m for m in msgs if m["kind"] == "eval"]
    assert [e["stage"] for e in evals] == ["before", "after"]
    assert kinds.index("eval") < kinds.index("start") < kinds.index("progress")  # "before" precedes training
    for e in evals:
        m = e["metrics"]
        assert set(m["mask"]) >= {"AP", "AP50", "AP75"} and set(m["box"]) >= {"AP", "AP50"}
        assert set(m["per_class"]) == set(tiny_train_set["classes"]) and m["images"] == 1
    ckpts = [m for m in msgs if m["kind"] == "checkpoint"]
    assert ckpts and Path(ckpts[0]["path"]).is_file() and ckpts[0]["epoch"] == 1
    done = msgs[-1]
    assert done["cancelled"] is False and done["iterations"] == 2
    assert done["checkpoint"] == str(out / "model_final.safetensors") and Path(done["checkpoint"]).is_file()
    assert done["metrics"] == evals[-1]["metrics"]
    _, meta = load_checkpoint(done["checkpoint"])
    assert meta["class_names"] == tiny_train_set["classes"] and meta["training"]["config"]["freeze"] == 1
    assert meta["training"]["command"] == "gui"
    result = json.loads((out / "result.json").read_text())
    assert result["metrics_before"] == evals[0]["metrics"] and result["cancelled"] is False


def _read_until(proc: subprocess.Popen, kind: str, timeout: float = 90.0) -> list[dict]:
    msgs: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        msgs.append(json.loads(line))
        if msgs[-1]["kind"] in (kind, "error", "done"):
            return msgs
    raise AssertionError(f"no {kind!r} message; got {[m['kind'] for m in msgs]}; stderr: {proc.stderr.read()[-2000:]}")


def test_cancel_line_stops_within_one_iteration_and_saves(tiny_train_set, tmp_path):
    out = tmp_path / "run"
    # batch 4 at up to 96 px: about a second per iteration, far longer than reading a line takes
    proc = _start(_job(tiny_train_set, out, epochs=40, batch_size=4, val_fraction=0.0))
    try:
        first = _read_until(proc, "progress")[-1]
        assert first["kind"] == "progress", first
        sent_at = first["iteration"]
        proc.stdin.write("cancel\n")
        proc.stdin.flush()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    rest = _messages(stdout)
    later = [m["iteration"] for m in rest if m["kind"] == "progress"]
    assert len(later) <= 1 and all(i == sent_at + 1 for i in later)  # at most the iteration in flight
    done = rest[-1]
    assert done["kind"] == "done" and done["cancelled"] is True
    assert done["iterations"] <= sent_at + 1 < 40
    assert done["checkpoint"] == str(out / "last.safetensors") and Path(done["checkpoint"]).is_file()
    assert not any(m["kind"] == "eval" for m in rest)  # nothing held out: nothing to score


def test_stdin_control_cancel_line_and_closed_stdin():
    """The worker's stdin watcher: 'cancel' sets the event; EOF only with --exit-with-parent."""
    import io
    import threading

    for text, on_eof, expected in (
        ("status\ncancel\n", False, True),
        ("  CANCEL  \n", False, True),
        ("hello\n", False, False),
        ("", True, True),  # the GUI went away: stdin closed
    ):
        event = threading.Event()
        watch_stdin(io.StringIO(text), event, on_eof).join(5)
        assert event.is_set() is expected, (text, on_eof)


def test_bad_data_is_an_error_message(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{ not json")
    job = TrainJob(out_dir=str(tmp_path / "o"), coco=str(bad), architecture="maskrcnn", weights="random", threads=1)
    proc = _start(job.write(tmp_path / "job.json"))
    stdout, _ = proc.communicate(timeout=60)
    msgs = _messages(stdout)
    assert proc.returncode == 1 and msgs[-1]["kind"] == "error"
    assert "broken.json" in msgs[-1]["message"] and "not valid JSON" in msgs[-1]["message"]
    assert msgs[-1]["error_type"] == "DataError"
    # a job file that is not one
    proc = _start(bad)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "not a valid training job file" in _messages(stdout)[-1]["message"]
