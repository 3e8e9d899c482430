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

    def for_inference(self) -> nn.Module:
        """A module computing the same logits as `forward` with eval statistics, possibly restructured
        to run faster (BatchNorm folded, work moved to lower resolution); the default is the model itself.
        Export and the torch backend run this; training never does."""
        return self.eval()


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


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one convolution equal to conv -> BN with the BN's running statistics."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    return weight.detach().clone(), ((bias - bn.running_mean) * scale + bn.bias).detach().clone()


def conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    """A convolution shaped like `conv` (kernel, stride, padding, dilation, groups) with new weights."""
    out_ch, in_per_group = weight.shape[:2]
    new = nn.Conv2d(in_per_group * conv.groups, out_ch, conv.kernel_size, conv.stride, conv.padding,
                    dilation=conv.dilation, groups=conv.groups, bias=bias is not None)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new.eval()


def folded(block: nn.Sequential) -> nn.Sequential:
    """conv -> BN [-> act] (as made by `conv_bn`) as conv [-> act] with the BN folded in."""
    conv, bn, *act = block
    return nn.Sequential(conv_like(conv, *fold_bn(conv, bn)), *act).eval()


class SqueezeExcite(nn.Module):
    """Channel attention: GAP -> 1x1 (c -> c//r, no bias) -> ReLU -> 1x1 (no bias) -> sigmoid -> scale."""

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        hidden = max(channels // ratio, 1)
        # 1x1 convs on the pooled vector are Keras' bias-free Dense layers, export-friendly.
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The spatial mean, as GlobalAveragePool: ONNX Runtime keeps that in its blocked (NCHWc) layout,
        # where ReduceMean costs a layout conversion of the whole tensor.
        w = F.adaptive_avg_pool2d(x, 1)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w
