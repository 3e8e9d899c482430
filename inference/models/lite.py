"""The seed papers' designs on an ImageNet-pretrained EfficientNet-Lite encoder (models.md section 13).

* ``nanonet-lite0-neo``: NanoNet's idea (a truncated pretrained mobile encoder and its light
  residual decoder with squeeze-excite, spec section 5) on EfficientNet-Lite0 cut at /16, with
  BlazeNeo's trinary head and auxiliary polyp head. The decoder climbs /16 -> /8 -> /4 -> /2 over
  the encoder's taps; the head runs at /2 and its logits are resized to the input.
* ``blazeneo-lite0-neo`` / ``blazeneo-lite2-neo``: BlazeNeo (spec section 3): RFB-lite on the
  /8, /16 and /32 taps, DHA aggregation, trinary head, auxiliary DHA polyp branch (training only).

The builders take ``pretrained=True`` to load the encoder's ImageNet weights from the registry
package (training does); a model rebuilt to receive trained weights needs no package.
"""

from __future__ import annotations

import torch
from torch import nn

from . import register_model
from .base import SegmentationModel, resize_to
from .efficientnet_lite import efficientnet_lite
from .hardnet import BlazeNeo
from .nanonet import DecoderStage, InferenceNanoNet, ResidualBlock


class NanoNetLite(SegmentationModel):
    """EfficientNet-Lite to /16 + NanoNet residual decoder (3 stages) + trinary head at /2 [+ aux polyp head]."""

    def __init__(self, variant: str = "lite0", bridge: int = 128, filters: tuple[int, int, int] = (96, 64, 32),
                 n_classes: int = 3, aux: bool = True, pretrained: bool = False):
        super().__init__()
        self.encoder = efficientnet_lite(variant, depth=4, pretrained=pretrained)
        skip1, skip2, skip3, bottom = self.encoder.channels
        f_deep, f_mid, f_top = filters
        self.bridge = ResidualBlock(bottom, bridge)
        self.stage1 = DecoderStage(bridge, skip3, f_deep, "released")
        self.stage2 = DecoderStage(f_deep, skip2, f_mid, "released")
        self.stage3 = DecoderStage(f_mid, skip1, f_top, "released")
        self.head = nn.Conv2d(f_top, n_classes, 3, padding=1, bias=False)
        self.aux = nn.Conv2d(f_top, 1, 1) if aux else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Final decoder features at /2."""
        s2, s4, s8, s16 = self.encoder(x)
        y = self.bridge(s16)
        y = self.stage1(y, s8)
        y = self.stage2(y, s4)
        return self.stage3(y, s2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_to(self.head(self.features(x)), x)

    def forward_train(self, x: torch.Tensor) -> dict:
        f = self.features(x)
        out = {"main": resize_to(self.head(f), x)}
        if self.aux is not None:
            out["aux"] = resize_to(self.aux(f), x)
        return out

    def for_inference(self) -> InferenceNanoNetLite:
        return InferenceNanoNetLite(self)


class InferenceNanoNetLite(InferenceNanoNet):
    """NanoNetLite.forward with the decoder's BatchNorms folded and its concatenations removed (the same
    rewriting as NanoNet's inference graph, see nanonet.py); the skips are the encoder's taps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s2, s4, s8, s16 = self.encoder(x)
        y = self.stage1(self.bridge(s16), s8)
        y = self.stage3(self.stage2(y, s4), s2)
        return resize_to(self.head(y), x)


NANONET_LITE = {"lite0": dict(bridge=128, filters=(96, 64, 32))}
BLAZENEO_LITE = ("lite0", "lite2")


def _register_nanonet_lite(variant: str) -> None:
    @register_model(f"nanonet-{variant}-neo", head="trinary", input_size=256,
                    description=f"NanoNet decoder on an ImageNet-pretrained EfficientNet-{variant.capitalize()} "
                    "(cut at /16), BlazeNeo's trinary head and auxiliary polyp training")
    def build(aux: bool = True, pretrained: bool = False) -> NanoNetLite:
        return NanoNetLite(variant, **NANONET_LITE[variant], aux=aux, pretrained=pretrained)


def _register_nanonet_lite_binary(variant: str) -> None:
    @register_model(f"nanonet-{variant}", head="binary", input_size=256,
                    description=f"NanoNet decoder on an ImageNet-pretrained EfficientNet-{variant.capitalize()} "
                    "(cut at /16), one polyp channel: for datasets with binary masks (Kvasir-SEG)")
    def build(pretrained: bool = False) -> NanoNetLite:
        return NanoNetLite(variant, **NANONET_LITE[variant], n_classes=1, aux=False, pretrained=pretrained)


def _register_blazeneo_lite(variant: str) -> None:
    @register_model(f"blazeneo-{variant}-neo", head="trinary", input_size=256,
                    description=f"BlazeNeo-DHA (RFB-lite, DHA aggregation, trinary head, auxiliary polyp branch) "
                    f"on an ImageNet-pretrained EfficientNet-{variant.capitalize()}")
    def build(aux: bool = True, pretrained: bool = False) -> BlazeNeo:
        encoder = efficientnet_lite(variant, depth=5, pretrained=pretrained)
        return BlazeNeo("dha", aux=aux, backbone=encoder, channels=encoder.channels[2:])


for _variant in NANONET_LITE:
    _register_nanonet_lite(_variant)
    _register_nanonet_lite_binary(_variant)
for _variant in BLAZENEO_LITE:
    _register_blazeneo_lite(_variant)
