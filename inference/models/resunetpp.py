"""ResUNet++ (Jha et al. 2019, spec §6): residual U-Net with SE, ASPP and attention; binary."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .base import SegmentationModel, SqueezeExcite

KERAS_EPS = 1e-3  # ResUNet++ is a Keras model
SE_RATIO = 8


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=KERAS_EPS)


def _bn_relu_conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Pre-activation unit: BN -> ReLU -> conv+b 3x3."""
    return nn.Sequential(_bn(cin), nn.ReLU(), nn.Conv2d(cin, cout, 3, stride, 1))


class Stem(nn.Module):
    """conv 3x3 -> BN -> ReLU -> conv 3x3, plus a 1x1 conv + BN shortcut, then SE."""

    def __init__(self, cin: int, c: int):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(cin, c, 3, padding=1), _bn(c), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=1))
        self.shortcut = nn.Sequential(nn.Conv2d(cin, c, 1), _bn(c))
        self.se = SqueezeExcite(c, SE_RATIO)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.main(x) + self.shortcut(x))


class ResBlock(nn.Module):
    """Pre-activation residual block with a 1x1 conv + BN shortcut, then SE."""

    def __init__(self, cin: int, c: int, stride: int = 1):
        super().__init__()
        self.main = nn.Sequential(_bn_relu_conv(cin, c, stride), _bn_relu_conv(c, c))
        self.shortcut = nn.Sequential(nn.Conv2d(cin, c, 1, stride), _bn(c))
        self.se = SqueezeExcite(c, SE_RATIO)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.main(x) + self.shortcut(x))


class ASPP(nn.Module):
    """Four parallel 3x3 convs (dilation 1/6/12/18) + BN, summed, then a 1x1 conv; no ReLU."""

    def __init__(self, cin: int, c: int, rates=(1, 6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, c, 3, padding=r, dilation=r), _bn(c)) for r in rates
        )
        self.project = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.branches[0](x)
        for branch in self.branches[1:]:
            total = total + branch(x)
        return self.project(total)


class Attention(nn.Module):
    """Attention of the encoder skip g (2x resolution) on the decoder tensor x."""

    def __init__(self, g_ch: int, x_ch: int):
        super().__init__()
        self.g_path = nn.Sequential(_bn_relu_conv(g_ch, x_ch), nn.MaxPool2d(2, 2))
        self.x_path = _bn_relu_conv(x_ch, x_ch)
        self.fuse = _bn_relu_conv(x_ch, x_ch)

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.g_path(g) + self.x_path(x)) * x


class Decoder(nn.Module):
    """Attention -> nearest x2 -> concat [attended, skip] -> ResBlock."""

    def __init__(self, g_ch: int, x_ch: int, c: int):
        super().__init__()
        self.attention = Attention(g_ch, x_ch)
        self.block = ResBlock(x_ch + g_ch, c)

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(self.attention(g, x), size=g.shape[-2:], mode="nearest")
        return self.block(torch.cat([y, g], 1))


class ResUNetPlusPlus(SegmentationModel):
    """Stem + 3 strided residual blocks, ASPP bridge, 3 attention decoders, ASPP + 1x1 head.

    The attention max-pools the skip, so H and W must be multiples of 8.
    """

    def __init__(self, n_classes: int = 1, widths=(16, 32, 64, 128, 256)):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.c1 = Stem(3, w0)
        self.c2, self.c3, self.c4 = ResBlock(w0, w1, 2), ResBlock(w1, w2, 2), ResBlock(w2, w3, 2)
        self.bridge = ASPP(w3, w4)
        self.d1, self.d2, self.d3 = Decoder(w2, w4, w3), Decoder(w1, w3, w2), Decoder(w0, w2, w1)
        self.out_aspp = ASPP(w1, w0)
        self.head = nn.Conv2d(w0, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.c1(x)
        c2 = self.c2(c1)
        c3 = self.c3(c2)
        y = self.bridge(self.c4(c3))
        y = self.d3(c1, self.d2(c2, self.d1(c3, y)))
        return self.head(self.out_aspp(y))


@register_model("resunetpp", head="binary", input_size=256, published_params=4_070_385,
                count_bn_stats=True,
                description="ResUNet++ (Jha et al. 2019), binary polyp, from scratch")
def resunetpp() -> ResUNetPlusPlus:
    return ResUNetPlusPlus(1)
