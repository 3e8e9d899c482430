"""NanoNet A/B/C (Jha et al. 2021) and the -neo variants with BlazeNeo's trinary head (spec §5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polypview.errors import ConfigError

from . import register_model
from .base import SegmentationModel, SqueezeExcite, conv_bn, conv_like, fold_bn, folded, resize_to

KERAS_EPS = 1e-3  # Keras BatchNormalization default (NanoNet is a Keras model)
SHORTCUTS = ("released", "projection")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Keras MobileNetV2 channel rounding: nearest multiple of 8, never losing more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _cbr6(cin: int, cout: int, kernel=1, stride=1, groups=1) -> nn.Sequential:
    return conv_bn(cin, cout, kernel, stride, groups=groups, act=nn.ReLU6(), eps=KERAS_EPS)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> 3x3 depthwise -> 1x1 linear projection [+ x]."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.expand = _cbr6(cin, hidden) if expansion != 1 else nn.Identity()
        self.depthwise = _cbr6(hidden, hidden, 3, stride, groups=hidden)
        self.project = conv_bn(hidden, cout, 1, eps=KERAS_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileNetV2Encoder(nn.Module):
    """Keras MobileNetV2(alpha) up to block_6_expand_relu; returns the taps at s2, s4, s8."""

    def __init__(self, alpha: float):
        super().__init__()
        width = lambda c: make_divisible(int(c * alpha))  # noqa: E731 (Keras' pointwise rule)
        c0, c1, c3 = width(16), width(24), width(32)
        self.stem = _cbr6(3, make_divisible(32 * alpha), 3, 2)
        self.block0 = InvertedResidual(make_divisible(32 * alpha), c0, 1, 1)
        self.block1 = InvertedResidual(c0, c1, 2, 6)
        self.block2 = InvertedResidual(c1, c1, 1, 6)
        self.block3 = InvertedResidual(c1, c3, 2, 6)
        self.block4 = InvertedResidual(c3, c3, 1, 6)
        self.block5 = InvertedResidual(c3, c3, 1, 6)
        self.block6_expand = _cbr6(c3, 6 * c3)
        self.channels = (6 * c0, 6 * c1, 6 * c3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.block0(self.stem(x))
        skip1 = self.block1.expand(x)  # block_1_expand_relu, taken before the stride-2 depthwise
        x = self.block1.project(self.block1.depthwise(skip1))
        x = self.block2(x)
        skip2 = self.block3.expand(x)  # block_3_expand_relu
        x = self.block3.project(self.block3.depthwise(skip2))
        x = self.block5(self.block4(x))
        return skip1, skip2, self.block6_expand(x)


class ResidualBlock(nn.Module):
    """NanoNet's modified residual block RB(cin -> f) with SE (ratio 16).

    shortcut="released" reproduces the published code (and parameter counts): the shortcut is
    a BatchNorm of the main path's own output. "projection" is the paper's / PR #3 version.
    """

    def __init__(self, cin: int, filters: int, shortcut: str = "released"):
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ConfigError(f"NanoNet shortcut {shortcut!r} is not one of {', '.join(SHORTCUTS)}")
        q = filters // 4
        self.main = nn.Sequential(
            conv_bn(cin, q, 1, bias=True, act=nn.ReLU(), eps=KERAS_EPS),
            conv_bn(q, q, 3, bias=True, act=nn.ReLU(), eps=KERAS_EPS),
            conv_bn(q, filters, 3, bias=True, eps=KERAS_EPS),
        )
        self.projection = shortcut == "projection"
        if self.projection:
            self.shortcut = conv_bn(cin, filters, 1, bias=True, eps=KERAS_EPS)
        else:
            self.shortcut = nn.BatchNorm2d(filters, eps=KERAS_EPS)
        self.se = SqueezeExcite(filters, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        s = self.shortcut(x if self.projection else y)
        return self.se(F.relu(y + s))


class DecoderStage(nn.Module):
    """Skip -> 1x1 CBR; running tensor up x2; concat [decoder, skip]; RB."""

    def __init__(self, cin: int, skip_ch: int, filters: int, shortcut: str):
        super().__init__()
        self.skip = conv_bn(skip_ch, filters, 1, bias=True, act=nn.ReLU(), eps=KERAS_EPS)
        self.block = ResidualBlock(cin + filters, filters, shortcut)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        skip = self.skip(skip)
        return self.block(torch.cat([resize_to(x, skip), skip], dim=1))


class NanoNet(SegmentationModel):
    """MobileNetV2 encoder + 3 residual decoder stages; skip 0 is the raw input image.

    n_classes=1 is the published binary model (1x1 conv+b head). n_classes=3 is the -neo
    variant: BlazeNeo's bias-free 3x3 trinary head, plus (aux=True) a 1x1 binary polyp head on
    the same final features, used only by training (it lives under `aux`).
    """

    def __init__(self, alpha: float, bridge: int, filters: tuple[int, int, int],
                 n_classes: int = 1, shortcut: str = "released", aux: bool = False):
        super().__init__()
        self.encoder = MobileNetV2Encoder(alpha)
        skip1, skip2, bottleneck = self.encoder.channels
        f_deep, f_mid, f_top = filters
        self.bridge = ResidualBlock(bottleneck, bridge, shortcut)
        self.stage1 = DecoderStage(bridge, skip2, f_deep, shortcut)
        self.stage2 = DecoderStage(f_deep, skip1, f_mid, shortcut)
        self.stage3 = DecoderStage(f_mid, 3, f_top, shortcut)
        if n_classes == 1:
            self.head = nn.Conv2d(f_top, 1, 1)
        else:
            self.head = nn.Conv2d(f_top, n_classes, 3, padding=1, bias=False)
        self.aux = nn.Conv2d(f_top, 1, 1) if aux else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Final decoder features at the input resolution."""
        skip1, skip2, bottom = self.encoder(x)
        y = self.bridge(bottom)
        y = self.stage1(y, skip2)
        y = self.stage2(y, skip1)
        return self.stage3(y, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward_train(self, x: torch.Tensor) -> dict:
        f = self.features(x)
        out = {"main": self.head(f)}
        if self.aux is not None:
            out["aux"] = self.aux(f)
        return out

    def for_inference(self) -> InferenceNanoNet:
        return InferenceNanoNet(self)


# ------------------------------------------------------------------------ the inference graph
#
# The same function as NanoNet.forward (eval mode), arranged to cost less:
#  * every BatchNorm is folded into the convolution before it;
#  * the "released" shortcut, BN(y) added to y, is a per-channel affine map of y: it is folded into
#    the block's last convolution, so relu(y + BN(y)) becomes relu(conv'(.));
#  * a decoder stage upsamples the deep tensor x (192/128/64 channels), concatenates the skip and
#    applies a 1x1 convolution to the concatenation. Bilinear resizing is linear and acts on each
#    channel alone, so it commutes with a bias-free 1x1 convolution: W [up(x), s] + b equals
#    up(W_x x) + W_s s + b. The 1x1 convolution of x runs at the low resolution and only its
#    q = filters/4 output channels are upsampled; the concatenation disappears.
# At 192x192 on ONNX Runtime CPU this removes most of the Resize, Concat and layout-reorder time.


class InferenceResidualBlock(nn.Module):
    """ResidualBlock with folded BatchNorms; with `split`, its first 1x1 conv is cut in two along the input
    channels (the first `split` channels come upsampled from a lower resolution, see InferenceDecoderStage)."""

    def __init__(self, block: ResidualBlock, split: int | None = None):
        super().__init__()
        first, second, third = block.main
        w0, b0 = fold_bn(first[0], first[1])
        self.low = conv_like(first[0], w0[:, :split], None) if split else None
        self.first = conv_like(first[0], w0[:, split:] if split else w0, b0)
        self.second = folded(second)
        w2, b2 = fold_bn(third[0], third[1])
        if block.projection:
            self.shortcut = folded(block.shortcut)
        else:  # relu(y + BN(y)) = relu((1 + a) y + c), BN(y) = a y + c per channel
            bn = block.shortcut
            a = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
            c = (bn.bias - bn.running_mean * a).detach()
            w2, b2 = w2 * (1 + a).reshape(-1, 1, 1, 1), b2 * (1 + a) + c
            self.shortcut = None
        self.third = conv_like(third[0], w2, b2)
        self.se = block.se

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(F.relu(self.first(x)), x)

    def finish(self, h: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        """The block after its first conv+ReLU (h); x is the block's input (for a projection shortcut)."""
        y = self.third(self.second(h))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.se(F.relu(y))


class InferenceDecoderStage(nn.Module):
    """DecoderStage with folded BNs; with the released shortcut the deep tensor is reduced before upsampling."""

    def __init__(self, stage: DecoderStage):
        super().__init__()
        self.skip = folded(stage.skip)
        deep = stage.block.main[0][0].in_channels - stage.skip[0].out_channels
        self.split = not stage.block.projection  # a projection shortcut needs the concatenation itself
        self.block = InferenceResidualBlock(stage.block, split=deep if self.split else None)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        skip = self.skip(skip)
        if self.split:
            h = F.relu(resize_to(self.block.low(x), skip) + self.block.first(skip))
            return self.block.finish(h, None)
        return self.block(torch.cat([resize_to(x, skip), skip], dim=1))


class InferenceNanoNet(nn.Module):
    """NanoNet.forward for inference only (see the comment above); made by NanoNet.for_inference()."""

    def __init__(self, net: NanoNet):
        super().__init__()
        net = net.eval()
        self.encoder = net.encoder  # ONNX Runtime folds its BNs itself; the taps need its own forward
        self.bridge = InferenceResidualBlock(net.bridge)
        self.stage1 = InferenceDecoderStage(net.stage1)
        self.stage2 = InferenceDecoderStage(net.stage2)
        self.stage3 = InferenceDecoderStage(net.stage3)
        self.head = net.head
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip1, skip2, bottom = self.encoder(x)
        y = self.bridge(bottom)
        y = self.stage1(y, skip2)
        y = self.stage2(y, skip1)
        return self.head(self.stage3(y, x))


_CONFIGS = {
    "a": dict(alpha=0.5, bridge=192, filters=(128, 64, 32)),
    "b": dict(alpha=0.35, bridge=128, filters=(96, 64, 32)),
    "c": dict(alpha=0.35, bridge=48, filters=(32, 24, 16)),
}
_PUBLISHED = {"a": 235_425, "b": 132_049, "c": 36_561}  # Keras totals (incl. BN mean/var)


def _register_variant(letter: str) -> None:
    cfg = _CONFIGS[letter]

    @register_model(f"nanonet-{letter}", head="binary", input_size=256,
                    published_params=_PUBLISHED[letter], count_bn_stats=True,
                    description=f"NanoNet-{letter.upper()} (Jha et al. 2021), binary polyp, from scratch")
    def binary(shortcut: str = "released") -> NanoNet:
        return NanoNet(**cfg, n_classes=1, shortcut=shortcut)

    @register_model(f"nanonet-{letter}-neo", head="trinary", input_size=256,
                    description=f"NanoNet-{letter.upper()} with BlazeNeo's trinary head "
                    "(neoplastic / non-neoplastic / background) and auxiliary polyp training")
    def neo(shortcut: str = "released", aux: bool = True) -> NanoNet:
        return NanoNet(**cfg, n_classes=3, shortcut=shortcut, aux=aux)


for _letter in _CONFIGS:
    _register_variant(_letter)
