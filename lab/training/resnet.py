"""The block corruption network: a ResNet trunk whose last layer is a 1x1 convolution.

The trunk is ResNet18 (He et al. 2016: 7x7 stem, max pool, four stages of two basic blocks,
64-128-256-512 channels) written out here, since no pretrained weights or torchvision are used;
``light`` keeps the shape with one block per stage and 3/8 of the channels, for CPU-only
real time. Both end at stride 32, so every output cell speaks for one 32x32 region of the
picture (224x224 in -> 7x7 out; 1080x1920 -> 34x60). Two outputs:

- ``region_prob`` (N, 1, H/32, W/32): the 1x1 convolution over the trunk's features, sigmoid;
- ``frame_prob`` (N, 1): a decision head learned jointly, over the mean and max of the
  features and of the map, for pictures where the area rule is not the best judge.

The network takes RGB in 0-255 (float) and normalises inside, so the runtime only casts.
"""

from __future__ import annotations

import torch
from torch import nn

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)
TRUNKS = {
    "full": ((64, 128, 256, 512), (2, 2, 2, 2)),  # ResNet18
    "light": ((24, 48, 96, 192), (1, 1, 1, 1)),
}


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.down(x))


class Trunk(nn.Module):
    """ResNet stem and four stages; output stride 32."""

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        layers, cin = [], widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(count):
                layers.append(BasicBlock(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
        self.stages = nn.Sequential(*layers)
        self.channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class BlockCorruptionNet(nn.Module):
    """Trunk, 1x1 convolution to a per-region logit, and the joint frame decision head."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, trunk: str = "full") -> None:
        super().__init__()
        widths, blocks = TRUNKS[trunk]
        self.trunk = Trunk(widths, blocks)
        c = self.trunk.channels
        self.region = nn.Conv2d(c, 1, 1)
        self.head = nn.Linear(2 * c + 2, 1)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        assert self.region.bias is not None
        nn.init.constant_(self.region.bias, -2.0)  # most regions are clean

    def logits(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(region logits (N, 1, h, w), frame logits (N, 1)) for RGB in 0-255."""
        feats = self.trunk((rgb - self.mean) / self.std)
        region = self.region(feats)
        prob = torch.sigmoid(region)
        pooled = torch.cat(
            [
                feats.mean(dim=(2, 3)),
                feats.amax(dim=(2, 3)),
                prob.mean(dim=(2, 3)),
                prob.amax(dim=(2, 3)),
            ],
            dim=1,
        )
        return region, self.head(pooled)

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        region, frame = self.logits(rgb)
        return torch.sigmoid(region), torch.sigmoid(frame)
