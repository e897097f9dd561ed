"""S0: SRResNet generator with self-attention and a landmark head (Chen et al. 2020,
"face super-resolution based on combined representation learning").

Paper (sec. 3.1, 3.4, fig. 1): a 3x3 conv extracts shallow features F0; 16 residual blocks
(conv-ReLU-conv) extract deep features; a conv and a global skip from F0 close the trunk;
transposed convolutions enlarge the features step by step; a 3x3 conv reconstructs RGB.
Some residual blocks are "attention residual blocks": SAGAN self-attention (eqs. 13-16) after
their second conv, with 1x1 convs f, g (C/8 channels) and h (C), beta = softmax over source
positions of f^T g, O = h beta, y = gamma*O + x, gamma initialised to 0.
"Combined representation learning" shares the generator's features with auxiliary tasks; the
task implemented here is 68-point facial landmark regression (the paper enriches CelebA to
dlib's 68 points for this).

Choices where the paper is silent, and deviations:
- Attention sits in blocks 8 and 16 (1-based) for "the upper and middle layers" (sec. 3.4).
- No batch norm in the residual blocks (SRResNet has it): EDSR (ref. [18] of the paper,
  which the generator follows "combining Ledig et al. and Lim et al.") showed BN hurts SR.
- Upsampling: one ConvTranspose2d(k=4, s=2, p=1) + ReLU per factor of 2 (x4: 2, x8: 3).
- All kernels 3x3, ReLU activations (SRResNet uses 9x9 end convs and PReLU).
- The attention is computed with ``F.scaled_dot_product_attention(scale=1)``, which is the
  paper's unscaled softmax(f^T g), just without materialising the HWxHW matrix when the
  backend can avoid it.
- Landmark head (the paper gives no architecture): two 3x3 conv+ReLU on the deep features
  (LR resolution), a 1x1 conv to 68 heatmaps, a spatial softmax and its expectation
  (soft-argmax) -> (x, y) in [0, 1] of the HR frame. Coordinates are *continuous* image
  coordinates divided by the image size: pixel column j covers [j, j+1), so a dlib point
  (x_px, y_px) (integer = pixel centre) maps to ((x_px + 0.5) / 128, (y_px + 0.5) / 128);
  :func:`landmarks_to_unit` and :func:`unit_to_landmarks` do the conversion.
- ``image_residual`` (default off, not in the paper): when on, the bicubic-upsampled input is
  added to the output, so the network predicts a residual over bicubic; this converges far
  faster on a CPU budget (see MODELS.md, "Measured here").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.common import bicubic_upsample, check_scale, conv3x3, init_weights

N_LANDMARKS = 68


def landmarks_to_unit(points: torch.Tensor, size: int = 128) -> torch.Tensor:
    """dlib-style pixel coordinates (pixel centre = integer) -> [0, 1] frame coordinates."""
    return (points + 0.5) / size


def unit_to_landmarks(points: torch.Tensor, size: int = 128) -> torch.Tensor:
    """Inverse of :func:`landmarks_to_unit`: [0, 1] frame coordinates -> pixel coordinates."""
    return points * size - 0.5


class SelfAttention(nn.Module):
    """SAGAN self-attention (S0 eqs. 13-16): y = gamma * (h beta) + x, gamma starts at 0."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.f = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.h = nn.Conv2d(channels, channels, 1)
        # Learned scalar, 0 at the start: the block is a plain residual block until the
        # attention has learned something useful (paper, end of sec. 3.4).
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = x.shape
        # (N, 1, HW, C') layout for SDPA: query at target j = g(x_j), key at source i = f(x_i),
        # so S_ij = f(x_i)^T g(x_j) and the softmax runs over the sources i, as in eq. 13.
        key = self.f(x).flatten(2).transpose(1, 2).unsqueeze(1)
        query = self.g(x).flatten(2).transpose(1, 2).unsqueeze(1)
        value = self.h(x).flatten(2).transpose(1, 2).unsqueeze(1)
        out = F.scaled_dot_product_attention(query, key, value, scale=1.0)
        out = out.squeeze(1).transpose(1, 2).reshape(n, c, hh, ww)
        return x + self.gamma * out


class AttentionResidualBlock(nn.Module):
    """conv-ReLU-conv, optionally followed by self-attention, plus the block input."""

    def __init__(self, channels: int, attention: bool) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.act = nn.ReLU(inplace=True)
        self.attention = SelfAttention(channels) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.act(self.conv1(x)))
        if self.attention is not None:
            y = self.attention(y)
        return x + y

    def residual_convs(self) -> list[nn.Module]:
        return [self.conv2]


class LandmarkHead(nn.Module):
    """Deep features (N, C, h, w) -> 68 soft-argmax landmarks (N, 68, 2) (x, y) in [0, 1]."""

    def __init__(self, channels: int, n_points: int = N_LANDMARKS) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, n_points, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # Soft-argmax in float32 even under bf16 autocast: bf16 keeps ~3 significant digits,
        # i.e. up to half a pixel of the 128 frame.
        heat = self.body(features).float()
        n, k, h, w = heat.shape
        prob = torch.softmax(heat.flatten(2), dim=-1).view(n, k, h, w)
        # Cell centres of the feature grid in [0, 1] frame coordinates.
        xs = (torch.arange(w, dtype=heat.dtype, device=heat.device) + 0.5) / w
        ys = (torch.arange(h, dtype=heat.dtype, device=heat.device) + 0.5) / h
        x = (prob.sum(dim=2) * xs).sum(dim=-1)
        y = (prob.sum(dim=3) * ys).sum(dim=-1)
        return torch.stack((x, y), dim=-1)


class SRResNetAttention(nn.Module):
    """S0 generator: LR (N, 3, H, W) in [0, 1] -> SR (N, 3, H*scale, W*scale), not clamped.

    Args:
        scale: 2, 4 or 8 (one x2 transposed-conv stage per factor of 2; x2 is not in the paper).
        channels: feature width (paper: 64).
        blocks: residual blocks (paper: 16).
        attention_at: 1-based indices of the blocks that carry self-attention.
        landmark_head: build the 68-landmark regression head (auxiliary task).
        image_residual: add the bicubic-upsampled input to the output (deviation, default off).
    """

    SCALES: tuple[int, ...] = (2, 4, 8)

    def __init__(
        self,
        scale: int = 4,
        channels: int = 64,
        blocks: int = 16,
        attention_at: Sequence[int] = (8, 16),
        landmark_head: bool = True,
        image_residual: bool = False,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, self.SCALES, "SRResNetAttention")
        attention_at = tuple(int(i) for i in attention_at)
        bad = [i for i in attention_at if not 1 <= i <= blocks]
        if bad:
            raise ValueError(f"attention_at {bad} outside blocks 1..{blocks}")
        self.image_residual = bool(image_residual)

        self.head = conv3x3(3, channels)
        self.body = nn.Sequential(
            *(AttentionResidualBlock(channels, i + 1 in attention_at) for i in range(blocks))
        )
        self.body_tail = conv3x3(channels, channels)
        stages: list[nn.Module] = []
        for _ in range({2: 1, 4: 2, 8: 3}[self.scale]):
            stages += [
                nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
                nn.ReLU(True),
            ]
        self.upsample = nn.Sequential(*stages)
        self.tail = conv3x3(channels, 3)
        self.landmarks = LandmarkHead(channels) if landmark_head else None
        init_weights(self, zero_output=self.image_residual)

    def output_convs(self) -> list[nn.Module]:
        """The RGB output layer(s), started near zero (see ``common.init_weights``)."""
        return [self.tail]

    def _features(self, lr: torch.Tensor) -> torch.Tensor:
        f0 = self.head(lr)
        return f0 + self.body_tail(self.body(f0))

    def _reconstruct(self, lr: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        sr = self.tail(self.upsample(features))
        if self.image_residual:
            sr = sr + bicubic_upsample(lr, self.scale)
        return sr

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR (N, 3, h, w) -> SR (N, 3, h*scale, w*scale)."""
        return self._reconstruct(lr, self._features(lr))

    def forward_with_landmarks(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LR -> (SR, landmarks (N, 68, 2) as (x, y) in [0, 1] of the HR frame)."""
        if self.landmarks is None:
            raise RuntimeError("this SRResNetAttention was built with landmark_head=False")
        features = self._features(lr)
        return self._reconstruct(lr, features), self.landmarks(features)
