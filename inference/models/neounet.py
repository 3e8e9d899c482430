"""NeoUNet (Lan et al. 2021, spec §4): HarDNet68 U-Net with additive attention gates.

Head: 2 logits [neoplastic, non-neoplastic] with independent sigmoids (BlazeNeo's order; the
NeoUNet repo uses [non, neo]). forward() is the finest output; forward_train adds the three
coarser ones under "deep", all resized to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .base import SegmentationModel, resize_to
from .hardnet import HarDNet68


class AttentionGate(nn.Module):
    """Single-channel additive attention: x (fine) is gated by g (half x's resolution)."""

    def __init__(self, x_channels: int, g_channels: int):
        super().__init__()
        self.conv_g = nn.Conv2d(g_channels, 1, 1)
        self.conv_x = nn.Conv2d(x_channels, 1, 1, bias=False)
        self.conv_alpha = nn.Conv2d(1, 1, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.conv_g(g) + self.conv_x(resize_to(x, g)))
        return x * resize_to(torch.sigmoid(self.conv_alpha(a)), x)


def up(cin: int, cout: int) -> nn.ConvTranspose2d:
    """Learned x2 up-sampling: transposed conv 4x4 stride 2, bias-free."""
    return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)


def dec(cin: int, cout: int) -> nn.Sequential:
    """conv+b 3x3 -> BN -> LeakyReLU -> conv+b 3x3 -> BN -> LeakyReLU (cin -> cout/2 -> cout)."""
    mid = cout // 2
    return nn.Sequential(
        nn.Conv2d(cin, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.LeakyReLU(0.01),
        nn.Conv2d(mid, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.01),
    )


class NeoUNet(SegmentationModel):
    """HarDNet68 encoder (taps s2..s32), 4 decoder levels, 4 deep-supervised 1x1 heads.

    The transposed convs double sizes exactly, so H and W must be multiples of 32.
    """

    def __init__(self, n_classes: int = 2):
        super().__init__()
        self.encoder = HarDNet68()
        c0, c1, c2, c3, c4 = self.encoder.channels
        self.gate3, self.gate2, self.gate1 = AttentionGate(c3, c4), AttentionGate(c2, c3), AttentionGate(c1, c2)
        self.up3, self.up2, self.up1, self.up0 = up(c4, c3), up(c3, c2), up(c2, c1), up(c1, c0)
        self.dec3, self.dec2, self.dec1, self.dec0 = dec(2 * c3, c3), dec(2 * c2, c2), dec(2 * c1, c1), dec(2 * c0, c0)
        self.out0, self.out1, self.out2, self.out3 = (nn.Conv2d(c, n_classes, 1) for c in (c0, c1, c2, c3))

    def decode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Decoder features (d0@s2, d1@s4, d2@s8, d3@s16); concat orders as in the paper's code."""
        o0, o1, o2, o3, o4 = self.encoder(x)
        d3 = self.dec3(torch.cat([self.up3(o4), self.gate3(o3, o4)], 1))
        d2 = self.dec2(torch.cat([self.gate2(o2, d3), self.up2(d3)], 1))
        d1 = self.dec1(torch.cat([self.gate1(o1, d2), self.up1(d2)], 1))
        d0 = self.dec0(torch.cat([o0, self.up0(d1)], 1))
        return d0, d1, d2, d3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_to(self.out0(self.decode(x)[0]), x)

    def forward_train(self, x: torch.Tensor) -> dict:
        d0, d1, d2, d3 = self.decode(x)
        deep = [resize_to(head(d), x) for head, d in ((self.out1, d1), (self.out2, d2), (self.out3, d3))]
        return {"main": resize_to(self.out0(d0), x), "deep": deep}


@register_model("neounet", head="multilabel", input_size=352, published_params=38_288_397,
                description="NeoUNet (Lan et al. 2021), [neoplastic, non-neoplastic] sigmoids, "
                "HarDNet68 from scratch")
def neounet() -> NeoUNet:
    return NeoUNet(2)
