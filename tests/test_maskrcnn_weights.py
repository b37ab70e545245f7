"""Mask R-CNN weights: torch's hub cache, the offline message, users' .pth files, bad files."""

from __future__ import annotations

import collections
import os
import pickle
import urllib.error

import pytest
import torch
import torchvision

from engine.classes import COCO_CATEGORY_IDS, COCO_CLASSES
from engine.errors import WeightsError
from engine.maskrcnn import create
from engine.maskrcnn.configs import build_model, get_config
from engine.maskrcnn.weights import coco_cache_path

R18 = "maskrcnn_r18_fpn"


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """torch.hub.get_dir() -> an empty tmp folder; any download attempt fails as if offline."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "hub"


def small_state(num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_model(get_config(R18), num_classes, 128, 160).state_dict()


def assert_loaded(model: torch.nn.Module, state: dict[str, torch.Tensor], skip_heads: bool = False) -> None:
    own = model.state_dict()
    for key, value in state.items():
        if skip_heads and key.startswith(("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn")):
            continue
        assert torch.equal(own[key], value), key


def test_coco_weights_load_from_torch_hub_cache(hub_dir):
    cfg = get_config("maskrcnn_resnet50_fpn")
    path = coco_cache_path(cfg.coco_weights)
    assert path == hub_dir / "checkpoints" / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    torch.manual_seed(0)
    state = build_model(cfg, 91, 800, 1333).state_dict()  # torchvision's 91-output COCO layout
    path.parent.mkdir(parents=True)
    torch.save(state, path)

    seg = create("maskrcnn_resnet50_fpn", weights=None, device="cpu")  # the download would fail
    assert seg.class_names == list(COCO_CLASSES) and "COCO_V1" in seg.weights_source
    assert seg.category_ids == list(COCO_CATEGORY_IDS)
    own = seg.model.state_dict()
    rows = [0, *COCO_CATEGORY_IDS]  # background + the 80 used category ids, in our class order
    for key, value in state.items():
        if "box_predictor.cls_score" in key or "mask_fcn_logits" in key:
            assert torch.equal(own[key], value[rows]), key
        elif "box_predictor.bbox_pred" in key:
            assert torch.equal(own[key], value.reshape(91, 4, -1)[rows].reshape(own[key].shape)), key
        else:
            assert torch.equal(own[key], value), key


def test_offline_without_cache_names_file_folder_and_url(hub_dir):
    with pytest.raises(WeightsError) as info:
        create("maskrcnn_resnet50_fpn_v2", weights=None, device="cpu")
    msg = str(info.value)
    folder = hub_dir / "checkpoints"
    assert "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth" in msg
    assert str(folder) in msg
    assert "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth" in msg
    assert "name resolution" in msg  # the cause is shown too


def test_small_config_has_no_default_weights():
    with pytest.raises(WeightsError, match="random"):
        create(R18, weights=None, device="cpu")


@pytest.mark.parametrize("wrap", ["raw", "model", "state_dict", "ddp"])
def test_user_pth_state_dict_forms(tmp_path, wrap):
    state = small_state(4)
    saved = {
        "raw": state,
        "model": {"model": state, "epoch": 3},
        "state_dict": {"state_dict": state, "optimizer": {}},
        "ddp": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    path = tmp_path / "mine.pth"
    torch.save(saved, path)
    seg = create(R18, weights=str(path), device="cpu", min_size=128, max_size=160)
    assert seg.class_names == ["class_1", "class_2", "class_3"]  # from the file's 4-output head
    assert_loaded(seg.model, state)
    if wrap == "raw":
        named = create(R18, weights=str(path), device="cpu", class_names=["a", "b", "c"])
        assert named.class_names == ["a", "b", "c"] and named.weights_source == str(path)


def test_other_class_count_reinitialises_heads_with_warning(tmp_path, caplog):
    state = small_state(4)
    path = tmp_path / "three_classes.pth"
    torch.save(state, path)
    names = ["a", "b", "c", "d", "e"]
    with pytest.warns(UserWarning, match="re-initialised"):
        seg = create(R18, weights=str(path), device="cpu", class_names=names)
    assert "re-initialised" in caplog.text
    assert seg.class_names == names
    assert seg.model.roi_heads.box_predictor.cls_score.out_features == 6
    assert seg.model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 6
    assert_loaded(seg.model, state, skip_heads=True)
    assert "re-initialised" in seg.describe()


class NotATensor:
    def __init__(self) -> None:
        self.payload = "anything"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["text", "random", "empty", "object", "pickle", "list"])
def test_files_that_are_not_checkpoints(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "text":
        path.write_text("these are not weights\n")
    elif kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "object":
        torch.save({"model": NotATensor(), "counter": collections.Counter("ab")}, path)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(NotATensor()))
    else:
        torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError) as info:
        create(R18, weights=str(path), device="cpu")
    assert str(path) in str(info.value)


def test_missing_weight_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        create(R18, weights=str(tmp_path / "nope.pth"), device="cpu")


def test_state_dicts_of_other_architectures(tmp_path):
    classifier = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), classifier)
    with pytest.raises(WeightsError, match="not those of a torchvision detection model"):
        create(R18, weights=str(classifier), device="cpu")

    yolact_like = tmp_path / "yolact_like.pth"
    torch.save(
        {
            "backbone.layers.0.0.conv1.weight": torch.zeros(64, 64, 1, 1),
            "proto_net.0.weight": torch.zeros(256, 256, 3, 3),
            "prediction_layers.0.conf_layer.weight": torch.zeros(243, 256, 3, 3),
        },
        yolact_like,
    )
    with pytest.raises(WeightsError, match="yolact"):
        create(R18, weights=str(yolact_like), device="cpu")

    small = tmp_path / "small.pth"
    torch.save(small_state(3), small)
    with pytest.raises(WeightsError, match=f"use --config {R18}") as info:
        create("maskrcnn_resnet50_fpn", weights=str(small), device="cpu")
    assert "missing" in str(info.value) and str(small) in str(info.value)


def test_shape_mismatch_outside_heads(tmp_path):
    state = small_state(3)
    state["rpn.head.conv.0.0.weight"] = torch.zeros(1, 1, 3, 3)
    path = tmp_path / "bent.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="another shape"):
        create(R18, weights=str(path), device="cpu")


def test_unknown_config():
    with pytest.raises(WeightsError, match="maskrcnn_r18_fpn"):
        create("maskrcnn_vit", weights="random")
