"""YOLACT network structure, official checkpoint loading, preprocessing (yolact-spec.md 1-8, 13-15)."""

from __future__ import annotations

import dataclasses
import logging
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.errors import WeightsError
from engine.yolact.config import (
    CONFIGS,
    config_from_checkpoint_name,
    config_from_state_dict,
    yolact_base,
    yolact_im700,
    yolact_resnet50,
    yolact_tiny,
)
from engine.yolact.model import Yolact
from engine.yolact.preprocess import preprocess_rgb
from engine.yolact.weights import (
    clean_official_state_dict,
    infer_config,
    load_imagenet_backbone,
    load_official,
    read_state_dict,
)


def _bn(prefix: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{prefix}.num_batches_tracked", ())
    ]


def _conv(prefix: str, shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.weight", shape), (f"{prefix}.bias", (shape[0],))]


def expected_keys(blocks: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """The spec's section 13 tables, written out independently of the model code, in state_dict order."""
    keys: list[tuple[str, tuple[int, ...]]] = []
    inplanes = 64
    for stage, count in enumerate(blocks):
        p = 64 * 2**stage
        for b in range(count):
            pre = f"backbone.layers.{stage}.{b}"
            cin = inplanes if b == 0 else 4 * p
            keys += [(f"{pre}.conv1.weight", (p, cin, 1, 1))] + _bn(f"{pre}.bn1", p)
            keys += [(f"{pre}.conv2.weight", (p, p, 3, 3))] + _bn(f"{pre}.bn2", p)
            keys += [(f"{pre}.conv3.weight", (4 * p, p, 1, 1))] + _bn(f"{pre}.bn3", 4 * p)
            if b == 0:
                keys += [(f"{pre}.downsample.0.weight", (4 * p, cin, 1, 1))] + _bn(f"{pre}.downsample.1", 4 * p)
        inplanes = 4 * p
    keys += [("backbone.conv1.weight", (64, 3, 7, 7))] + _bn("backbone.bn1", 64)
    for i in (0, 2, 4, 8):
        keys += _conv(f"proto_net.{i}", (256, 256, 3, 3))
    keys += _conv("proto_net.10", (32, 256, 1, 1))
    for i, cin in enumerate((2048, 1024, 512)):
        keys += _conv(f"fpn.lat_layers.{i}", (256, cin, 1, 1))
    for i in range(3):
        keys += _conv(f"fpn.pred_layers.{i}", (256, 256, 3, 3))
    for i in range(2):
        keys += _conv(f"fpn.downsample_layers.{i}", (256, 256, 3, 3))
    keys += _conv("prediction_layers.0.upfeature.0", (256, 256, 3, 3))
    keys += _conv("prediction_layers.0.bbox_layer", (12, 256, 3, 3))
    keys += _conv("prediction_layers.0.conf_layer", (243, 256, 3, 3))
    keys += _conv("prediction_layers.0.mask_layer", (96, 256, 3, 3))
    keys += _conv("semantic_seg_conv", (80, 256, 1, 1))
    return keys


@pytest.mark.parametrize(
    ("cfg", "n_keys", "n_params"),
    [(yolact_resnet50, 354, 31_164_943), (yolact_base, 660, 50_157_071), (yolact_im700, 660, 50_157_071)],
)
def test_state_dict_names_shapes_order_and_parameter_count(cfg, n_keys, n_params):
    with torch.device("meta"):
        model = Yolact(cfg)
    sd = model.state_dict()
    got = [(k, tuple(v.shape)) for k, v in sd.items()]
    assert got == expected_keys(cfg.backbone_layers)
    assert len(sd) == n_keys
    assert sum(p.numel() for p in model.parameters()) == n_params
    # only prediction_layers.0 owns head parameters (shared by the 5 levels)
    assert not any(k.startswith("prediction_layers.1") for k in sd)


def test_config_table():
    assert yolact_base.pred_scales == (24, 48, 96, 192, 384)
    assert yolact_im700.pred_scales == (30, 61, 122, 244, 488)
    assert (yolact_im700.max_size, yolact_im700.masks_to_train) == (700, 300)
    assert yolact_resnet50.backbone_layers == (3, 4, 6, 3) and yolact_base.backbone_layers == (3, 4, 23, 3)
    for cfg in (yolact_base, yolact_resnet50, yolact_im700):
        assert (cfg.num_classes, cfg.mask_dim, cfg.nms_top_k, cfg.max_num_detections) == (81, 32, 200, 100)
        assert (cfg.nms_conf_thresh, cfg.nms_thresh) == (0.05, 0.5)
    assert yolact_tiny.with_num_classes(3).num_classes == 4


@pytest.mark.parametrize(
    ("cfg", "fmap", "n_priors", "proto"),
    [(yolact_resnet50, [69, 35, 18, 9, 5], 19248, 138), (yolact_im700, [88, 44, 22, 11, 6], 30963, 176)],
)
def test_shapes_at_full_resolution(cfg, fmap, n_priors, proto):
    """Forward at 550 / 700: FPN levels, priors, prototypes, segm. Spatial sizes depend only on the
    strides, so a narrow copy of the config (same blocks, 1/8 of the channels) keeps this fast."""
    narrow = dataclasses.replace(cfg, backbone_width=8, fpn_features=16)
    model = Yolact(narrow).train()
    seen = []
    model.prediction_layers[0].upfeature.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    with torch.no_grad():
        out = model.forward_raw(torch.zeros(1, 3, cfg.max_size, cfg.max_size))
    assert seen == fmap
    assert out["loc"].shape == (1, n_priors, 4) and out["conf"].shape == (1, n_priors, 81)
    assert out["mask"].shape == (1, n_priors, 32) and out["priors"].shape == (n_priors, 4)
    assert out["proto"].shape == (1, proto, proto, 32)
    assert out["segm"].shape == (1, 80, fmap[0], fmap[0])


def test_config_from_name_and_shapes():
    assert config_from_checkpoint_name("/x/yolact_im700_54_800000.pth") is yolact_im700
    assert config_from_checkpoint_name("yolact_resnet50_54_800000.pth") is yolact_resnet50
    assert config_from_checkpoint_name("yolact_base_3_1000.pth") is yolact_base
    assert config_from_checkpoint_name("weights.pth") is None
    with torch.device("meta"):
        sd50 = Yolact(yolact_resnet50).state_dict()
        sd101 = Yolact(yolact_im700).state_dict()
    assert config_from_state_dict(sd50)[0] is yolact_resnet50
    cfg, note = config_from_state_dict(sd101)
    assert cfg is yolact_base and "im700" in note  # cannot be told apart from shapes
    cfg, _ = infer_config("yolact_im700_54_800000.pth", sd101)
    assert cfg is yolact_im700
    # a name that contradicts the tensors loses against them
    assert infer_config("yolact_resnet50_54_800000.pth", sd101)[0] is yolact_base
    assert config_from_state_dict({"backbone.body.layer1.0.conv1.weight": torch.zeros(1)})[0] is None


def _tiny_model(seed: int = 0) -> Yolact:
    torch.manual_seed(seed)
    model = Yolact(yolact_tiny)
    with torch.no_grad():  # non-default BN statistics so that a load is visible
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.num_batches_tracked.fill_(7)
    return model


@pytest.mark.parametrize("with_nbt", [True, False])
def test_official_format_round_trip(tmp_path, with_nbt):
    src = _tiny_model(1)
    sd = dict(src.state_dict())
    # what old official files carry: old-style backbone keys and extra FPN downsample layers
    sd["backbone.layer1.0.conv1.weight"] = torch.zeros(3)
    sd["fpn.downsample_layers.2.weight"] = torch.zeros(256, 256, 3, 3)
    sd["fpn.downsample_layers.2.bias"] = torch.zeros(256)
    if not with_nbt:
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "yolact_tiny_12_3400.pth"
    torch.save(sd, path)

    dst = _tiny_model(2)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    assert load_official(dst, path) == []
    for key, value in dst.state_dict().items():
        if key.endswith("num_batches_tracked") and not with_nbt:
            assert torch.equal(value, before[key])  # left alone when the file has none
        else:
            assert torch.equal(value, src.state_dict()[key]), key
    cleaned = clean_official_state_dict(sd)
    assert "backbone.layer1.0.conv1.weight" not in cleaned and "fpn.downsample_layers.2.weight" not in cleaned
    assert "backbone.layers.0.0.conv1.weight" in cleaned and "fpn.downsample_layers.1.weight" in cleaned


def test_bad_weight_files_raise_weights_error(tmp_path):
    good = tmp_path / "yolact_tiny_1_1.pth"
    torch.save(_tiny_model().state_dict(), good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    not_tensors = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "lr": 0.1}, not_tensors)
    for path in (truncated, text, not_tensors, tmp_path / "missing.pth"):
        with pytest.raises(WeightsError, match=path.name):
            load_official(_tiny_model(), path)
    assert not zipfile.is_zipfile(text)

    # another architecture's dict (torchvision names) and a YOLACT file of another backbone
    wrong = tmp_path / "maskrcnn.pth"
    torch.save({"backbone.body.conv1.weight": torch.zeros(64, 3, 7, 7), "roi_heads.x": torch.zeros(2)}, wrong)
    with pytest.raises(WeightsError, match="missing"):
        load_official(_tiny_model(), wrong)
    sd = _tiny_model().state_dict()
    sd["backbone.layers.0.0.conv1.weight"] = torch.zeros(5, 5, 3, 3)
    bad_shape = tmp_path / "bad_shape.pth"
    torch.save(sd, bad_shape)
    with pytest.raises(WeightsError, match="backbone.layers.0.0.conv1.weight"):
        load_official(_tiny_model(), bad_shape)


def test_other_class_count_reinitialises_heads_only(tmp_path, caplog):
    src = _tiny_model(3)
    path = tmp_path / "yolact_tiny_1_1.pth"
    torch.save(src.state_dict(), path)
    dst = Yolact(yolact_tiny.with_num_classes(3))
    with caplog.at_level(logging.WARNING):
        skipped = load_official(dst, path)
    assert sorted(skipped) == sorted(
        [
            "prediction_layers.0.conf_layer.weight",
            "prediction_layers.0.conf_layer.bias",
            "semantic_seg_conv.weight",
            "semantic_seg_conv.bias",
        ]
    )
    assert "class count differs" in caplog.text
    assert dst.prediction_layers[0].conf_layer.weight.shape[0] == 3 * 4
    assert torch.equal(dst.proto_net[10].weight, src.proto_net[10].weight)
    assert torch.equal(dst.backbone.layers[3][1].bn2.running_var, src.backbone.layers[3][1].bn2.running_var)


def test_read_state_dict_accepts_plain_and_wrapped(tmp_path):
    sd = {"a": torch.ones(2)}
    torch.save({"state_dict": sd}, tmp_path / "w.pth")
    assert torch.equal(read_state_dict(tmp_path / "w.pth")["a"], sd["a"])


def test_imagenet_backbone_from_torchvision_names(tmp_path):
    src = _tiny_model(4)
    tv = {}
    for key, value in src.backbone.state_dict().items():
        if key.startswith("layers."):
            stage, rest = key[len("layers.") :].split(".", 1)
            key = f"layer{int(stage) + 1}.{rest}"
        tv[key] = value
    tv["fc.weight"] = torch.zeros(1000, 256)
    tv["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "resnet_tiny.pth"
    torch.save(tv, path)
    dst = _tiny_model(5)
    missing, unused = load_imagenet_backbone(dst, path)
    assert missing == [] and sorted(unused) == ["fc.bias", "fc.weight"]
    for key, value in src.backbone.state_dict().items():
        assert torch.equal(dst.backbone.state_dict()[key], value)


def test_head_init_is_xavier_with_zero_bias():
    model = _tiny_model()
    assert torch.count_nonzero(model.fpn.lat_layers[0].bias) == 0
    assert torch.count_nonzero(model.prediction_layers[0].conf_layer.bias) == 0
    w = model.proto_net[0].weight.detach()
    bound = (6 / (w.shape[1] * 9 + w.shape[0] * 9)) ** 0.5
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound


def test_preprocess_matches_official_bgr_fast_base_transform():
    """Spec section 2 literally (BGR in, resize, BGR mean/std, reorder) vs our RGB path: same bits."""
    rng = np.random.default_rng(0)
    for h, w in ((37, 91), (200, 130)):
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        bgr = torch.from_numpy(rgb[:, :, ::-1].copy()).float()[None]
        x = bgr.permute(0, 3, 1, 2).contiguous()
        x = F.interpolate(x, (320, 320), mode="bilinear", align_corners=False)
        mean = torch.tensor((103.94, 116.78, 123.68)).view(1, 3, 1, 1)
        std = torch.tensor((57.38, 57.12, 58.40)).view(1, 3, 1, 1)
        official = ((x - mean) / std)[:, (2, 1, 0), :, :].contiguous()
        ours = preprocess_rgb(rgb, yolact_tiny)
        assert torch.equal(ours, official)


def test_tiny_forward_train_and_eval():
    model = _tiny_model().train()
    x = torch.randn(1, 3, 320, 320)
    out = model(x)
    assert set(out) == {"loc", "conf", "mask", "priors", "proto", "segm"}
    p = out["priors"].shape[0]
    assert p == 3 * (40 * 40 + 20 * 20 + 10 * 10 + 5 * 5 + 3 * 3)
    assert out["conf"].shape == (1, p, 81) and out["proto"].shape == (1, 80, 80, 32)
    assert out["segm"].shape == (1, 80, 40, 40)
    assert float(out["mask"].detach().abs().max()) <= 1.0  # tanh'd coefficients
    model.eval()
    with torch.no_grad():
        dets = model(x[:1])
    assert len(dets) == 1  # None (no confident prior) or a detection dict
    assert set(CONFIGS) >= {"yolact_base", "yolact_resnet50", "yolact_im700", "yolact_tiny"}


def test_freeze_bn_keeps_running_stats_through_train():
    model = _tiny_model()
    model.freeze_bn()
    model.train()
    bn = model.backbone.layers[0][0].bn1
    assert model.training and not bn.training and not bn.weight.requires_grad
    before = bn.running_mean.clone()
    model(torch.randn(1, 3, 96, 96))["loc"].sum().backward()  # any input size runs
    assert torch.equal(bn.running_mean, before) and bn.weight.grad is None
    assert model.fpn.lat_layers[0].weight.grad is not None
    model.freeze_bn(False)
    model.train()
    assert bn.training and bn.weight.requires_grad
