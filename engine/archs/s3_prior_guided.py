"""S3: prior-guided face super-resolution network (Liu 2023, method 1; method 2 = the same
generator trained with the SRGAN discriminator of :mod:`engine.archs.discriminators`).

Paper (sec. 3.1, tables 3.1 and 3.3, figs. 3.1-3.8): three parts trained end to end.
- SR branch (table 3.1): conv 3->64; 16 basic blocks; conv 64->64; three PixelShuffle x2 stages
  (16 -> 128); conv to RGB = coarse SR. (Table 3.1 lists 11 output channels for the last conv:
  a typo, the coarse SR image is RGB.)
- Basic block (fig. 3.3, eqs. 3.1-3.4): F' = conv3x3(F) + dilated conv3x3 (dilation 2, a 5x5
  field)(F); z = global average pool(F'); scale = softmax(FC2(FC1(z))) over channels;
  out = conv(ReLU(F' * scale)); plus the block input.
- Prior branch: predicts 11 face-parsing maps at 128x128 with residual blocks and an
  hourglass block (figs. 3.5-3.7).
- Fusing module (table 3.3): concat(coarse SR, parsing maps) = 14 ch -> conv 64 -> residual
  block -> conv 3 = final SR.
Loss (not part of this module): MSE(coarse, HR) + MSE(parsing, GT) + MSE(final, HR).

Choices where the paper is silent, and deviations:
- The thesis text of the prior branch (sec. 3.1.1.2, table 3.2) is lost in extraction. Built
  FSRNet-style, as the thesis cites: input = the bicubic-upsampled LR face (MODELS.md);
  conv 3x3 + ReLU, stride-2 conv 3x3 + ReLU (128 -> 64, to keep the cost down),
  ``prior_blocks`` residual blocks, one hourglass of depth ``hourglass_depth`` (64 -> 8 and back,
  one residual block per node, max-pool down, nearest up, as Newell et al.), one residual
  block, a PixelShuffle x2 stage back to 128, conv 3x3 to ``parsing_classes`` maps.
- The parsing maps are returned raw (no sigmoid/softmax): the paper's prior loss is a plain MSE
  against the 0/1 ground-truth maps. The contract calls them ``parsing_logits``.
- Residual blocks (prior branch, fusing module) are conv-ReLU-conv + identity without batch
  norm; ReLU after conv1 of the SR branch, after every PixelShuffle stage (SRResNet puts a
  PReLU there) and after the fusing module's first conv.
- The SR branch keeps SRResNet's long skip (conv1 output added after conv2), as the thesis
  says it adopts SRResNet's structure; all kernels 3x3 (SRResNet: 9x9 end convs).
- Basic-block excitation: FC1 C -> C/16, ReLU, FC2 C/16 -> C (SE-Net defaults). The channel
  softmax makes the weights sum to 1 (mean 1/C), so each block starts with a small residual;
  kept exactly as the paper writes it.
- x4 (not in the paper) uses two PixelShuffle stages instead of three.
- ``image_residual`` (default off, not in the paper): when on, the bicubic-upsampled input is
  added to both the coarse and the final SR (each then is a residual over bicubic), which
  converges far faster on a CPU budget.
- ``fuse_residual`` (default off, not in the paper): when on, the fusing module predicts a
  correction to the coarse SR (final = coarse + fuse(...)) instead of the whole final image.
  Why: with ``image_residual`` alone the final is fuse(...) + the bicubic upsample, but the
  fusing module never sees that upsample (only the coarse SR and the parsing maps), so it cannot
  hand the coarse SR through unchanged; measured on the robust x4 file (200 held-out faces,
  JPEG quality 40), its final SR was 0.08 dB *below* its own coarse SR. Over the coarse SR the
  module starts as the identity (its output conv zeroed) and only has to learn the correction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.common import (
    PixelShuffleUpsampler,
    ResidualBlock,
    bicubic_upsample,
    check_scale,
    conv3x3,
    init_weights,
)


class BasicBlock(nn.Module):
    """S3 fig. 3.3: multi-scale conv + softmax channel attention + conv, plus identity."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv3 = conv3x3(channels, channels)
        self.conv5 = conv3x3(channels, channels, dilation=2)
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        self.conv_out = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv3(x) + self.conv5(x)  # eq. 3.1
        z = f.mean(dim=(2, 3))  # eq. 3.2
        w = torch.softmax(self.fc2(F.relu(self.fc1(z))), dim=1)  # eq. 3.3
        return x + self.conv_out(F.relu(f * w[:, :, None, None]))  # eq. 3.4 + identity

    def residual_convs(self) -> list[nn.Module]:
        return [self.conv_out]

    def widened_from(self, old: dict[str, torch.Tensor]) -> None:
        """Mend the channel softmax after training.train.grow_from has copied a narrower
        block's weights into this one (new outputs: own init; new inputs to old outputs: zero).

        A softmax over k times the channels would shrink every old channel's weight, so each new
        channel copies the logit of an old one (k copies each, old weight / k exactly) and
        conv_out reads the old channels k times as strongly; ReLU(f * w / k) = ReLU(f * w) / k.
        """
        c_old, c = old["fc2.weight"].shape[0], self.fc2.weight.shape[0]
        if c == c_old:
            return
        if c % c_old:
            raise ValueError(f"a basic block can widen {c_old} -> {c} channels only by a "
                             "whole multiple")
        h_old = old["fc2.weight"].shape[1]
        self.fc2.weight[c_old:] = 0  # the new hidden units must not tell the copies apart
        self.fc2.weight[c_old:, :h_old] = old["fc2.weight"].repeat(c // c_old - 1, 1)
        self.fc2.bias[c_old:] = old["fc2.bias"].repeat(c // c_old - 1)
        self.conv_out.weight[:c_old, :c_old] *= c // c_old


class Hourglass(nn.Module):
    """Newell et al. hourglass with one residual block per node, recursive in ``depth``."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.up = ResidualBlock(channels)
        self.down = ResidualBlock(channels)
        self.inner = Hourglass(channels, depth - 1) if depth > 1 else ResidualBlock(channels)
        self.after = ResidualBlock(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.after(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class PriorBranch(nn.Module):
    """Upsampled LR (N, 3, 128, 128) -> raw parsing maps (N, classes, 128, 128)."""

    def __init__(self, channels: int, classes: int, blocks: int, hourglass_depth: int) -> None:
        super().__init__()
        # the stride-2 conv and the hourglass's poolings halve the map 1 + depth times
        self.multiple = 2 ** (1 + hourglass_depth)
        self.body = nn.Sequential(
            conv3x3(3, channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels, stride=2),
            nn.ReLU(inplace=True),
            *(ResidualBlock(channels) for _ in range(blocks)),
            Hourglass(channels, hourglass_depth),
            ResidualBlock(channels),
            PixelShuffleUpsampler(channels, 2, act=True),
            conv3x3(channels, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A side that is not a multiple of ``self.multiple`` (a face run at its native size, e.g.
        an odd 101 px at x4) would come back from the hourglass a row short: the input is
        padded at the bottom and right by edge replication and the maps cropped back to its
        size. Sizes already a multiple (every model frame) are computed exactly as before."""
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.body(x)[..., :h, :w]


class PriorGuidedSR(nn.Module):
    """S3 method-1 generator: LR (N, 3, h, w) in [0, 1] -> final SR (N, 3, h*s, w*s), not clamped.

    Args:
        scale: 8 (paper) or 4.
        channels: feature width of the SR branch and the fusing module (paper: 64).
        blocks: basic blocks of the SR branch (paper: 16).
        parsing_classes: parsing maps predicted by the prior branch (paper: 11).
        prior_channels: width of the prior branch.
        prior_blocks: residual blocks before the hourglass.
        hourglass_depth: number of 2x poolings inside the hourglass.
        reduction: FC1 reduction ratio of the basic block's channel attention.
        image_residual: add the bicubic-upsampled input to coarse and final SR (deviation).
        fuse_residual: the final SR is the coarse SR plus the fusing module's output
            (deviation; see the module docstring).
    """

    SCALES: tuple[int, ...] = (4, 8)

    def __init__(
        self,
        scale: int = 8,
        channels: int = 64,
        blocks: int = 16,
        parsing_classes: int = 11,
        prior_channels: int = 64,
        prior_blocks: int = 3,
        hourglass_depth: int = 3,
        reduction: int = 16,
        image_residual: bool = False,
        fuse_residual: bool = False,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, self.SCALES, "PriorGuidedSR")
        self.image_residual = bool(image_residual)
        self.fuse_residual = bool(fuse_residual)
        # SR branch (table 3.1).
        self.sr_head = nn.Sequential(conv3x3(3, channels), nn.ReLU(inplace=True))
        self.sr_body = nn.Sequential(*(BasicBlock(channels, reduction) for _ in range(blocks)))
        self.sr_body_tail = conv3x3(channels, channels)
        self.sr_up = PixelShuffleUpsampler(channels, self.scale, act=True)
        self.sr_tail = conv3x3(channels, 3)
        # Prior branch.
        self.prior = PriorBranch(prior_channels, parsing_classes, prior_blocks, hourglass_depth)
        # Fusing module (table 3.3).
        self.fuse = nn.Sequential(
            conv3x3(3 + parsing_classes, channels),
            nn.ReLU(inplace=True),
            ResidualBlock(channels),
            conv3x3(channels, 3),
        )
        init_weights(self, zero_output=self.image_residual)
        if self.fuse_residual:  # the fusing module starts by handing the coarse SR through
            nn.init.zeros_(self.fuse[-1].weight)
            nn.init.zeros_(self.fuse[-1].bias)

    def output_convs(self) -> list[nn.Module]:
        """The RGB output layer(s), started near zero (see ``common.init_weights``)."""
        return [self.sr_tail, self.fuse[-1]]

    def forward_all(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LR -> (coarse SR (N,3,H,W), raw parsing maps (N,classes,H,W), final SR (N,3,H,W))."""
        up = bicubic_upsample(lr, self.scale)
        f0 = self.sr_head(lr)
        coarse = self.sr_tail(self.sr_up(f0 + self.sr_body_tail(self.sr_body(f0))))
        if self.image_residual:
            coarse = coarse + up
        parsing = self.prior(up)
        final = self.fuse(torch.cat((coarse, parsing), dim=1))
        if self.fuse_residual:
            final = final + coarse
        elif self.image_residual:
            final = final + up
        return coarse, parsing, final

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR (N, 3, h, w) -> final SR (N, 3, h*scale, w*scale)."""
        return self.forward_all(lr)[2]
