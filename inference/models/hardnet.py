"""HarDNet68 backbone (spec §1), HarDNet-MSEG (§2) and BlazeNeo with its four aggregations (§3).

The module tree follows PingoLH's naming (``base.<idx>.conv/norm``,
``base.<idx>.layers.<j>.conv/norm``) so that ImageNet HarDNet68 weights could be loaded as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .base import SegmentationModel, resize_to

C = 32  # decoder width of MSEG and BlazeNeo

# HarDNet68: growth rate, layer count, transition width and "max-pool after" per block.
HARDNET68_BLOCKS = (
    (14, 8, 128, True),
    (16, 16, 256, False),
    (20, 16, 320, True),
    (40, 16, 640, True),
    (160, 4, 1024, False),
)
HARDNET68_MULT = 1.7
# Indices in `base` of the taps at s2, s4, s8, s16, s32.
HARDNET68_TAPS = (1, 4, 9, 12, 15)


class ConvLayer(nn.Sequential):
    """Bias-free conv -> BN -> ReLU6 (HarDNet's CBR6)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False))
        self.add_module("norm", nn.BatchNorm2d(cout))
        self.add_module("relu", nn.ReLU6())


def harmonic_links(layer: int) -> list[int]:
    """Inputs of layer k: k - 2^i for every 2^i dividing k, nearest first."""
    links, step = [], 1
    while step <= layer:
        if layer % step == 0:
            links.append(layer - step)
        step *= 2
    return links


def harmonic_widths(in_channels: int, growth: int, n_layers: int, mult: float = HARDNET68_MULT):
    """Per-layer (input width, output width) of a HarDBlock, layers 1..n."""
    out_widths = [in_channels]
    shapes = []
    for k in range(1, n_layers + 1):
        links = harmonic_links(k)
        width = growth * mult ** (len(links) - 1)
        width = int(int(width + 1) / 2) * 2  # HarDNet's rounding to an even integer
        shapes.append((sum(out_widths[j] for j in links), width))
        out_widths.append(width)
    return shapes


def harmonic_outputs(n_layers: int) -> list[int]:
    """Layers concatenated into the block output: the odd ones and the last one."""
    return [k for k in range(1, n_layers + 1) if k % 2 == 1 or k == n_layers]


class HarDBlock(nn.Module):
    """Harmonic densely connected block (spec §1.2)."""

    def __init__(self, in_channels: int, growth: int, n_layers: int, mult: float = HARDNET68_MULT):
        super().__init__()
        shapes = harmonic_widths(in_channels, growth, n_layers, mult)
        self.links = [harmonic_links(k) for k in range(1, n_layers + 1)]
        self.outputs = harmonic_outputs(n_layers)
        self.layers = nn.ModuleList(ConvLayer(cin, cout) for cin, cout in shapes)
        self.out_channels = sum(shapes[k - 1][1] for k in self.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer, links in zip(self.layers, self.links):
            inputs = [feats[j] for j in links]
            feats.append(layer(torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0]))
        return torch.cat([feats[k] for k in self.outputs], 1)


class HarDNet68(nn.Module):
    """HarDNet68 without the ImageNet classifier; forward returns the taps at s2..s32."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [ConvLayer(3, 32, 3, 2), ConvLayer(32, 64, 3),
                                   nn.MaxPool2d(3, 2, 1)]
        channels = 64
        for growth, n_layers, width, pool in HARDNET68_BLOCKS:
            block = HarDBlock(channels, growth, n_layers)
            layers += [block, ConvLayer(block.out_channels, width, 1)]
            if pool:
                layers.append(nn.MaxPool2d(2, 2))
            channels = width
        self.base = nn.ModuleList(layers)
        self.channels = (64, 128, 320, 640, 1024)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for idx, layer in enumerate(self.base):
            x = layer(x)
            if idx in HARDNET68_TAPS:
                taps.append(x)
        return taps


def _cb(cin: int, cout: int, kernel=3, padding=None, dilation=1) -> nn.Sequential:
    """Bias-free conv -> BN, no activation (PraNet's BasicConv2d as it behaves)."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    if padding is None:
        padding = (dilation * (kh // 2), dilation * (kw // 2))
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, 1, padding, dilation, bias=False),
                         nn.BatchNorm2d(cout))


def _cbr(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class RFB(nn.Module):
    """Full receptive-field block (PraNet's RFB_modified): CB chains, residual, final ReLU."""

    def __init__(self, cin: int, c: int = C):
        super().__init__()
        self.branch0 = _cb(cin, c, 1)
        self.branch1 = self._branch(cin, c, 3)
        self.branch2 = self._branch(cin, c, 5)
        self.branch3 = self._branch(cin, c, 7)
        self.fuse = _cb(4 * c, c, 3)
        self.residual = _cb(cin, c, 1)

    @staticmethod
    def _branch(cin: int, c: int, k: int) -> nn.Sequential:
        return nn.Sequential(_cb(cin, c, 1), _cb(c, c, (1, k)), _cb(c, c, (k, 1)),
                             _cb(c, c, 3, dilation=k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        return F.relu(self.fuse(torch.cat(branches, 1)) + self.residual(x))


class RFBLite(nn.Module):
    """BlazeNeo's simplified RFB: linear inner branches, 1x1 fuse, no residual path."""

    def __init__(self, cin: int, c: int = C):
        super().__init__()
        conv = lambda i, o, k, d=1: nn.Conv2d(i, o, k, 1, d * (k // 2), d, bias=False)  # noqa: E731
        self.branch0 = _cbr(cin, c, 1)
        self.branch1 = nn.Sequential(conv(cin, c, 1), conv(c, c, 3))
        self.branch2 = nn.Sequential(conv(cin, c, 1), conv(c, c, 3), conv(c, c, 3, 3))
        self.branch3 = nn.Sequential(conv(cin, c, 1), conv(c, c, 5), conv(c, c, 3, 5))
        self.fuse = _cbr(4 * c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        return self.fuse(torch.cat(branches, 1))


class PartialDecoder(nn.Module):
    """MSEG's cascaded partial decoder: dense aggregation by multiplication, output at s8."""

    def __init__(self, n_classes: int, c: int = C):
        super().__init__()
        self.up1, self.up2, self.up3, self.up4 = (_cb(c, c) for _ in range(4))
        self.up5 = _cb(2 * c, 2 * c)
        self.concat2 = _cb(2 * c, 2 * c)
        self.concat3 = _cb(3 * c, 3 * c)
        self.conv4 = _cb(3 * c, 3 * c)
        self.conv5 = nn.Conv2d(3 * c, n_classes, 1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> torch.Tensor:
        up = lambda t, ref: resize_to(t, ref, align_corners=True)  # noqa: E731
        x1_s16 = up(x1, x2)
        x2_1 = self.up1(x1_s16) * x2
        x3_1 = self.up2(up(x1_s16, x3)) * self.up3(up(x2, x3)) * x3
        x2_2 = self.concat2(torch.cat([x2_1, self.up4(x1_s16)], 1))
        x3_2 = self.concat3(torch.cat([x3_1, self.up5(up(x2_2, x3))], 1))
        return self.conv5(self.conv4(x3_2))


class HarDNetMSEG(SegmentationModel):
    """HarDNet68 + three full RFBs + cascaded partial decoder; logits resized x8."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.backbone = HarDNet68()
        self.rfb2, self.rfb3, self.rfb4 = RFB(320), RFB(640), RFB(1024)
        self.decoder = PartialDecoder(n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *_, s8, s16, s32 = self.backbone(x)
        logits = self.decoder(self.rfb4(s32), self.rfb3(s16), self.rfb2(s8))
        return resize_to(logits, x)


def double_conv(k: int, c: int = C) -> nn.Sequential:
    """BlazeNeo's D(k): CBR 3x3 (k*C -> C) -> CBR 3x3 (C -> C)."""
    return nn.Sequential(_cbr(k * c, c), _cbr(c, c))


class Aggregation(nn.Module):
    """BlazeNeo feature aggregation (LSC, IDA, DIA or DHA) of x1@s32, x2@s16, x3@s8 -> C@s8."""

    NODES = {  # node name -> D(k) width factor, per scheme
        "lsc": {"n22": 2, "n33": 2},
        "ida": {"n22": 2, "n23": 2, "n33": 2},
        "dia": {"n22": 2, "n23": 2, "n33": 3},
        "dha": {"n22": 2, "n23": 2, "n33": 3, "n32": 2, "n31": 2},
    }

    def __init__(self, scheme: str, c: int = C):
        super().__init__()
        self.scheme = scheme
        self.nodes = nn.ModuleDict({n: double_conv(k, c) for n, k in self.NODES[scheme].items()})

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> torch.Tensor:
        d = self.nodes
        n22 = d["n22"](torch.cat([resize_to(x1, x2), x2], 1))
        if self.scheme == "lsc":
            return d["n33"](torch.cat([resize_to(n22, x3), x3], 1))
        n23 = d["n23"](torch.cat([resize_to(x2, x3), x3], 1))
        if self.scheme == "ida":
            return d["n33"](torch.cat([resize_to(n22, x3), n23], 1))
        n33 = d["n33"](torch.cat([resize_to(n22, x3), n23, x3], 1))
        if self.scheme == "dia":
            return n33
        n32 = d["n32"](torch.cat([resize_to(n22, x3), n33], 1))
        return d["n31"](torch.cat([resize_to(x1, x3), n32], 1))


class BlazeNeoBranch(nn.Module):
    """Aggregation + BlazeNeo head (bias-free 3x3 conv, no BN or activation) at s8."""

    def __init__(self, scheme: str, n_classes: int, c: int = C):
        super().__init__()
        self.aggregation = Aggregation(scheme, c)
        self.head = nn.Conv2d(c, n_classes, 3, padding=1, bias=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> torch.Tensor:
        return self.head(self.aggregation(x1, x2, x3))


class BlazeNeo(SegmentationModel):
    """HarDNet68 + RFB-lite + aggregation + trinary head; the aux binary branch (always DHA) trains only."""

    def __init__(self, scheme: str, n_classes: int = 3, aux: bool = True, backbone: nn.Module | None = None,
                 channels: tuple[int, int, int] = (320, 640, 1024)):
        super().__init__()
        # The published network is HarDNet68; another backbone must return its taps ending with s8, s16, s32
        # having `channels` channels.
        self.backbone = HarDNet68() if backbone is None else backbone
        self.rfb2, self.rfb3, self.rfb4 = (RFBLite(c) for c in channels)
        self.main = BlazeNeoBranch(scheme, n_classes)
        self.aux = BlazeNeoBranch("dha", 1) if aux else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """RFB outputs (x1@s32, x2@s16, x3@s8)."""
        *_, s8, s16, s32 = self.backbone(x)
        return self.rfb4(s32), self.rfb3(s16), self.rfb2(s8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_to(self.main(*self.encode(x)), x)

    def forward_train(self, x: torch.Tensor) -> dict:
        feats = self.encode(x)
        out = {"main": resize_to(self.main(*feats), x)}
        if self.aux is not None:
            out["aux"] = resize_to(self.aux(*feats), x)
        return out


_BLAZENEO_PUBLISHED = {"dha": 17_143_324}
_BLAZENEO_MEASURED = {"lsc": 17_050_780, "ida": 17_078_556, "dia": 17_087_772}


def _register_blazeneo(scheme: str) -> None:
    # The spec reproduced the LSC/IDA/DIA counts with the same reading as DHA's published one.
    count = _BLAZENEO_PUBLISHED.get(scheme, _BLAZENEO_MEASURED.get(scheme))

    @register_model(f"blazeneo-{scheme}", head="trinary", input_size=352, published_params=count,
                    description=f"BlazeNeo ({scheme.upper()} aggregation, An et al. 2022), "
                    "HarDNet68 from scratch")
    def build(aux: bool = True) -> BlazeNeo:
        return BlazeNeo(scheme, aux=aux)


for _scheme in Aggregation.NODES:
    _register_blazeneo(_scheme)


@register_model("hardnet-mseg", head="binary", input_size=352, published_params=17_423_837,
                description="HarDNet-MSEG (Huang et al. 2021), binary polyp, HarDNet68 from scratch")
def hardnet_mseg() -> HarDNetMSEG:
    return HarDNetMSEG(1)


@register_model("hardnet-mseg3", head="trinary", input_size=352, published_params=17_424_031,
                description="HarDNet-MSEG with a 3-class NeoPolyp head (BlazeNeo's baseline)")
def hardnet_mseg3() -> HarDNetMSEG:
    return HarDNetMSEG(3)
