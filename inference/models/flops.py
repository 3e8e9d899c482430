"""Multiply-accumulate counts of a model's inference graph (conv + linear layers, by hooks).

The BlazeNeo paper's "GFLOPs" are ptflops GMACs at 352x352 (spec §10.2); BN, activations and
biases are not counted here, which explains the ~0.3 % gap to those figures.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv_macs(module: nn.Conv2d, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Every output element costs (cin / groups) * kh * kw multiply-adds."""
    kh, kw = module.kernel_size
    return out.numel() * (module.in_channels // module.groups) * kh * kw


def _transposed_macs(module: nn.ConvTranspose2d, inp: torch.Tensor, out: torch.Tensor,
                     per_output: bool) -> int:
    """True cost: every input element is scattered to (cout / groups) * kh * kw outputs.

    per_output=True charges each *output* position a full kernel (older ptflops), which is
    how the BlazeNeo paper's NeoUNet figure was obtained.
    """
    kh, kw = module.kernel_size
    per_position = module.in_channels * (module.out_channels // module.groups) * kh * kw
    positions = math.prod(out.shape[2:]) if per_output else math.prod(inp.shape[2:])
    return out.shape[0] * positions * per_position


def _linear_macs(module: nn.Linear, inp: torch.Tensor, out: torch.Tensor) -> int:
    return out.numel() * module.in_features


def count_macs(model: nn.Module, input_size, transposed_per_output: bool = False) -> int:
    """MACs of model.forward on one (1, 3, H, W) input; input_size is an int or (H, W)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    total = [0]

    def hook(module, inputs, output):
        if isinstance(module, nn.ConvTranspose2d):
            total[0] += _transposed_macs(module, inputs[0], output, transposed_per_output)
        elif isinstance(module, nn.Conv2d):
            total[0] += _conv_macs(module, inputs[0], output)
        elif isinstance(module, nn.Linear):
            total[0] += _linear_macs(module, inputs[0], output)

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total[0]
