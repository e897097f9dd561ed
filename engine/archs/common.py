"""Building blocks shared by several of the paper networks in :mod:`engine.archs`.

Only pieces used by more than one architecture live here: the scale check, the bicubic
"image residual" shortcut, the plain residual block, the PixelShuffle upsampler and the weight
initialisation. Paper-specific blocks (self-attention, CBAM, MFF, ...) stay in their modules so
each paper can be read in one file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

#: Residual branches start at this fraction of a Kaiming-initialised branch (as in ESRGAN's
#: scaled init): every block begins close to the identity, which keeps deep stacks stable.
RESIDUAL_INIT_SCALE = 0.1
#: The RGB output layer of every generator starts at this fraction of its Kaiming init. Each
#: generator's output is a residual (over zero, the input or the bicubic image), and Kaiming
#: variance accumulates through long skips and feature sums (IDRN's eq. 1 adds 17 maps), so
#: without this an untrained net outputs noise of std ~10; with it, about 0.01-0.3.
OUTPUT_INIT_SCALE = 0.01


def check_scale(scale: int, supported: Iterable[int], name: str) -> int:
    """Return ``scale`` as int, or raise ValueError naming the supported scales of ``name``."""
    supported = tuple(supported)
    if isinstance(scale, bool) or int(scale) != scale or int(scale) not in supported:
        raise ValueError(f"{name} supports scales {supported}, not {scale!r}")
    return int(scale)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling (align_corners=False) of an NCHW tensor by an integer ``scale``.

    Used by the optional ``image_residual`` shortcut (the network then predicts a residual over
    this image) and by S3's prior branch, which reads the upsampled face. Not clamped.
    """
    if scale == 1:  # restoration at the native size: the input itself, no resampling
        return x
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h * scale, w * scale), mode="bicubic", align_corners=False)


def conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with 'same' padding (for stride 1), with bias."""
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class ResidualBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 + identity, without batch norm (EDSR style).

    Batch norm is left out on purpose: EDSR and IDRN (S4 sec. 4.2) show it hurts SR, and it
    makes batch-1 inference depend on running statistics.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))

    def residual_convs(self) -> list[nn.Module]:
        """The last layer of the residual branch, scaled down at initialisation."""
        return [self.conv2]


class PixelShuffleUpsampler(nn.Sequential):
    """Sub-pixel upsampling: per factor of 2 (or one factor of 3) a conv to r^2*C channels,
    PixelShuffle(r) and optionally ReLU (SRResNet puts an activation there, EDSR does not).

    x8 = three x2 stages, x4 = two, x2 = one, x3 = one x3 stage, x1 = none (an empty stage:
    restoration at the input's own size). Channel count is unchanged.
    """

    def __init__(self, channels: int, scale: int, act: bool = False) -> None:
        layers: list[nn.Module] = []
        if scale == 1:
            factors = []
        elif scale == 3:
            factors = [3]
        elif scale >= 2 and scale & (scale - 1) == 0:
            factors = [2] * int(math.log2(scale))
        else:
            raise ValueError(f"PixelShuffleUpsampler supports 1, 2, 3, 4, 8, not {scale!r}")
        for r in factors:
            layers += [conv3x3(channels, channels * r * r), nn.PixelShuffle(r)]
            if act:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def init_weights(
    module: nn.Module,
    residual_scale: float = RESIDUAL_INIT_SCALE,
    output_scale: float = OUTPUT_INIT_SCALE,
    zero_output: bool = False,
) -> None:
    """Kaiming-normal (fan-in, ReLU gain) for every conv / linear layer, zero biases; then the
    last layer of every residual branch (modules with a ``residual_convs()`` method) is scaled
    by ``residual_scale`` so each block starts near the identity, and the RGB output layers
    (``output_convs()``) by ``output_scale`` so the untrained output starts near its base.

    ``zero_output`` zeroes the RGB output layers instead: a net that adds its output to the
    bicubic-upsampled input (``image_residual``) then starts exactly at bicubic; scaled Kaiming
    weights alone still left it 4 dB below bicubic (the deep features are large).

    Modules that need a special start (attention gamma = 0) set it in their own constructor,
    after which this function leaves them alone (it only touches conv/linear weights and biases).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    with torch.no_grad():
        for m in module.modules():
            for hook, factor in (
                ("residual_convs", residual_scale),
                ("output_convs", output_scale),
            ):
                convs = getattr(m, hook, None)
                if callable(convs):
                    for conv in convs():
                        conv.weight.mul_(0.0 if hook == "output_convs" and zero_output else factor)
