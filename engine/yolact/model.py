"""The YOLACT network with the official state-dict names and shapes (yolact-spec.md sections 3-9, 13).

Registration order (backbone, proto_net, fpn, prediction_layers, semantic_seg_conv) reproduces the
official ``state_dict()`` key order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.yolact.backbone import ResNetBackbone
from engine.yolact.config import YolactConfig
from engine.yolact.detect import detect
from engine.yolact.priors import make_priors


class InterpolateModule(nn.Module):
    """Parameter-free bilinear x2 upsampling inside the ProtoNet Sequential (index 6)."""

    def __init__(self, scale_factor: float = 2, mode: str = "bilinear", align_corners: bool = False):
        super().__init__()
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode, align_corners=self.align_corners)


class FPN(nn.Module):
    """Lateral/pred lists are stored reversed (index 0 = C5/P5), quirk 3; see section 4."""

    def __init__(self, in_channels: list[int], num_features: int = 256, num_downsample: int = 2):
        super().__init__()
        self.lat_layers = nn.ModuleList([nn.Conv2d(c, num_features, 1) for c in reversed(in_channels)])
        self.pred_layers = nn.ModuleList([nn.Conv2d(num_features, num_features, 3, padding=1) for _ in in_channels])
        self.downsample_layers = nn.ModuleList(
            [nn.Conv2d(num_features, num_features, 3, padding=1, stride=2) for _ in range(num_downsample)]
        )

    def forward(self, convouts: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(convouts)
        out: list[torch.Tensor] = [convouts[0]] * n
        x: torch.Tensor | None = None
        for k, lat in enumerate(self.lat_layers):
            j = n - 1 - k
            if x is None:
                x = lat(convouts[j])
            else:
                # Upsample to the exact size of the next level (18 -> 35 -> 69), not x2 (quirk 2).
                size = convouts[j].shape[-2:]
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False) + lat(convouts[j])
            out[j] = x  # the pre-pred-conv sums feed the top-down path
        for k, pred in enumerate(self.pred_layers):
            j = n - 1 - k
            out[j] = F.relu(pred(out[j]))
        for down in self.downsample_layers:
            out.append(down(out[-1]))  # P6 from the relu'd P5, P7 from P6, no relu (quirk 2)
        return out


def make_proto_net(features: int, mask_dim: int) -> nn.Sequential:
    """Indices 0..10: three conv+relu, x2 upsample (6) + relu (7), conv+relu, 1x1 conv to k."""
    return nn.Sequential(
        nn.Conv2d(features, features, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(features, features, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(features, features, 3, padding=1),
        nn.ReLU(inplace=True),
        InterpolateModule(scale_factor=2, mode="bilinear", align_corners=False),
        nn.ReLU(inplace=True),
        nn.Conv2d(features, features, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(features, mask_dim, 1),
    )


class PredictionModule(nn.Module):
    """The head shared by all levels (section 6)."""

    def __init__(self, features: int, num_priors: int, num_classes: int, mask_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.mask_dim = mask_dim
        self.upfeature = nn.Sequential(nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True))
        self.bbox_layer = nn.Conv2d(features, num_priors * 4, 3, padding=1)
        self.conf_layer = nn.Conv2d(features, num_priors * num_classes, 3, padding=1)
        self.mask_layer = nn.Conv2d(features, num_priors * mask_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        x = self.upfeature(x)
        # NCHW -> NHWC -> [B, H*W*A, C]: row, then column, then anchor.
        loc = self.bbox_layer(x).permute(0, 2, 3, 1).reshape(b, -1, 4)
        conf = self.conf_layer(x).permute(0, 2, 3, 1).reshape(b, -1, self.num_classes)
        mask = torch.tanh(self.mask_layer(x).permute(0, 2, 3, 1).reshape(b, -1, self.mask_dim))
        return loc, conf, mask


class Yolact(nn.Module):
    """Train mode: dict of raw outputs for the losses. Eval mode: per-image detections."""

    def __init__(self, cfg: YolactConfig):
        super().__init__()
        self.cfg = cfg
        self.nms_mode = "fast"  # "fast" (eval.py default), "cross_class" or "traditional"
        self.backbone = ResNetBackbone(cfg.backbone_layers, cfg.block, cfg.backbone_width)
        self.proto_net = make_proto_net(cfg.fpn_features, cfg.mask_dim)
        src_channels = [self.backbone.channels[i] for i in cfg.selected_layers]
        self.fpn = FPN(src_channels, cfg.fpn_features, cfg.fpn_num_downsample)
        # Only prediction_layers.0 owns parameters; every level runs through it (share_prediction_module).
        self.prediction_layers = nn.ModuleList(
            [PredictionModule(cfg.fpn_features, cfg.num_priors_per_location, cfg.num_classes, cfg.mask_dim)]
        )
        self.semantic_seg_conv = nn.Conv2d(cfg.fpn_features, cfg.num_classes - 1, 1)
        self.bn_frozen = False
        init_head_weights(self)

    def freeze_bn(self, enable: bool = True) -> None:
        """Official ``freeze_bn`` (forced on for per-GPU batches < 6): every BatchNorm stays in eval
        mode (running statistics) and its weight and bias get no gradient, also after ``train()``."""
        self.bn_frozen = enable
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.requires_grad_(not enable)
                module.bias.requires_grad_(not enable)
                module.train(self.training and not enable)

    def train(self, mode: bool = True) -> Yolact:
        super().train(mode)
        if getattr(self, "bn_frozen", False):
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward_raw(self, x: torch.Tensor, with_segm: bool | None = None) -> dict[str, torch.Tensor]:
        """Raw outputs: loc, conf (logits), mask (tanh'd coefficients), priors, proto (NHWC), segm."""
        cfg = self.cfg
        feats = self.backbone(x)
        outs = self.fpn([feats[i] for i in cfg.selected_layers])
        # Prototypes from P3 with a ReLU after the last conv (quirk 4), then NHWC.
        proto = F.relu(self.proto_net(outs[0])).permute(0, 2, 3, 1).contiguous()
        head = self.prediction_layers[0]
        locs, confs, masks, priors = [], [], [], []
        for level, feat in enumerate(outs):
            loc, conf, mask = head(feat)
            locs.append(loc)
            confs.append(conf)
            masks.append(mask)
            h, w = feat.shape[-2:]
            priors.append(make_priors(h, w, cfg.pred_scales[level], cfg.aspect_ratios, cfg.max_size, feat.device))
        result = {
            "loc": torch.cat(locs, -2),
            "conf": torch.cat(confs, -2),
            "mask": torch.cat(masks, -2),
            "priors": torch.cat(priors, -2),
            "proto": proto,
        }
        if self.training if with_segm is None else with_segm:
            result["segm"] = self.semantic_seg_conv(outs[0])
        return result

    def forward(self, x: torch.Tensor):
        raw = self.forward_raw(x)
        if self.training:
            return raw
        return self.detect(raw)

    def detect(self, raw: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor] | None]:
        """Softmax over all classes (background included, not renormalised: quirk 5), then Detect."""
        conf = F.softmax(raw["conf"], dim=-1)
        return detect(raw["loc"], conf, raw["mask"], raw["priors"], raw["proto"], self.cfg, self.nms_mode)


def init_head_weights(model: Yolact) -> None:
    """xavier_uniform_ weights and zero biases for every conv outside the backbone (section 15)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and not name.startswith("backbone."):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
