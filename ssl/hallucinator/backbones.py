"""ResNet backbones built from torchvision's residual blocks.

Two stems are used in the paper (Sec 4.1): the CIFAR stem (3x3 stride-1 conv, no max-pool) for
the small-scale ResNet-18 runs, and the standard ImageNet stem for ResNet-50. A ``width`` option
scales every stage so CPU profiles can train narrow networks; at ``width=64`` the module names
and shapes are exactly torchvision's ``resnet18``/``resnet50`` (minus ``fc``), so checkpoints
convert to detectron2 and load into torchvision without renaming.
"""
from __future__ import annotations

from typing import Sequence, Type, Union

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

Block = Type[Union[BasicBlock, Bottleneck]]

_ARCHS: dict[str, tuple[Block, tuple[int, int, int, int], bool]] = {
    # name: (block, blocks per stage, cifar stem)
    "resnet18_cifar": (BasicBlock, (2, 2, 2, 2), True),
    "resnet18": (BasicBlock, (2, 2, 2, 2), False),
    "resnet50": (Bottleneck, (3, 4, 6, 3), False),
    "resnet50_cifar": (Bottleneck, (3, 4, 6, 3), True),
}


class ResNetBackbone(nn.Module):
    """A ResNet trunk returning pooled features (``N x out_dim``); no classifier.

    Args:
        block: torchvision ``BasicBlock`` or ``Bottleneck``.
        layers: number of blocks in each of the four stages.
        cifar_stem: 3x3 stride-1 first conv and no max-pool (small images) instead of 7x7/2 + pool.
        width: channels of the first stage (64 = the standard network).
        in_channels: image channels (3 for RGB, 1 for Fashion-MNIST).
    """

    def __init__(self, block: Block, layers: Sequence[int], cifar_stem: bool, width: int = 64,
                 in_channels: int = 3) -> None:
        super().__init__()
        if width < 1 or len(layers) != 4:
            raise ValueError(f"need width >= 1 and four stages, got width={width}, layers={layers}")
        self.inplanes = width
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._stage(block, width, layers[0], stride=1)
        self.layer2 = self._stage(block, width * 2, layers[1], stride=2)
        self.layer3 = self._stage(block, width * 4, layers[2], stride=2)
        self.layer4 = self._stage(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Identity()  # keeps torchvision's module list; no classifier weights
        self.out_dim = width * 8 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block: Block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        # torchvision's Bottleneck derives its inner width from base_width=64; keep it so that
        # width=64 reproduces torchvision exactly and other widths scale uniformly.
        mods = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)  # N x out_dim


def build_backbone(name: str, width: int = 64, in_channels: int = 3) -> ResNetBackbone:
    """Builds a randomly initialised backbone by name (see ``BACKBONES``)."""
    if name not in _ARCHS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_ARCHS)}")
    block, layers, cifar_stem = _ARCHS[name]
    return ResNetBackbone(block, layers, cifar_stem, width=width, in_channels=in_channels)


def zero_init_residual(backbone: nn.Module) -> None:
    """Zeroes the last BN weight of every residual branch, so each block starts as the identity
    (torchvision's ``zero_init_residual=True``; the released SimSiam configs set it)."""
    for m in backbone.modules():
        if isinstance(m, Bottleneck):
            nn.init.zeros_(m.bn3.weight)
        elif isinstance(m, BasicBlock):
            nn.init.zeros_(m.bn2.weight)


BACKBONES = tuple(sorted(_ARCHS))
