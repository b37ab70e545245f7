"""``YolactSegmenter``: the ``Segmenter`` interface over our YOLACT network.

predict = FastBaseTransform -> network -> Detect (Fast NMS) -> postprocess, reproducing the
official eval.py output; masks are computed compactly (engine.yolact.postprocess).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.prompts import image_key
from engine.segmenter import Instance, Prediction, Segmenter
from engine.yolact import prompt as P
from engine.yolact.config import YolactConfig
from engine.yolact.model import Yolact
from engine.yolact.postprocess import absolute_boxes, assemble_masks, filter_by_score, instance_masks
from engine.yolact.preprocess import normalize_batch, preprocess_rgb
from engine.yolact.trace import PromptPrior, YolactTrace, build_trace

# The official README suggests --score_threshold 0.15 for display (eval.py's own default is 0).
DEFAULT_SCORE_THRESH = 0.15


class YolactSegmenter(Segmenter):
    architecture = "yolact"
    model: Yolact  # narrows Segmenter.model

    def __init__(
        self,
        model: Yolact,
        class_names: list[str],
        device: torch.device | str = "cpu",
        score_thresh: float = DEFAULT_SCORE_THRESH,
    ) -> None:
        if len(class_names) != model.cfg.num_classes - 1:
            raise ValueError(
                f"{len(class_names)} class names for a YOLACT with {model.cfg.num_classes - 1} object classes"
            )
        super().__init__(model, model.cfg.name, class_names, device, score_thresh)
        self.extra_metadata = {"yolact_config": model.cfg.to_dict()}
        self.prior_rule = P.DEFAULT_PRIOR_RULE  # how a box prompt picks its prior (engine.yolact.prompt)

    @property
    def cfg(self) -> YolactConfig:
        return self.model.cfg

    @property
    def nms_mode(self) -> str:
        return self.model.nms_mode

    @nms_mode.setter
    def nms_mode(self, mode: str) -> None:
        self.model.nms_mode = mode

    # --- inference -------------------------------------------------------------------------
    def _predict(self, image: np.ndarray, trace: bool) -> Prediction:
        h, w = image.shape[:2]
        cfg = self.cfg
        x = preprocess_rgb(image, cfg, self.device)
        raw = self.model.forward_raw(x, with_segm=False)
        # Prompts on this image start from these outputs (one image kept, see engine.prompts).
        self.prompt_cache.put(image_key(image), P.features_from_raw(raw, (h, w)))
        det = filter_by_score(self.model.detect(raw)[0], self.score_thresh)
        instances: list[Instance] = []
        assembled = boxes_abs = None
        if det is not None:
            assembled = assemble_masks(det["proto"], det["mask"], det["box"])
            masks = instance_masks(assembled, (h, w))
            boxes_abs = absolute_boxes(det["box"], w, h)
            boxes_np = boxes_abs.cpu().numpy().astype(np.float32)
            labels = det["class"].cpu().tolist()
            scores = det["score"].cpu().tolist()
            instances = [
                Instance(label=int(labels[i]), score=float(scores[i]), box=boxes_np[i], mask=masks[i])
                for i in range(len(labels))
            ]
        tr = None
        if trace:
            tr = build_trace(
                raw["proto"][0], det, assembled, boxes_abs, (cfg.max_size, cfg.max_size), (h, w), self.nms_mode
            )
        return Prediction(
            image_size=(h, w),
            instances=instances,
            class_names=self.class_names,
            trace=tr,
            meta={"input_size": (cfg.max_size, cfg.max_size), "nms": self.nms_mode},
        )

    # --- prompts (engine.yolact.prompt) ----------------------------------------------------
    def _features(self, image: np.ndarray, key: tuple) -> P.YolactFeatures:
        def compute() -> P.YolactFeatures:
            return P.compute_features(self.model, preprocess_rgb(image, self.cfg, self.device), image.shape[:2])

        return self.prompt_cache.get(key, compute)

    def _box_instance(
        self, image: np.ndarray, key: tuple, box: np.ndarray, label: int | None, trace: bool
    ) -> tuple[Instance, YolactTrace | None]:
        feats = self._features(image, key)
        result, assembled = P.run_box(feats, box, label, self.prior_rule)
        instance = Instance(label=result.label, score=result.score, box=box.astype(np.float32), mask=result.mask)
        if not trace:
            return instance, None
        h, w = feats.image_size
        det = {
            "box": result.box_rel,
            "mask": result.coeffs,
            "class": torch.tensor([result.label]),
            "score": torch.tensor([result.score]),
        }
        size = (self.cfg.max_size, self.cfg.max_size)
        tr = build_trace(feats.proto, det, assembled, absolute_boxes(result.box_rel, w, h), size, (h, w))
        tr.prompt = PromptPrior(
            result.prior, feats.boxes[result.prior].float().cpu().numpy(), result.iou, self.prior_rule
        )
        return instance, tr

    def _point_prompt(self, image: np.ndarray, key: tuple, x: float, y: float, max_candidates: int) -> list[Instance]:
        feats = self._features(image, key)
        found = P.point_candidates(feats, x, y, self.cfg.nms_conf_thresh, max_candidates)
        if not found:
            return []
        h, w = feats.image_size
        boxes = absolute_boxes(torch.from_numpy(np.stack([c.box_rel for c in found])), w, h).numpy()
        return [
            Instance(label=c.label, score=c.score, box=boxes[i].astype(np.float32), mask=c.mask)
            for i, c in enumerate(found)
        ]

    # --- training --------------------------------------------------------------------------
    def prepare_batch(
        self, images: list[torch.Tensor], targets: list[dict]
    ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor | int]]]:
        """Network input [B, 3, S, S] and the loss targets (relative boxes, crowds last with label
        -1, masks resized to S x S as floats) from 0..1 RGB images and pixel-space targets."""
        size = self.cfg.max_size
        batch: list[torch.Tensor] = []
        converted: list[dict[str, torch.Tensor | int]] = []
        for image, target in zip(images, targets, strict=True):
            _, h, w = image.shape
            batch.append(normalize_batch(image[None].to(self.device, torch.float32) * 255.0, self.cfg)[0])
            boxes = torch.as_tensor(target["boxes"], dtype=torch.float32, device=self.device).reshape(-1, 4)
            labels = torch.as_tensor(target["labels"], dtype=torch.int64, device=self.device).reshape(-1)
            masks = torch.as_tensor(target["masks"], device=self.device)
            crowd = torch.as_tensor(target.get("iscrowd", torch.zeros(len(labels))), device=self.device).bool()
            crowd = crowd.reshape(-1)
            order = torch.cat([torch.nonzero(~crowd).flatten(), torch.nonzero(crowd).flatten()])
            boxes, labels, masks = boxes[order], labels[order].clone(), masks[order]
            num_crowds = int(crowd.sum())
            if num_crowds:
                labels[len(labels) - num_crowds :] = -1
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=self.device)
            if masks.shape[0] > 0:
                masks = F.interpolate(masks[None].float(), (size, size), mode="bilinear", align_corners=False)[0]
            else:
                masks = torch.zeros((0, size, size), device=self.device)
            converted.append({"boxes": boxes / scale, "labels": labels, "masks": masks, "num_crowds": num_crowds})
        return torch.stack(batch), converted

    def losses(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        """YOLACT's four losses {'B', 'C', 'M', 'S'} (already weighted and normalised; sum them)."""
        from engine.yolact.loss import yolact_losses

        self.clear_prompt_cache()  # the weights are about to change: cached outputs go stale
        cfg = self.cfg
        batch, converted = self.prepare_batch(images, targets)
        preds = self.model.forward_raw(batch, with_segm=True)
        return yolact_losses(
            preds,
            converted,
            masks_to_train=cfg.masks_to_train,
            bbox_alpha=cfg.bbox_alpha,
            conf_alpha=cfg.conf_alpha,
            mask_alpha=cfg.mask_alpha,
            semantic_alpha=cfg.semantic_segmentation_alpha,
            negpos_ratio=cfg.ohem_negpos_ratio,
            pos_thresh=cfg.positive_iou_threshold,
            neg_thresh=cfg.negative_iou_threshold,
            crowd_thresh=cfg.crowd_iou_threshold,
        )
