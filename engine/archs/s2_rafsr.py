"""S2: RAFSR, face super-resolution with residual attention (Che et al. 2023).

Paper (sec. 2.1, figs. 2-4):
- SFEM: one 3x3 conv -> F0.
- DFEM: 8 residual attention modules (RAM): conv-ReLU-conv -> CBAM -> + RAM input. CBAM =
  channel attention (avg- and max-pooled descriptors through a shared MLP, summed, sigmoid)
  then spatial attention (channel-wise avg and max maps -> 7x7 conv -> sigmoid).
- Feature fusion: the outputs of all 8 RAMs are concatenated -> 1x1 conv back to C (then a
  3x3 conv).
- Adaptive residual module (ARM): F0 through a 1x1 conv, added to the fused deep features.
- RM: conv + sub-pixel convolution (PixelShuffle) to the target size, then a conv to RGB.
The ablation (table 3) picks 8 RAMs over 4 and 16.

Choices where the paper is silent, and deviations:
- CBAM reduction ratio 16 and 7x7 spatial kernel (the CBAM paper's defaults).
- RM: one conv(C -> 4C) + PixelShuffle(2) per factor of 2, no activation (EDSR style).
- x8 (not in the paper, which only reports x4) adds a third PixelShuffle x2 stage.
- ``image_residual`` (default off, not in the paper): when on, the bicubic-upsampled input is
  added to the output (residual over bicubic), which converges far faster on a CPU budget.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.archs.common import (
    PixelShuffleUpsampler,
    bicubic_upsample,
    check_scale,
    conv3x3,
    init_weights,
)


class CBAM(nn.Module):
    """Convolutional block attention: channel attention, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)
        mx = x.amax(dim=(2, 3), keepdim=True)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        maps = torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.spatial(maps))


class RAM(nn.Module):
    """Residual attention module: x + CBAM(conv(ReLU(conv(x))))."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.act = nn.ReLU(inplace=True)
        self.cbam = CBAM(channels, reduction, spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cbam(self.conv2(self.act(self.conv1(x))))

    def residual_convs(self) -> list[nn.Module]:
        return [self.conv2]


class RAFSR(nn.Module):
    """S2: LR (N, 3, h, w) in [0, 1] -> SR (N, 3, h*scale, w*scale), not clamped.

    Args:
        scale: 4 (paper) or 8.
        channels: feature width (paper: 64).
        n_ram: residual attention modules (paper: 8).
        reduction: CBAM channel-MLP reduction ratio.
        spatial_kernel: CBAM spatial-attention kernel size.
        image_residual: add the bicubic-upsampled input to the output (deviation, default off).
    """

    SCALES: tuple[int, ...] = (4, 8)

    def __init__(
        self,
        scale: int = 4,
        channels: int = 64,
        n_ram: int = 8,
        reduction: int = 16,
        spatial_kernel: int = 7,
        image_residual: bool = False,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, self.SCALES, "RAFSR")
        self.image_residual = bool(image_residual)
        self.sfem = conv3x3(3, channels)
        self.rams = nn.ModuleList(RAM(channels, reduction, spatial_kernel) for _ in range(n_ram))
        self.fusion = nn.Sequential(
            nn.Conv2d(n_ram * channels, channels, 1), conv3x3(channels, channels)
        )
        self.arm = nn.Conv2d(channels, channels, 1)
        self.rm = nn.Sequential(PixelShuffleUpsampler(channels, self.scale), conv3x3(channels, 3))
        init_weights(self, zero_output=self.image_residual)

    def output_convs(self) -> list[nn.Module]:
        """The RGB output layer(s), started near zero (see ``common.init_weights``)."""
        return [self.rm[-1]]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR (N, 3, h, w) -> SR (N, 3, h*scale, w*scale)."""
        f0 = self.sfem(lr)
        outs = []
        y = f0
        for ram in self.rams:
            y = ram(y)
            outs.append(y)
        deep = self.fusion(torch.cat(outs, dim=1))
        sr = self.rm(deep + self.arm(f0))
        if self.image_residual:
            sr = sr + bicubic_upsample(lr, self.scale)
        return sr
