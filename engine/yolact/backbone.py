"""ResNet backbone with the official YOLACT key names (yolact-spec.md section 3).

torchvision's ResNet v1.5 minus avgpool/fc; stages live in ``layers`` (``layers.N`` is torchvision's
``layer{N+1}``). ``layers`` is registered before ``conv1`` so ``state_dict()`` lists the stages
first, exactly like the official checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride here, v1.5) -> 1x1, expansion 4, bias-free convs."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class BasicBlock(nn.Module):
    """ResNet-18/34 block: two 3x3 convs, expansion 1 (only used by the tiny config)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


Block = type[Bottleneck] | type[BasicBlock]
BLOCKS: dict[str, Block] = {"bottleneck": Bottleneck, "basic": BasicBlock}


class ResNetBackbone(nn.Module):
    """Returns the outputs of every stage (C2..C5)."""

    def __init__(self, layers: tuple[int, ...], block: str = "bottleneck", width: int = 64):
        super().__init__()
        block_cls = BLOCKS[block]
        self.layers = nn.ModuleList()  # registered first: decides the state_dict key order
        self.channels: list[int] = []
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for i, count in enumerate(layers):
            self._make_layer(block_cls, width * 2**i, count, stride=1 if i == 0 else 2)

    def _make_layer(self, block_cls: Block, planes: int, blocks: int, stride: int) -> None:
        downsample = None
        out_ch = planes * block_cls.expansion
        if stride != 1 or self.inplanes != out_ch:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )
        modules = [block_cls(self.inplanes, planes, stride, downsample)]
        self.inplanes = out_ch
        modules += [block_cls(self.inplanes, planes) for _ in range(1, blocks)]
        self.layers.append(nn.Sequential(*modules))
        self.channels.append(out_ch)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs
