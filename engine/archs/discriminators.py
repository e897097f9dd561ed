"""SRGAN-style discriminator shared by S0 (fig. 2) and S3 method 2 (table 3.4).

Both papers use Ledig et al.'s SRGAN discriminator: 8 conv layers, 64 -> 512 channels doubling
every two layers, strides alternating 1 / 2 (the first stride 1), LeakyReLU, then a dense
layer of 1024, LeakyReLU and a dense layer to 1 (table 3.4: 128x128x3 -> 8x8x512 -> 1024 -> 1).

Choices and deviations:
- Returns logits (N, 1). The papers' final sigmoid belongs in the loss
  (``BCEWithLogitsLoss`` is the numerically stable form of the same thing).
- As in SRGAN: 3x3 kernels, LeakyReLU slope 0.2, batch norm in every conv layer except the
  first (``batch_norm=False`` drops it, e.g. for a WGAN-style critic as in S0's eq. 8).
- The first dense layer flattens the final feature map, as SRGAN does, so the input size is
  fixed at construction (``in_size``, divisible by 2**(n_convs // 2)).
"""

from __future__ import annotations

import torch
from torch import nn

from engine.archs.common import init_weights


class SRGANDiscriminator(nn.Module):
    """HR or SR image (N, 3, in_size, in_size) in [0, 1] -> real/fake logits (N, 1).

    Args:
        in_size: input height = width (the project's HR faces are 128).
        in_channels: image channels.
        channels: width of the first two convs (doubled every two layers).
        n_convs: conv layers (even; strides 1, 2, 1, 2, ...).
        dense: width of the hidden dense layer.
        batch_norm: batch norm after every conv except the first (SRGAN).
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self,
        in_size: int = 128,
        in_channels: int = 3,
        channels: int = 64,
        n_convs: int = 8,
        dense: int = 1024,
        batch_norm: bool = True,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if n_convs < 2 or n_convs % 2:
            raise ValueError(f"n_convs must be an even number >= 2, not {n_convs}")
        reduction = 2 ** (n_convs // 2)
        if in_size % reduction:
            raise ValueError(f"in_size {in_size} is not divisible by {reduction}")
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(n_convs):
            cout = channels * 2 ** (i // 2)
            stride = 1 if i % 2 == 0 else 2
            use_bn = batch_norm and i > 0
            layers.append(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not use_bn))
            if use_bn:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(negative_slope, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        side = in_size // reduction
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * side * side, dense),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Linear(dense, 1),
        )
        self.in_size = in_size
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image (N, C, in_size, in_size) -> logits (N, 1)."""
        if x.shape[-2:] != (self.in_size, self.in_size):
            raise ValueError(f"expected {self.in_size}x{self.in_size} input, got {tuple(x.shape)}")
        return self.classifier(self.features(x))
