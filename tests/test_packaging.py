"""The installable package: ``--help`` never imports torch, and a wheel built from this tree, installed
into a fresh virtual environment, runs as ``maskscope`` from outside the source tree with its icons,
demo models and samples found inside the installed package.

The wheel is built without build isolation and installed without dependencies (no network): the fresh
environment sees the project's installed dependencies through a ``.pth`` line, but not this checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from engine.cli import command_names

ROOT = Path(__file__).resolve().parents[1]
# What a wheel is built from: the tree `pip install .` reads (tests, bench, scripts stay out).
SOURCE_ITEMS = ("pyproject.toml", "README.md", "main.py", "engine", "app", "resources")
SHIPPED_RESOURCES = ("icons", "models", "samples")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


_HELP_PROBE = textwrap.dedent(
    """
    import sys
    import main
    try:
        code = main.main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in ("torch", "torchvision", "PySide6") if m in sys.modules)
    print("EXIT", code, "HEAVY", ",".join(heavy) or "none")
    """
)


@pytest.mark.parametrize("command", [None, *command_names()])
def test_help_returns_without_importing_torch(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE, *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    usage = "usage: maskscope" if command is None else f"usage: maskscope {command}"
    assert usage in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "EXIT 0 HEAVY none"


def test_resource_path_finds_shipped_files_and_refuses_escapes() -> None:
    from resources import ICONS, MODELS, SAMPLES, resource_path

    assert resource_path(ICONS, "maskscope.svg").is_file()
    assert resource_path(MODELS, "demo_maskrcnn.safetensors").is_file()
    assert any(resource_path(SAMPLES).glob("*.jpg"))
    for bad in (("..", "main.py"), ("icons/maskscope.svg",), ("",)):
        with pytest.raises(ValueError):
            resource_path(*bad)


def test_no_module_finds_resources_by_a_source_tree_path() -> None:
    """``Path(__file__).parents[...] / "resources"`` works in a checkout only; resource_path works installed too."""
    tree_path = re.compile(r"""/\s*["']resources["']""")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for package in ("engine", "app")
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if tree_path.search(line)
    ]
    assert not offenders, "use resources.resource_path(...):\n" + "\n".join(offenders)


# --- the wheel, installed ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """Build the wheel from a copy of the tree, install it into a fresh venv; returns its paths."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in SOURCE_ITEMS:
        path = ROOT / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=ignore)
        else:
            shutil.copy2(path, src / item)
    dist = work / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run = {"capture_output": True, "text": True, "timeout": 300, "env": _env()}
    proc = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)], **run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = dist.glob("maskscope-*.whl")

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, **run)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, **run
    ).stdout.strip()
    # Dependencies (torch, PySide6, ...) from the project's environment; its editable hook is not run
    # from a .pth-added folder, so this checkout stays invisible.
    Path(purelib, "_maskscope_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], **run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outside = work / "elsewhere"  # the working folder of every command: not the source tree
    outside.mkdir()
    return {"wheel": wheel, "python": python, "bin": venv / "bin", "site": Path(purelib), "cwd": outside}


def _run(installed: dict[str, Path], args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    home = installed["cwd"] / "home"
    home.mkdir(exist_ok=True)
    env = _env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    env["PATH"] = f"{installed['bin']}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(args, cwd=installed["cwd"], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_wheel_holds_the_code_main_and_resources(installed) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for package in ("engine", "app", "resources"):
        for path in (ROOT / package).rglob("*.py"):
            if "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in names, path
    assert "main.py" in names
    for folder in SHIPPED_RESOURCES:
        for path in (ROOT / "resources" / folder).iterdir():
            assert f"resources/{folder}/{path.name}" in names, path
    assert not any(n.startswith(("tests/", "bench/", "scripts/", "resources/screenshots/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "maskscope = main:main" in zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()


@pytest.mark.slow
def test_installed_modules_come_from_the_venv(installed) -> None:
    code = "import app, engine, main, resources; print('\\n'.join(m.__file__ for m in (app, engine, main, resources)))"
    proc = _run(installed, [str(installed["python"]), "-c", code])
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.split():
        assert Path(line).is_relative_to(installed["site"]), line


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], ["predict", "--help"]])
def test_installed_command_help(installed, args: list[str]) -> None:
    proc = _run(installed, ["maskscope", *args])
    assert proc.returncode == 0, proc.stderr
    assert f"usage: maskscope {' '.join(args[:-1])}".strip() in proc.stdout


@pytest.mark.slow
def test_installed_demo_model_segments_a_bundled_sample(installed) -> None:
    listing = _run(installed, ["maskscope", "demo"])
    assert listing.returncode == 0, listing.stderr
    models = installed["site"] / "resources" / "models"
    assert str(models / "demo_maskrcnn.safetensors") in listing.stdout

    sample = installed["site"] / "resources" / "samples" / "sample_01.jpg"
    out = installed["cwd"] / "results.json"
    args = ["maskscope", "predict", str(sample), "--weights", str(models / "demo_maskrcnn.safetensors")]
    proc = _run(installed, [*args, "--device", "cpu", "--no-progress", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    images = json.loads(out.with_suffix(".images.json").read_text())
    assert [c["name"] for c in images["categories"]] == ["circle", "square", "triangle", "star", "ring"]
    assert max(r["score"] for r in results) > 0.5  # the trained demo model finds the shapes


_WINDOW_PROBE = textwrap.dedent(
    """
    import os, sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QAction
    import app.application as application
    import main

    create = application.create_application
    started = time.monotonic()

    def create_and_watch(argv):
        qapp = create(argv)

        def check():
            try:
                from app.main_window import MainWindow
                (window,) = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)]
                shown = window.current_image_path or ""
                if window.current_prediction is None and time.monotonic() - started < 90:
                    QTimer.singleShot(200, check)  # the sample and the demo model's first run are async
                    return
                icons = sum(not a.icon().isNull() for a in window.findChildren(QAction))
                found = len(window.current_prediction or [])
                name = os.path.basename(shown)
                print("WINDOW", window.isVisible(), not qapp.windowIcon().isNull(), icons, name, found)
                sys.stdout.flush()
                window.close()
            except BaseException as exc:  # a dialog would wait for ever offscreen
                print("PROBE-ERROR", repr(exc), flush=True)
                os._exit(3)

        QTimer.singleShot(0, check)
        return qapp

    application.create_application = create_and_watch
    sys.exit(main.main([]))
    """
)


@pytest.mark.slow
def test_installed_window_opens_on_the_bundled_sample(installed) -> None:
    """``maskscope`` with no arguments (main.main([])): the window, its icons, the sample and the demo run."""
    proc = _run(installed, [str(installed["python"]), "-c", _WINDOW_PROBE], timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("WINDOW"))
    _, visible, app_icon, icons, shown, found = line.split()
    assert (visible, app_icon, shown) == ("True", "True", "sample_01.jpg")
    assert int(icons) >= 10  # the toolbar's SVG icons came out of the installed package
    assert int(found) > 0
