"""Every model MaskScope knows: where its weights come from, under which licence, and whether
they are installed. Also installs them: a download (torchvision's COCO files) or a file the user
got by hand (the official YOLACT files live on Google Drive, which cannot be fetched by a
program), verified by loading it before it is copied where the app looks for it.

Importing this module does not import torch (``models list`` and the GUI's dialog stay fast):
the torchvision URLs are written out here, and tests/test_model_registry.py checks them against
torchvision's weight enums so that a torchvision upgrade cannot silently leave them stale.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.download import CancelFlag, ProgressCallback, download, part_path, sha256_of
from engine.errors import MaskScopeError, WeightsError
from resources import MODELS, resource_path

BUILTIN, DOWNLOAD, MANUAL = "built in", "download", "manual"
DEMO_DIR = resource_path(MODELS)
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); trained on COCO 2017"
YOLACT_LICENCE = "MIT (YOLACT, Bolya et al.); trained on COCO 2017"
DEMO_LICENCE = "MIT (MaskScope); trained on generated shapes"
YOLACT_RELEASE = "https://github.com/dbolya/yolact#evaluation"
MB = 1_000_000


@dataclass(frozen=True)
class ModelEntry:
    name: str  # the CLI name, and the key of the model chooser's entry
    label: str
    architecture: str
    config: str
    kind: str  # BUILTIN, DOWNLOAD (automatic) or MANUAL (the user fetches the file)
    file_name: str
    size_bytes: int  # for MANUAL files an estimate (parameters x 4 bytes)
    licence: str
    source: str  # a link a person can open
    url: str | None = None  # direct download (DOWNLOAD only)
    sha256_prefix: str | None = None  # from torchvision's file name
    num_classes: int = 81  # outputs of the classifier incl. background, checked when a file is located
    note: str = ""

    @property
    def downloadable(self) -> bool:
        return self.kind == DOWNLOAD and self.url is not None


@dataclass(frozen=True)
class ModelStatus:
    installed: bool
    path: Path  # where the file is, or where it goes once installed
    partial_bytes: int = 0  # an unfinished download that the next one continues

    def describe(self) -> str:
        if self.installed:
            return f"installed: {self.path}"
        if self.partial_bytes:
            return f"partly downloaded ({self.partial_bytes / MB:.1f} MB): {part_path(self.path)}"
        return f"missing (goes to {self.path})"


def _tv(file_name: str) -> tuple[str, str]:
    """torchvision's URL and the SHA-256 prefix that its file name carries (``NAME-HASH.pth``)."""
    return f"https://download.pytorch.org/models/{file_name}", file_name.rsplit("-", 1)[1].split(".")[0]


def _mib(mebibytes: float) -> int:
    return round(mebibytes * 2**20)


_V1_FILE = "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
_V2_FILE = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
_V1_URL, _V1_SHA = _tv(_V1_FILE)
_V2_URL, _V2_SHA = _tv(_V2_FILE)

REGISTRY: tuple[ModelEntry, ...] = (
    ModelEntry(
        "demo",
        "Demo Mask R-CNN (built-in)",
        "maskrcnn",
        "maskrcnn_r18_fpn",
        BUILTIN,
        "demo_maskrcnn.safetensors",
        0,
        DEMO_LICENCE,
        "resources/models (python main.py demo)",
        note="knows 5 generated shapes only",
    ),
    ModelEntry(
        "demo_yolact",
        "Demo YOLACT (built-in)",
        "yolact",
        "yolact_tiny",
        BUILTIN,
        "demo_yolact.safetensors",
        0,
        DEMO_LICENCE,
        "resources/models (python main.py demo)",
        note="knows 5 generated shapes only",
    ),
    ModelEntry(
        "maskrcnn_r50_coco",
        "Mask R-CNN ResNet-50-FPN (COCO)",
        "maskrcnn",
        "maskrcnn_resnet50_fpn",
        DOWNLOAD,
        _V1_FILE,
        _mib(169.84),  # torchvision's meta['_file_size']
        TORCHVISION_LICENCE,
        "https://pytorch.org/vision/stable/models/generated/torchvision.models.detection.maskrcnn_resnet50_fpn.html",
        _V1_URL,
        _V1_SHA,
        91,
        "COCO mask AP 34.6",
    ),
    ModelEntry(
        "maskrcnn_r50_v2_coco",
        "Mask R-CNN ResNet-50-FPN v2 (COCO)",
        "maskrcnn",
        "maskrcnn_resnet50_fpn_v2",
        DOWNLOAD,
        _V2_FILE,
        _mib(177.219),
        TORCHVISION_LICENCE,
        "https://pytorch.org/vision/stable/models/generated/torchvision.models.detection.maskrcnn_resnet50_fpn_v2.html",
        _V2_URL,
        _V2_SHA,
        91,
        "COCO mask AP 41.8",
    ),
    ModelEntry(
        "yolact_r50_coco",
        "YOLACT ResNet-50 (COCO)",
        "yolact",
        "yolact_resnet50",
        MANUAL,
        "yolact_resnet50_54_800000.pth",
        125 * MB,
        YOLACT_LICENCE,
        "https://drive.google.com/file/d/1yp7ZbbDwvMiFJEq4ptVKTYTI2VeRDXl0/view?usp=sharing",
        note="COCO mask AP 28.2",
    ),
    ModelEntry(
        "yolact_r101_coco",
        "YOLACT ResNet-101 (COCO)",
        "yolact",
        "yolact_base",
        MANUAL,
        "yolact_base_54_800000.pth",
        201 * MB,
        YOLACT_LICENCE,
        "https://drive.google.com/file/d/1UYy3dMapbH1BnmtZU4WH1zbYgOzzHHf_/view?usp=sharing",
        note="COCO mask AP 29.8",
    ),
    ModelEntry(
        "yolact_im700_coco",
        "YOLACT ResNet-101 im700 (COCO)",
        "yolact",
        "yolact_im700",
        MANUAL,
        "yolact_im700_54_800000.pth",
        201 * MB,
        YOLACT_LICENCE,
        "https://drive.google.com/file/d/1lE4Lz5p25teiXV-6HdTiOJSnS7u7GBzg/view?usp=sharing",
        note="COCO mask AP 31.2",
    ),
)


def entries() -> tuple[ModelEntry, ...]:
    return REGISTRY


def get_entry(name: str) -> ModelEntry:
    for entry in REGISTRY:
        if entry.name == name:
            return entry
    raise MaskScopeError(f"Unknown model {name!r}; known models: {', '.join(e.name for e in REGISTRY)}.")


# --- where the app looks ---------------------------------------------------------------------
def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    # Already imported: ask it (it honours torch.hub.set_dir()). Another thread may be importing
    # torch at this moment, so the module can be there without its hub yet.
    hub = getattr(sys.modules.get("torch"), "hub", None)
    if hub is not None and hasattr(hub, "get_dir"):
        return Path(hub.get_dir())
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        torch_home = os.path.join(cache, "torch")
    return Path(os.path.expanduser(torch_home)) / "hub"


def yolact_weights_dir() -> Path:
    """engine.yolact.weights_dir() without importing torch: $MASKSCOPE_WEIGHTS_DIR, else user data."""
    env = os.environ.get("MASKSCOPE_WEIGHTS_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("maskscope")) / "weights"


def install_dir(entry: ModelEntry) -> Path:
    if entry.kind == BUILTIN:
        return DEMO_DIR
    if entry.architecture == "maskrcnn":
        return torch_hub_dir() / "checkpoints"  # where torchvision's loader looks first
    return yolact_weights_dir()


def install_path(entry: ModelEntry) -> Path:
    return install_dir(entry) / entry.file_name


def status(entry: ModelEntry) -> ModelStatus:
    path = install_path(entry)
    part = part_path(path)
    partial = part.stat().st_size if part.is_file() else 0
    return ModelStatus(path.is_file(), path, partial)


def size_bytes(entry: ModelEntry) -> int:
    """The file's size: the real one when installed, else the expected one."""
    path = install_path(entry)
    return path.stat().st_size if path.is_file() else entry.size_bytes


def how_to_get(entry: ModelEntry) -> str:
    """One sentence on how this model's file is obtained."""
    if entry.kind == BUILTIN:
        return "Ships with MaskScope."
    if entry.downloadable:
        return f"Downloaded from {entry.url} (SHA-256 {entry.sha256_prefix}... checked)."
    return (
        f"Its authors publish it on Google Drive, which programs cannot download from: open {entry.source} "
        f"in a browser, save {entry.file_name}, then install it (it is checked by loading it first)."
    )


# --- installing -----------------------------------------------------------------------------------
def download_model(
    entry: ModelEntry,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag = None,
    url: str | None = None,
) -> Path:
    """Download ``entry``'s file into place (resuming a partial download). ``url`` overrides the
    entry's (a mirror). Returns the installed path."""
    if not entry.downloadable:
        raise MaskScopeError(f"{entry.label} cannot be downloaded automatically. {how_to_get(entry)}")
    source = url or entry.url
    assert source is not None  # downloadable entries have a URL
    return download(source, install_path(entry), sha256_prefix=entry.sha256_prefix, progress=progress, cancel=cancel)


def verify_weights(entry: ModelEntry, path: str | Path) -> None:
    """Load ``path`` (weights_only=True) into ``entry``'s network; WeightsError when it does not fit."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weight file not found: {path}")
    if entry.sha256_prefix:
        digest = sha256_of(path)
        if not digest.startswith(entry.sha256_prefix):
            raise WeightsError(
                f"{path.name} is not the published {entry.file_name}: its SHA-256 starts with "
                f"{digest[: len(entry.sha256_prefix)]}, not {entry.sha256_prefix}."
            )
    if entry.architecture == "maskrcnn":
        _verify_maskrcnn(entry, path)
    elif entry.architecture == "yolact":
        _verify_yolact(entry, path)
    else:
        raise WeightsError(f"No weight check for architecture {entry.architecture!r}.")


def _verify_maskrcnn(entry: ModelEntry, path: Path) -> None:
    from engine.maskrcnn import weights as W  # noqa: N812 - the module's usual alias
    from engine.maskrcnn.configs import build_model, get_config

    state = W.read_state_dict(path)
    classes = W.head_num_classes(state)
    if classes is not None and classes != entry.num_classes:
        raise WeightsError(
            f"{path.name} has a classifier for {classes - 1} classes; {entry.label} has {entry.num_classes - 1}. "
            "It is not this model's file."
        )
    cfg = get_config(entry.config)
    W.load_into_model(build_model(cfg, entry.num_classes, cfg.min_size, cfg.max_size), state, str(path), cfg)


def _verify_yolact(entry: ModelEntry, path: Path) -> None:
    from engine.yolact.config import get_config
    from engine.yolact.model import Yolact
    from engine.yolact.weights import clean_official_state_dict, load_into, read_state_dict

    cfg = get_config(entry.config)
    if cfg.num_classes != entry.num_classes:
        cfg = cfg.with_num_classes(entry.num_classes - 1)
    state = clean_official_state_dict(read_state_dict(path))
    load_into(Yolact(cfg), state, source=str(path), allow_class_change=False)


def locate(entry: ModelEntry, path: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """Check a file the user has for ``entry`` by loading it, then copy it where the app looks.

    The copy goes through a temporary name and ``os.replace``, so a full disk never leaves a
    half file under the real name. Returns the installed path.
    """
    if entry.kind == BUILTIN:
        raise MaskScopeError(f"{entry.label} ships with MaskScope; there is nothing to install.")
    source = Path(path).expanduser().resolve()
    if log:
        log(f"Checking {source} by loading it as {entry.label}...")
    verify_weights(entry, source)
    target = install_path(entry)
    if target.exists() and source.samefile(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".copying")
    if log:
        log(f"Copying to {target}")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MaskScopeError(f"Could not copy {source.name} to {target.parent}: {exc}") from exc
    return target
