"""YolactSegmenter: predict vs the official pipeline, compact masks, trace, weights, checkpoints, losses."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.classes import COCO_CATEGORY_IDS, COCO_CLASSES
from engine.errors import WeightsError
from engine.masks import CroppedMask
from engine.models import create_segmenter, load_segmenter
from engine.yolact import create, weights_dir
from engine.yolact.boxes import crop
from engine.yolact.config import yolact_tiny
from engine.yolact.postprocess import (
    assemble_masks,
    instance_masks,
    official_kernel_is_channels_last,
    postprocess_reference,
    upsample_columns,
)
from engine.yolact.trace import YolactTrace, recompose_mask


def _detecting(seg, seed: int = 0):
    """Random-init heads give ~1/81 per class; raise class logits so that many priors pass 0.05."""
    torch.manual_seed(seed)
    c = seg.cfg.num_classes
    with torch.no_grad():
        bias = seg.model.prediction_layers[0].conf_layer.bias.view(3, c)
        bias[:, 1:] = torch.rand(c - 1) * 3
        bias[:, 1 + torch.randperm(c - 1)[:5]] += 4  # a few strong classes, even among 80
        seg.model.prediction_layers[0].mask_layer.bias.normal_(0, 1.0)
    return seg


@pytest.fixture(scope="module")
def tiny4():
    torch.manual_seed(0)
    return _detecting(create("yolact_tiny", "random", device="cpu", class_names=["a", "b", "c", "d"], score_thresh=0))


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[h // 4 : h // 2, w // 3 : 2 * w // 3] = (200, 40, 40)  # some structure
    return img


def official_pipeline(seg, image: np.ndarray, score_threshold: float):
    """Spec sections 2, 9, 10 as eval.py runs them: BGR FastBaseTransform, net, Detect, postprocess."""
    h, w = image.shape[:2]
    bgr = torch.from_numpy(image[:, :, ::-1].copy()).float()[None].permute(0, 3, 1, 2).contiguous()
    x = F.interpolate(bgr, (seg.cfg.max_size,) * 2, mode="bilinear", align_corners=False)
    mean = torch.tensor((103.94, 116.78, 123.68)).view(1, 3, 1, 1)
    std = torch.tensor((57.38, 57.12, 58.40)).view(1, 3, 1, 1)
    x = ((x - mean) / std)[:, (2, 1, 0)].contiguous()
    seg.model.eval()
    with torch.no_grad():
        dets = seg.model(x)
    return postprocess_reference(dets, w, h, score_threshold=score_threshold)


def _assert_same_as_official(pred, official):
    classes, scores, boxes, masks = official
    assert len(pred) == classes.numel()
    assert [i.label for i in pred.instances] == classes.tolist()
    assert [i.score for i in pred.instances] == scores.tolist()
    got_boxes = np.stack([i.box for i in pred.instances]) if len(pred) else np.zeros((0, 4))
    assert np.array_equal(got_boxes, boxes.numpy().reshape(-1, 4).astype(np.float32))
    for k, inst in enumerate(pred.instances):
        assert inst.mask.image_size == pred.image_size
        assert np.array_equal(inst.mask.to_full(), masks[k].numpy() > 0), k


def test_predict_equals_official_pipeline_all_and_thresholded(tiny4):
    image = _image(150, 230)
    tiny4.score_thresh = 0
    pred = tiny4.predict(image)
    assert pred.image_size == (150, 230) and 0 < len(pred) <= 100
    _assert_same_as_official(pred, official_pipeline(tiny4, image, 0))
    assert all(a.score >= b.score for a, b in zip(pred.instances, pred.instances[1:], strict=False))
    mid = float(np.median([i.score for i in pred.instances]))
    tiny4.score_thresh = mid
    thr = tiny4.predict(image)
    assert thr.instances and all(i.score > mid for i in thr.instances)  # strict, like eval.py
    _assert_same_as_official(thr, official_pipeline(tiny4, image, mid))
    tiny4.score_thresh = 0
    try:
        for mode in ("cross_class",):  # traditional NMS: test_yolact_quirks (slow on 6k priors)
            tiny4.nms_mode = mode
            pred = tiny4.predict(image)
            assert pred.meta["nms"] == mode and len(pred) > 0
            _assert_same_as_official(pred, official_pipeline(tiny4, image, 0))
    finally:
        tiny4.nms_mode = "fast"


def test_predict_coco_classes_and_instances_in_image_coordinates():
    torch.manual_seed(1)
    seg = _detecting(create("yolact_tiny", "random", device="cpu", score_thresh=0), seed=1)
    assert seg.class_names == list(COCO_CLASSES) and seg.architecture == "yolact"
    image = _image(300, 180, seed=2)
    pred = seg.predict(image, trace=True)
    assert len(pred) == 100  # Fast NMS cap with many confident priors
    _assert_same_as_official(pred, official_pipeline(seg, image, 0))
    for inst in pred.instances:
        x1, y1, x2, y2 = inst.box
        assert 0 <= x1 <= x2 <= 180 and 0 <= y1 <= y2 <= 300
        m = inst.mask
        assert m.x0 >= 0 and m.y0 >= 0 and m.x0 + m.bits.shape[1] <= 180 and m.y0 + m.bits.shape[0] <= 300
        assert 0 <= inst.label < 80
    assert pred.trace.input_size == (320, 320) and len(pred.trace) == 100


def test_compact_masks_equal_full_image_reference_on_random_tensors():
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the generic cases also on two threads (chunked loops)
    cases = [
        (80, 80, 150, 230, 7),
        (138, 138, 600, 800, 5),
        (40, 52, 60, 50, 9),
        (80, 80, 97, 300, 3),
        (60, 70, 31, 400, 4),
    ]
    try:
        for run, (hp, wp, h, w, n) in enumerate(cases + [(80, 80, 200, 210, 3)]):
            if run == len(cases):
                torch.set_num_threads(1)  # 3 channels on 1 thread: PyTorch's channels-last kernel
            proto = torch.relu(torch.randn(hp, wp, 8, generator=gen))
            coef = torch.randn(n, 8, generator=gen)
            c = torch.rand(n, 2, generator=gen) * 1.2 - 0.1
            s = torch.rand(n, 2, generator=gen) * 0.7
            boxes = torch.cat([c - s / 2, c + s / 2], 1)
            boxes[0] = boxes[0, [2, 3, 0, 1]]  # swapped corners are allowed
            det = {"box": boxes.clone(), "mask": coef, "class": torch.zeros(n, dtype=torch.long)}
            det.update(score=torch.rand(n, generator=gen), proto=proto)
            ref = postprocess_reference([det], w, h)[3]
            asm = assemble_masks(proto, coef, boxes)
            got = instance_masks(asm, (h, w))
            for i in range(n):
                assert np.array_equal(got[i].to_full(), ref[i].numpy() > 0), (hp, wp, h, w, i)
                # compact: the patch is the tight box of the set pixels, not the image
                assert got[i].bits.shape == CroppedMask.from_full(ref[i].numpy() > 0).bits.shape
            if not official_kernel_is_channels_last(n, h, w, proto.device):
                # float-level equality of the restricted resize, not only after the threshold
                full = F.interpolate(asm.cropped[None], (h, w), mode="bilinear", align_corners=False)[0]
                for i in range(n):
                    strip = upsample_columns(asm.cropped[i], asm.crop_rows[i], asm.crop_cols[i], (h, w))
                    mine = torch.zeros(h, w)
                    if strip is not None:
                        mine[:, strip[0] : strip[0] + strip[1].shape[1]] = strip[1]
                    assert torch.equal(mine, full[i])
    finally:
        torch.set_num_threads(threads)


def test_trace_stages_are_consistent_and_recompose(tiny4):
    image = _image(120, 160, seed=3)
    pred = tiny4.predict(image, trace=True)
    tr = pred.trace
    assert isinstance(tr, YolactTrace) and len(tr) == len(pred) > 0
    n, hp, wp = tr.assembled.shape
    assert tr.prototypes.shape == (hp, wp, 32) == (80, 80, 32) and tr.prototypes.min() >= 0
    assert tr.coefficients.shape == (n, 32) and np.abs(tr.coefficients).max() <= 1
    np.testing.assert_allclose(tr.assembled, np.einsum("hwk,nk->nhw", tr.prototypes, tr.coefficients), atol=1e-5)
    assert np.array_equal(tr.sigmoid, torch.sigmoid(torch.from_numpy(tr.assembled)).numpy())
    cropped = crop(torch.from_numpy(tr.sigmoid).permute(1, 2, 0), torch.from_numpy(tr.boxes_rel)).permute(2, 0, 1)
    assert np.array_equal(tr.cropped, cropped.numpy())
    assert np.array_equal(tr.boxes_abs.astype(np.float32), np.stack([i.box for i in pred.instances]))
    assert tr.classes.tolist() == [i.label for i in pred.instances]
    assert tr.scores.tolist() == [i.score for i in pred.instances]
    # crop boxes in prototype pixels: padded by 1 and clamped
    assert (tr.crop_boxes[:, :2] >= 0).all() and (tr.crop_boxes[:, 2:] <= 80).all()

    # recompose with every prototype on: the trace's stages and the instance mask again
    k = 0
    full = recompose_mask(tr, k, np.ones(32, bool), image_mask=True)
    np.testing.assert_allclose(full["assembled"], tr.assembled[k], atol=1e-5)
    np.testing.assert_allclose(full["cropped"], tr.cropped[k], atol=1e-6)
    same = full["mask"].to_full() == pred.instances[k].mask.to_full()
    assert same.mean() > 0.999  # equal up to matmul rounding at the 0.5 boundary
    # without prototypes 0..15 the combination only uses 16..31
    enabled = np.arange(32) >= 16
    part = recompose_mask(tr, k, enabled, image_mask=True)
    want = tr.prototypes[..., 16:] @ tr.coefficients[k, 16:]
    np.testing.assert_allclose(part["assembled"], want, atol=1e-5)
    assert np.array_equal(part["sigmoid"], torch.sigmoid(torch.from_numpy(part["assembled"])).numpy())
    assert part["mask"].image_size == (120, 160)
    # none enabled: logits 0, sigmoid 0.5, which is not > 0.5: empty mask
    none = recompose_mask(tr, k, np.zeros(32, bool), image_mask=True)
    assert np.all(none["assembled"] == 0) and np.all(none["sigmoid"] == 0.5) and none["mask"].area == 0
    with pytest.raises(ValueError):
        recompose_mask(tr, k, np.ones(5, bool))
    with pytest.raises(IndexError):
        recompose_mask(tr, n, np.ones(32, bool))


def test_recompose_is_fast_at_550():
    rng = np.random.default_rng(0)
    tr = YolactTrace(
        input_size=(550, 550),
        image_size=(600, 800),
        prototypes=rng.random((138, 138, 32), dtype=np.float32),
        coefficients=rng.uniform(-1, 1, (100, 32)).astype(np.float32),
        boxes_rel=np.tile(np.array([[0.2, 0.25, 0.6, 0.7]], np.float32), (100, 1)),
        boxes_abs=np.zeros((100, 4), np.int64),
        crop_boxes=np.zeros((100, 4), np.float32),
        classes=np.zeros(100, np.int64),
        scores=np.zeros(100, np.float32),
        assembled=np.zeros((100, 1, 1), np.float32),
        sigmoid=np.zeros((100, 1, 1), np.float32),
        cropped=np.zeros((100, 1, 1), np.float32),
    )
    enabled = np.ones(32, bool)
    enabled[3] = False
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = recompose_mask(tr, 7, enabled)  # the three prototype-resolution stages
        times.append(time.perf_counter() - t0)
    assert out["cropped"].shape == (138, 138) and out["cropped"].max() > 0
    assert min(times) < 0.05, times
    with_mask = recompose_mask(tr, 7, enabled, image_mask=True)["mask"]  # + the 600x800 mask
    assert with_mask.area > 0 and with_mask.image_size == (600, 800)


def test_missing_official_weights_name_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKSCOPE_WEIGHTS_DIR", str(tmp_path / "w"))
    assert weights_dir() == tmp_path / "w"
    with pytest.raises(WeightsError) as err:
        create("yolact_base", None, device="cpu")
    assert "yolact_base_54_800000.pth" in str(err.value) and str(tmp_path / "w") in str(err.value)
    with pytest.raises(WeightsError, match="yolact_im700_54_800000.pth"):
        create_segmenter("yolact", "yolact_im700", None, device="cpu")
    with pytest.raises(WeightsError, match="no official weights"):
        create("yolact_tiny", None, device="cpu")
    with pytest.raises(WeightsError, match="Unknown YOLACT config"):
        create("yolact_huge", "random", device="cpu")


def test_official_file_create_save_and_reload(tmp_path, monkeypatch):
    torch.manual_seed(5)
    names = ["a", "b", "c", "d"]
    src = _detecting(create("yolact_tiny", "random", device="cpu", class_names=names, score_thresh=0), seed=5)
    path = tmp_path / "yolact_tiny_3_1200.pth"
    torch.save(src.model.state_dict(), path)
    # config inferred from the file name; found in the weights folder when weights=None for its config
    seg = create(None, path, device="cpu", class_names=names, score_thresh=0)
    assert seg.cfg.name == "yolact_tiny" and seg.weights_source == str(path) and seg.cfg.num_classes == 5
    image = _image(90, 140, seed=4)
    ref = src.predict(image)
    got = seg.predict(image)
    assert [(i.label, i.score) for i in got.instances] == [(i.label, i.score) for i in ref.instances]

    saved = seg.save(tmp_path / "ours" / "tiny")
    again = load_segmenter(saved, device="cpu", score_thresh=0)
    assert again.architecture == "yolact" and again.cfg == seg.cfg and again.class_names == seg.class_names
    back = again.predict(image)
    assert [(i.label, i.score) for i in back.instances] == [(i.label, i.score) for i in ref.instances]
    for a, b in zip(back.instances, ref.instances, strict=True):
        assert np.array_equal(a.mask.to_full(), b.mask.to_full())
    via_registry = create_segmenter("yolact", weights=saved, device="cpu")
    assert via_registry.cfg == seg.cfg
    assert create(weights=saved, device="cpu").cfg == seg.cfg

    # other class list -> class heads re-initialised, the rest loaded
    assert create(None, path, device="cpu").class_names == ["class_1", "class_2", "class_3", "class_4"]
    custom = create(None, path, device="cpu", class_names=["cat", "dog"], score_thresh=0)
    assert custom.cfg.num_classes == 3 and "re-initialised" in custom.weights_source
    assert torch.equal(custom.model.proto_net[0].weight, src.model.proto_net[0].weight)
    assert all(i.label in (0, 1) for i in custom.predict(image).instances)


def test_losses_are_wired_to_the_training_loss(tiny4):
    seg = tiny4
    seg.model.train()
    try:
        images = [torch.rand(3, 96, 128), torch.rand(3, 80, 80)]
        m0 = torch.zeros(2, 96, 128, dtype=torch.uint8)
        m0[0, 10:40, 20:60] = 1
        m0[1, 50:90, 70:120] = 1
        m1 = torch.zeros(1, 80, 80, dtype=torch.uint8)
        m1[0, 5:70, 10:50] = 1
        targets = [
            {
                "boxes": torch.tensor([[20.0, 10, 60, 40], [70, 50, 120, 90]]),
                "labels": torch.tensor([1, 3]),
                "masks": m0,
                "iscrowd": torch.tensor([0, 1]),
            },
            {"boxes": torch.tensor([[10.0, 5, 50, 70]]), "labels": torch.tensor([0]), "masks": m1},
        ]
        batch, conv = seg.prepare_batch(images, targets)
        assert batch.shape == (2, 3, 320, 320)
        assert conv[0]["num_crowds"] == 1 and conv[0]["labels"].tolist() == [1, -1]
        assert torch.allclose(conv[0]["boxes"][0], torch.tensor([20 / 128, 10 / 96, 60 / 128, 40 / 96]))
        assert conv[1]["masks"].shape == (1, 320, 320)
        losses = seg.losses(images, targets)
        assert set(losses) == {"B", "C", "M", "S"}
        total = sum(losses.values())
        assert torch.isfinite(total) and total > 0
        total.backward()
        assert seg.model.prediction_layers[0].conf_layer.weight.grad is not None
    finally:
        seg.model.zero_grad(set_to_none=True)
        seg.model.eval()


def test_coco_label_map_matches_spec_section_12():
    spec = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28]
    spec += [31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54]
    spec += [55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81]
    spec += [82, 84, 85, 86, 87, 88, 89, 90]
    assert list(COCO_CATEGORY_IDS) == spec
    assert COCO_CLASSES[0] == "person" and COCO_CLASSES[-1] == "toothbrush" and COCO_CLASSES[62] == "tv"
    seg = create("yolact_tiny", "random", device="cpu")
    assert seg.category_ids == spec
    assert seg.describe().startswith("yolact yolact_tiny (80 classes")
    assert yolact_tiny.num_classes == 81
