"""S4: IDRN, improved deep residual network for face super-resolution.

Paper (sec. 2, figs. 2-4, eq. 1, tables 1-2):
- SRResNet base without batch norm: conv -> shallow features X0 -> N improved residual units
  -> reconstruction (PixelShuffle upsampling + conv).
- Improved residual unit (fig. 3b): BN removed; dense connections inside the unit (each conv
  receives the unit input and the outputs of all earlier convs, concatenated); the unit input
  is added; a ReLU at the output.
- Global-local residual (eq. 1): the reconstruction module receives X0 + X1 + ... + XN.
- Depth 16 (table 1) and width 128 (table 2); MSE loss; 32x32 input at x4.

Choices where the paper is silent, and deviations:
- Two 3x3 convs per unit, as the traditional SRResNet unit it modifies (fig. 3a), each
  followed by ReLU; a 1x1 conv fuses concat(input, conv1, conv2) (3C) back to C (MODELS.md);
  unit output = ReLU(fuse + input).
- Reconstruction: one conv(C -> r^2 C) + PixelShuffle(r) + ReLU per stage (x2: one x2 stage,
  x3: one x3, x4: two x2, x8: three x2; x8 is not in the paper), then a 3x3 conv to RGB. All
  kernels 3x3 (SRResNet uses 9x9 end convs) and ReLU instead of PReLU.
- The sum X0 + ... + XN grows with N, so every unit's fuse conv starts scaled down.
- ``image_residual`` (default off, not in the paper): when on, the bicubic-upsampled input is
  added to the output (residual over bicubic), which converges far faster on a CPU budget.
- Scale 1 (not in the paper; issue 24's restoration at the native size): no reconstruction
  stage at all -- the tail reads X0 + ... + XN directly and, with ``image_residual``, its output
  is added to the input itself. Fully convolutional, so it runs on a crop of any size and its
  output lies on the input's pixel grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.common import (
    PixelShuffleUpsampler,
    bicubic_upsample,
    check_scale,
    conv3x3,
    init_weights,
)


class ImprovedResidualUnit(nn.Module):
    """Dense two-conv unit: ReLU(x + fuse1x1(concat(x, c1, c2)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(2 * channels, channels)
        self.fuse = nn.Conv2d(3 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = F.relu(self.conv1(x))
        c2 = F.relu(self.conv2(torch.cat((x, c1), dim=1)))
        return F.relu(x + self.fuse(torch.cat((x, c1, c2), dim=1)))

    def residual_convs(self) -> list[nn.Module]:
        return [self.fuse]


class IDRN(nn.Module):
    """S4: LR (N, 3, h, w) in [0, 1] -> SR (N, 3, h*scale, w*scale), not clamped.

    Args:
        scale: 2, 3, 4 (paper), 8, or 1 (restoration at the input's size: no upsampler).
        channels: network width (paper: 128).
        units: improved residual units (paper: 16).
        image_residual: add the bicubic-upsampled input to the output (deviation, default off).
    """

    SCALES: tuple[int, ...] = (1, 2, 3, 4, 8)

    def __init__(
        self,
        scale: int = 4,
        channels: int = 128,
        units: int = 16,
        image_residual: bool = False,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, self.SCALES, "IDRN")
        self.image_residual = bool(image_residual)
        self.head = conv3x3(3, channels)
        self.units = nn.ModuleList(ImprovedResidualUnit(channels) for _ in range(units))
        self.upsample = PixelShuffleUpsampler(channels, self.scale, act=True)
        self.tail = conv3x3(channels, 3)
        init_weights(self, zero_output=self.image_residual)

    def output_convs(self) -> list[nn.Module]:
        """The RGB output layer(s), started near zero (see ``common.init_weights``)."""
        return [self.tail]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR (N, 3, h, w) -> SR (N, 3, h*scale, w*scale)."""
        x = self.head(lr)
        total = x  # eq. 1: X0 + X1 + ... + XN
        for unit in self.units:
            x = unit(x)
            total = total + x
        sr = self.tail(self.upsample(total))
        if self.image_residual:
            sr = sr + bicubic_upsample(lr, self.scale)
        return sr
