"""Shared base class and small building blocks for the zoo's networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationModel(nn.Module):
    """Base: forward(x) gives the main logits at input size; forward_train(x) a dict of outputs."""

    def forward_train(self, x: torch.Tensor) -> dict:
        """Training outputs; the default is the main logits only."""
        return {"main": self(x)}


def resize_to(x: torch.Tensor, ref: torch.Tensor, align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of x to the spatial size of ref (explicit size: exports to ONNX Resize)."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=align_corners)


def conv_bn(cin: int, cout: int, kernel=3, stride=1, padding=None, dilation=1, groups=1,
            bias=False, act: nn.Module | None = None, eps: float = 1e-5) -> nn.Sequential:
    """conv -> BN [-> act], padding defaulting to 'same' for odd kernels."""
    if padding is None:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (dilation * (kh // 2), dilation * (kw // 2))
    layers = [
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=bias),
        nn.BatchNorm2d(cout, eps=eps),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: GAP -> 1x1 (c -> c//r, no bias) -> ReLU -> 1x1 (no bias) -> sigmoid -> scale."""

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        hidden = max(channels // ratio, 1)
        # 1x1 convs on the pooled vector are Keras' bias-free Dense layers, export-friendly.
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w
