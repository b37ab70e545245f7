"""``MaskRCNNSegmenter``: torchvision's Mask R-CNN behind the ``Segmenter`` interface.

Labels: torchvision's label ``k`` (1..N, 0 = background) is our class index ``k - 1``.
Scores: the model's ``box_score_thresh`` is set to ``score_thresh`` for each call, so a detection is
kept when ``score > score_thresh`` (torchvision's comparison); ``score_thresh=0`` keeps everything
the top-100 per-image limit lets through.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.transform import resize_boxes

from engine.classes import COCO_CLASSES, is_coco_classes
from engine.device import pick_device
from engine.errors import WeightsError
from engine.maskrcnn import prompt as P
from engine.maskrcnn import weights as W
from engine.maskrcnn.configs import MaskRCNNConfig, build_model, get_config
from engine.maskrcnn.paste import paste_masks_cropped
from engine.maskrcnn.steps import Capture, Detections, pooler_settings, run
from engine.maskrcnn.trace import DetectionTrace, MaskRCNNTrace
from engine.prompts import image_key
from engine.segmenter import Instance, Prediction, Segmenter

log = logging.getLogger(__name__)

DEFAULT_SCORE_THRESH = 0.5


class MaskRCNNSegmenter(Segmenter):
    architecture = "maskrcnn"
    model: MaskRCNN  # narrows Segmenter.model (torchvision's class: untyped)

    def __init__(
        self,
        model: MaskRCNN,
        config_name: str,
        class_names: list[str],
        device: torch.device | str = "cpu",
        score_thresh: float = DEFAULT_SCORE_THRESH,
    ) -> None:
        super().__init__(model, config_name, class_names, device, score_thresh)
        transform = model.transform
        self.extra_metadata = {"min_size": int(transform.min_size[-1]), "max_size": int(transform.max_size)}

    # --- inference -------------------------------------------------------------------------
    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        pixels = np.require(image, requirements=["W"])  # torch warns on read-only arrays; copy those
        return torch.from_numpy(pixels).to(self.device).permute(2, 0, 1).float().div_(255.0)

    def _predict(self, image: np.ndarray, trace: bool) -> Prediction:
        height, width = image.shape[:2]
        tensor = self._tensor(image)
        self.model.roi_heads.score_thresh = self.score_thresh
        det, cap = run(self.model, tensor, capture=trace)
        # Prompts on this image start from these features (one image kept, see engine.prompts).
        assert det.features is not None  # run() always returns the FPN output
        feats = P.ImageFeatures((height, width), det.network_size, det.padded_size, dict(det.features))
        self.prompt_cache.put(image_key(image), feats)
        boxes = resize_boxes(det.boxes, det.network_size, (height, width))
        masks = paste_masks_cropped(det.mask_probs, boxes, (height, width))
        boxes_np = boxes.cpu().numpy().astype(np.float32)
        scores = det.scores.cpu().tolist()
        labels = (det.labels - 1).cpu().tolist()
        instances = [
            Instance(label=int(lab), score=float(s), box=b, mask=m)
            for lab, s, b, m in zip(labels, scores, boxes_np, masks, strict=True)
        ]
        pred = Prediction(image_size=(height, width), instances=instances, class_names=self.class_names)
        pred.meta = {"network_size": det.network_size, "score_thresh": self.score_thresh}
        if cap is not None:
            pred.trace = self._make_trace(det, cap, (height, width))
        return pred

    def _make_trace(self, det: Detections, cap: Capture, original_size: tuple[int, int]) -> MaskRCNNTrace:
        heads = self.model.roi_heads
        box_pooler, mask_pooler = pooler_settings(heads.box_roi_pool), pooler_settings(heads.mask_roi_pool)
        proposals = cap.proposals.float().cpu().numpy()
        objectness = cap.proposal_objectness.float().cpu().numpy()
        class_probs = cap.class_probs.float().cpu().numpy()
        src = cap.proposal_index.cpu().numpy()
        box_lv, mask_lv = cap.box_levels.cpu().numpy(), cap.mask_levels.cpu().numpy()
        boxes = det.boxes.float().cpu().numpy()
        mask_probs = det.mask_probs[:, 0].float().cpu().numpy()
        labels, scores = det.labels.cpu().numpy(), det.scores.float().cpu().numpy()
        detections = []
        for i, p in enumerate(src):
            bl, ml = int(box_lv[i]), int(mask_lv[i])
            detections.append(
                DetectionTrace(
                    proposal_index=int(p),
                    proposal_box=proposals[p].copy(),
                    proposal_objectness=float(objectness[p]),
                    box_level=bl + box_pooler.k_min,
                    box_featmap=box_pooler.featmap_names[bl],
                    box_spatial_scale=box_pooler.scales[bl],
                    class_probs=class_probs[p, 1:].copy(),
                    background_prob=float(class_probs[p, 0]),
                    label=int(labels[i]) - 1,
                    score=float(scores[i]),
                    box_network=boxes[i].copy(),
                    mask_level=ml + mask_pooler.k_min,
                    mask_featmap=mask_pooler.featmap_names[ml],
                    mask_spatial_scale=mask_pooler.scales[ml],
                    mask_probs=mask_probs[i].copy(),
                )
            )
        (h, w), (nh, nw) = original_size, det.network_size
        transform = self.model.transform
        return MaskRCNNTrace(
            original_size=original_size,
            network_size=(int(nh), int(nw)),
            padded_size=(int(cap.padded_size[0]), int(cap.padded_size[1])),
            scale=(nh / h, nw / w),
            image_mean=[float(v) for v in transform.image_mean],
            image_std=[float(v) for v in transform.image_std],
            features=cap.features,
            proposals=proposals,
            proposal_objectness=objectness,
            box_pooler=box_pooler,
            mask_pooler=mask_pooler,
            detections=detections,
        )

    # --- prompts (engine.maskrcnn.prompt) ---------------------------------------------------
    def _features(self, image: np.ndarray, key: tuple) -> P.ImageFeatures:
        return self.prompt_cache.get(key, lambda: P.compute_features(self.model, self._tensor(image)))

    def _box_instance(
        self, image: np.ndarray, key: tuple, box: np.ndarray, label: int | None, trace: bool
    ) -> tuple[Instance, MaskRCNNTrace | None]:
        feats = self._features(image, key)
        box_original = torch.tensor(box[None], dtype=torch.float32, device=self.device)
        tv_label = None if label is None else label + 1
        result = P.run_box(self.model, feats, feats.to_network(box_original), tv_label)
        mask = paste_masks_cropped(result.mask_probs, box_original, feats.original_size)[0]
        instance = Instance(
            label=result.label - 1,
            score=float(result.class_probs[result.label]),
            box=box_original[0].cpu().numpy(),
            mask=mask,
        )
        return instance, (P.box_trace(self.model, feats, result) if trace else None)

    def _point_prompt(self, image: np.ndarray, key: tuple, x: float, y: float, max_candidates: int) -> list[Instance]:
        feats = self._features(image, key)
        found = P.point_candidates(self.model, feats, x, y, self.score_thresh, max_candidates)
        return [Instance(label=c.label, score=c.score, box=c.box_original, mask=c.mask) for c in found]

    # --- training --------------------------------------------------------------------------
    def losses(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        """torchvision's loss dict; our labels are shifted by one (0 is background there).

        Crowd instances (``iscrowd`` 1) are left out: torchvision's heads have no ignore regions.
        """
        self.clear_prompt_cache()  # the weights are about to change: cached features go stale
        self.model.train()
        tv_targets = []
        for t in targets:
            keep = torch.ones(len(t["labels"]), dtype=torch.bool, device=t["labels"].device)
            if "iscrowd" in t:
                keep = torch.as_tensor(t["iscrowd"], device=keep.device) == 0
            tv_targets.append(
                {
                    "boxes": t["boxes"][keep].to(self.device, torch.float32),
                    "labels": (t["labels"][keep] + 1).to(self.device, torch.int64),
                    "masks": t["masks"][keep].to(self.device, torch.uint8),
                }
            )
        return self.model([img.to(self.device) for img in images], tv_targets)


# --- construction ------------------------------------------------------------------------------
def _sizes(config: MaskRCNNConfig, min_size: int | None, max_size: int | None) -> tuple[int, int]:
    return int(min_size or config.min_size), int(max_size or config.max_size)


def create(
    config: str | None = None,
    weights: str | Path | None = None,
    device: str | None = None,
    class_names: list[str] | None = None,
    score_thresh: float | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
) -> Segmenter:  # a .safetensors of ours may hold either architecture
    """Build a Mask R-CNN segmenter.

    ``weights``: None = torchvision's COCO weights (ResNet-50 configs; from torch's cache, downloaded
    when online); ``'random'`` = random init, nothing downloaded; a path = a torchvision-format
    ``.pth`` state dict (raw or under 'model'/'state_dict'), loaded with ``weights_only=True``.
    """
    if weights is not None and str(weights).endswith(".safetensors"):
        from engine.models import load_segmenter  # our own checkpoint format

        return load_segmenter(weights, device=device, score_thresh=score_thresh)
    cfg = get_config(config)
    size = _sizes(cfg, min_size, max_size)
    dev = pick_device(device)
    thresh = DEFAULT_SCORE_THRESH if score_thresh is None else float(score_thresh)

    if weights is not None and str(weights) == "random":
        names = list(class_names) if class_names is not None else list(COCO_CLASSES)
        seg = MaskRCNNSegmenter(build_model(cfg, len(names) + 1, *size), cfg.name, names, dev, thresh)
        seg.weights_source = "random init"
        return seg

    if weights is None:
        if cfg.coco_weights is None:
            raise WeightsError(f"Config {cfg.name} has no published weights; pass --weights random or a weight file.")
        state = W.load_coco_state_dict(cfg)
        source = f"torchvision {cfg.coco_weights}"
    else:
        state = W.read_state_dict(weights)
        source = str(weights)
    return _from_state(cfg, state, source, size, dev, thresh, class_names)


def _from_state(
    cfg: MaskRCNNConfig,
    state: dict[str, torch.Tensor],
    source: str,
    size: tuple[int, int],
    device: torch.device,
    thresh: float,
    class_names: list[str] | None,
) -> MaskRCNNSegmenter:
    file_classes = W.head_num_classes(state)
    if file_classes == W.COCO_TORCHVISION_CLASSES and (class_names is None or is_coco_classes(class_names)):
        state, file_classes = W.coco91_to_81(state), len(COCO_CLASSES) + 1
    if class_names is None:
        if file_classes is None or file_classes == len(COCO_CLASSES) + 1:
            class_names = list(COCO_CLASSES)
        else:
            class_names = W.generic_class_names(file_classes - 1)
    names = list(class_names)
    reinit = file_classes is not None and file_classes != len(names) + 1
    model = build_model(cfg, len(names) + 1, *size)
    W.load_into_model(model, state, source, cfg, reinit_heads=reinit)
    if reinit and file_classes is not None:  # reinit implies a known head size
        W.warn_heads_reinitialised(source, file_classes, names)
    seg = MaskRCNNSegmenter(model, cfg.name, names, device, thresh)
    seg.weights_source = source + (" (heads re-initialised)" if reinit else "")
    return seg


def from_checkpoint(
    tensors: dict[str, torch.Tensor],
    meta: dict,
    device: str | None = None,
    score_thresh: float | None = None,
    source: str = "checkpoint",
) -> MaskRCNNSegmenter:
    """Rebuild a segmenter from our safetensors checkpoint (engine.checkpoint) and its metadata."""
    cfg = get_config(meta.get("config"))
    names = list(meta["class_names"])
    size = _sizes(cfg, meta.get("min_size"), meta.get("max_size"))
    thresh = score_thresh if score_thresh is not None else meta.get("score_thresh", DEFAULT_SCORE_THRESH)
    model = build_model(cfg, len(names) + 1, *size)
    classes_in_file = W.head_num_classes(tensors)
    if classes_in_file is not None and classes_in_file != len(names) + 1:
        raise WeightsError(
            f"{source}: its metadata lists {len(names)} classes but the weights have a head for {classes_in_file - 1}."
        )
    W.load_into_model(model, tensors, source, cfg)
    seg = MaskRCNNSegmenter(model, cfg.name, names, pick_device(device), float(thresh))
    seg.weights_source = source
    return seg
