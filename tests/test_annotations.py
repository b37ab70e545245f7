"""The annotation model: immutable instances, per-image containers, class lists, predictions."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotations import (
    AnnotatedInstance,
    Category,
    ClassList,
    ImageAnnotations,
    accept_prediction,
    accept_predictions,
    instance_from_prediction,
    masks_equal,
)
from engine.classes import COCO_CLASSES
from engine.masks import CroppedMask

H, W = 60, 80


def _rect(x0: int, y0: int, x1: int, y1: int, size: tuple[int, int] = (H, W)) -> CroppedMask:
    full = np.zeros(size, bool)
    full[y0:y1, x0:x1] = True
    return CroppedMask.from_full(full)


# --- AnnotatedInstance -----------------------------------------------------------------------
def test_instance_is_immutable_and_stores_a_tight_read_only_patch():
    # A padded patch (mask in the middle of a bigger box) is stored cropped to its pixels.
    bits = np.zeros((20, 30), bool)
    bits[5:10, 7:12] = True
    inst = AnnotatedInstance(1, "cat", CroppedMask(10, 20, bits, (H, W)))
    assert (inst.mask.x0, inst.mask.y0, inst.mask.bits.shape) == (17, 25, (5, 5))
    assert inst.bbox_xywh() == [17.0, 25.0, 5.0, 5.0]
    assert inst.box_xyxy().tolist() == [17.0, 25.0, 22.0, 30.0]
    assert inst.area == 25
    with pytest.raises(ValueError):
        inst.mask.bits[0, 0] = False  # the undo stack shares instances: no writing through them
    with pytest.raises(AttributeError):
        inst.category = "dog"  # type: ignore[misc]
    # The caller's array is not frozen by us.
    bits[0, 0] = True


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"id": 0}, "id"),
        ({"id": True}, "id"),
        ({"category": ""}, "category"),
        ({"category": 3}, "category"),
        ({"source": "magic"}, "source"),
    ],
)
def test_instance_rejects_bad_fields(kwargs, match):
    args = {"id": 1, "category": "cat", "mask": _rect(1, 1, 5, 5)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        AnnotatedInstance(**args)


def test_instance_edits_return_new_instances_and_pixel_edits_drop_polygons():
    inst = AnnotatedInstance.from_polygons(3, "cat", [[10, 10, 30, 10, 30, 20, 10, 20]], (H, W))
    assert inst.polygons == ((10.0, 10.0, 30.0, 10.0, 30.0, 20.0, 10.0, 20.0),)
    assert masks_equal(inst.mask, _rect(10, 10, 30, 20))  # pycocotools: pixel-edge coordinates
    edited = inst.with_mask(_rect(10, 10, 31, 20))
    assert edited.polygons is None and inst.polygons is not None
    assert edited.id == 3 and edited.category == "cat"
    renamed = inst.with_category("dog")
    assert renamed.category == "dog" and renamed.polygons == inst.polygons
    redrawn = edited.with_polygons([[0, 0, 4, 0, 4, 4]])
    assert redrawn.polygons is not None and redrawn.area > 0
    assert inst == AnnotatedInstance.from_polygons(3, "cat", [[10, 10, 30, 10, 30, 20, 10, 20]], (H, W))
    assert inst != edited


def test_masks_equal_ignores_padding_but_not_position_or_image_size():
    a = _rect(5, 5, 10, 10)
    padded = CroppedMask(0, 0, a.to_full(), (H, W))
    assert masks_equal(a, padded)
    assert not masks_equal(a, _rect(6, 5, 11, 10))
    assert not masks_equal(a, _rect(5, 5, 10, 10, size=(H + 1, W)))
    empty = CroppedMask(0, 0, np.zeros((0, 0), bool), (H, W))
    assert masks_equal(empty, CroppedMask(3, 3, np.zeros((4, 4), bool), (H, W)))
    assert not masks_equal(empty, a)


# --- ImageAnnotations ------------------------------------------------------------------------
def test_image_annotations_add_remove_replace_find_and_ids():
    ann = ImageAnnotations("a/b.png", W, H)
    assert ann.image_size == (H, W) and len(ann) == 0 and ann.next_id() == 1
    a = ann.add_new("cat", _rect(0, 0, 5, 5))
    b = ann.add_new("dog", _rect(10, 10, 20, 20), score=0.7, source="prediction")
    assert (a.id, b.id) == (1, 2) and ann.ids() == [1, 2]
    assert ann.find(2) is b and ann.find(9) is None and ann.index_of(2) == 1
    with pytest.raises(ValueError, match="already exists"):
        ann.add(AnnotatedInstance(1, "cat", _rect(0, 0, 2, 2)))
    with pytest.raises(ValueError, match="mask for a"):
        ann.add(AnnotatedInstance(5, "cat", _rect(0, 0, 2, 2, size=(H, W + 1))))
    old = ann.replace(b.with_category("bird"))
    assert old is b and ann.find(2).category == "bird"
    with pytest.raises(KeyError):
        ann.replace(AnnotatedInstance(7, "cat", _rect(0, 0, 2, 2)))
    removed = ann.remove(1)
    assert removed is a and ann.ids() == [2]
    ann.add(removed, index=0)  # undo of a removal restores the position
    assert ann.ids() == [1, 2]
    assert ann.categories() == {"cat", "bird"}
    with pytest.raises(KeyError):
        ann.remove(42)


def test_snapshot_restore_is_cheap_undo_and_copy_is_independent():
    ann = ImageAnnotations("x.png", W, H)
    ann.add_new("cat", _rect(0, 0, 5, 5))
    snap = ann.snapshot()
    ann.add_new("dog", _rect(10, 10, 20, 20))
    ann.replace(ann.find(1).with_mask(_rect(0, 0, 6, 6)))
    ann.restore(snap)
    assert len(ann) == 1 and ann.find(1).area == 25
    assert ann.find(1) is snap[0]  # restore shares the instances, no mask copies
    dup = ann.copy()
    dup.add_new("bird", _rect(30, 30, 40, 40))
    assert len(ann) == 1 and len(dup) == 2
    with pytest.raises(ValueError, match="duplicate"):
        ann.restore([snap[0], snap[0]])
    assert ann.same_content(ann.copy()) and not ann.same_content(dup)


def test_every_change_bumps_revision_and_calls_the_listener():
    ann = ImageAnnotations("x.png", W, H)
    calls = []
    ann._listener = calls.append
    ann.add_new("cat", _rect(0, 0, 5, 5))
    ann.replace(ann.find(1).with_category("dog"))
    ann.remove(1)
    ann.clear()  # already empty: no change
    assert ann.revision == 3 and calls == [ann, ann, ann]


def test_image_annotations_rejects_bad_sizes():
    with pytest.raises(ValueError):
        ImageAnnotations("x.png", 0, 10)


# --- ClassList -------------------------------------------------------------------------------
def test_class_list_ids_add_ensure_rename_remove():
    coco = ClassList.from_names(COCO_CLASSES)
    assert coco.id_of("person") == 1 and coco.id_of("toothbrush") == 90
    own = ClassList.from_names(["a", "b"])
    assert [(c.name, c.id) for c in own] == [("a", 1), ("b", 2)]
    c = own.add("c")
    assert c.id == 3 and own.names == ["a", "b", "c"] and own.index_of("c") == 2
    with pytest.raises(ValueError, match="already exists"):
        own.add("a")
    with pytest.raises(ValueError, match="already used"):
        own.add("d", 2)
    assert own.ensure("a").id == 1  # existing: unchanged
    assert own.ensure("e", 2).id == 4  # id 2 taken: next free id
    assert own.ensure("f", 40, "animal") == Category("f", 40, "animal")
    own.rename("a", "alpha")
    assert own.id_of("alpha") == 1 and "a" not in own
    with pytest.raises(ValueError):
        own.rename("alpha", "b")
    own.remove("b")
    assert own.names == ["alpha", "c", "e", "f"] and own.by_id(40).name == "f"
    assert own.copy() == own and own.copy() is not own
    with pytest.raises(KeyError):
        own.id_of("zzz")


# --- predictions -----------------------------------------------------------------------------
def _prediction(scores, size=(H, W)):
    from engine.segmenter import Instance, Prediction

    instances = []
    for k, s in enumerate(scores):
        mask = _rect(5 * k, 5, 5 * k + 4, 15, size) if s >= 0 else CroppedMask(0, 0, np.zeros((0, 0), bool), size)
        box = np.array([5 * k, 5, 5 * k + 4, 15], np.float32)
        instances.append(Instance(label=k % 2, score=abs(s), box=box, mask=mask))
    return Prediction(image_size=size, instances=instances, class_names=["cat", "dog"])


def test_accept_predictions_above_threshold_adds_classes_and_keeps_scores():
    ann = ImageAnnotations("x.png", W, H)
    ann.add_new("bird", _rect(50, 40, 60, 50))
    classes = ClassList(["bird"])
    pred = _prediction([0.9, 0.8, 0.3, -0.95])  # the last has an empty mask: skipped
    added = accept_predictions(ann, pred, threshold=0.5, classes=classes)
    assert [(i.id, i.category, i.score, i.source) for i in added] == [
        (2, "cat", pytest.approx(0.9), "prediction"),
        (3, "dog", pytest.approx(0.8), "prediction"),
    ]
    assert classes.names == ["bird", "cat", "dog"]
    assert masks_equal(added[0].mask, pred.instances[0].mask)
    one = accept_prediction(ann, pred, 2)
    assert one.id == 4 and one.score == pytest.approx(0.3)


def test_prediction_conversion_checks_size_and_label():
    ann = ImageAnnotations("x.png", W, H)
    with pytest.raises(ValueError, match="prediction is for"):
        accept_predictions(ann, _prediction([0.9], size=(H, W + 2)))
    pred = _prediction([0.9])
    pred.instances[0].label = 5
    with pytest.raises(ValueError, match="outside"):
        instance_from_prediction(pred.instances[0], pred.class_names, 1)
