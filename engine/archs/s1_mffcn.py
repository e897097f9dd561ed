"""S1: MFFCN, multi-scale feature fusion convolutional network (Wu & Chen).

Paper (sec. 3.2, fig. 1): the LR face is bicubic-upsampled back to the HR size and fed to a
U-Net-shaped network in which every plain convolution is replaced by a multi-scale feature
fusion (MFF) module: parallel 1x1, 3x3 and 5x5 convolutions of the same input, concatenated,
then a 1x1 convolution. Skip connections concatenate layer i with layer n-i. The input image is
added to the network output (global residual). One model serves every factor, because the
factor only changes how blurred the input is.

Choices where the paper is silent (MODELS.md decisions), and deviations:
- The U-Net downsamples: ``levels`` resolutions (default 3: 128 -> 64 -> 32), each encoder
  and decoder level is ``mff_per_level`` MFF modules (default 1: the paper's "layer i" is one
  MFF module, skip-connected to layer n-i; 2 per level, the classic U-Net double conv, costs
  56 instead of 31 GFLOPs per face); going down is a stride-2 MFF (every branch strided),
  going up is an MFF at the coarse level (halving the width) + nearest x2 upsampling (the MFF
  before the upsampling costs a quarter of one after it), then concat with the encoder level of the same
  resolution and MFF modules fuse it. Widths double per level (64, 128, 256), capped at
  ``max_channels``.
- Each MFF branch has ``cout`` channels; ReLU after every MFF except the last one, which
  outputs RGB (the residual added to the input); that last layer starts scaled down, so the
  untrained network is close to the identity (= bicubic).
- The input height and width must be divisible by 2**(levels-1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.archs.common import init_weights


class MFF(nn.Module):
    """Multi-scale feature fusion: concat(conv1x1, conv3x3, conv5x5) -> conv1x1."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(cin, cout, 1, stride=stride)
        self.b3 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.b5 = nn.Conv2d(cin, cout, 5, stride=stride, padding=2)
        self.fuse = nn.Conv2d(3 * cout, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat((self.b1(x), self.b3(x), self.b5(x)), dim=1))

    def widened_from(self, old: dict[str, torch.Tensor]) -> None:
        """After training.train.grow_from widened this module: ``fuse`` reads three concatenated
        branches, so each old branch's weights belong at the start of that branch's new block,
        not in one leading slice (see :func:`embed_concat_inputs`)."""
        embed_concat_inputs(self.fuse.weight, old["fuse.weight"], 3)


def embed_concat_inputs(new: torch.Tensor, old: torch.Tensor, parts: int) -> None:
    """Place a narrower conv weight ``old`` into ``new`` (in place) where the layer's input is
    ``parts`` equal tensors concatenated and each of them was widened at its end: old input
    block k goes to the start of new block k; the old outputs read nothing else (zero)."""
    n_out, n_in = old.shape[:2]
    blk_old, blk_new = n_in // parts, new.shape[1] // parts
    if blk_new == blk_old:
        return
    new[:n_out] = 0
    for k in range(parts):
        new[:n_out, k * blk_new : k * blk_new + blk_old] = old[:, k * blk_old : (k + 1) * blk_old]


def _mff_stack(cin: int, cout: int, n: int, stride: int = 1) -> nn.Sequential:
    """``n`` MFF modules with ReLU, the first one mapping cin -> cout (optionally strided)."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [MFF(cin if i == 0 else cout, cout, stride if i == 0 else 1), nn.ReLU(True)]
    return nn.Sequential(*layers)


class MFFCN(nn.Module):
    """S1: bicubic-upsampled LR (N, 3, H, W) in [0, 1] -> SR (N, 3, H, W), not clamped.

    Args:
        channels: width at full resolution (doubled per level down to ``max_channels``).
        levels: number of resolutions of the U-Net (1 = no downsampling).
        mff_per_level: MFF modules per encoder/decoder level.
        max_channels: cap on the width of the deeper levels.
    """

    #: The network never sees the factor; these are the factors it is meant for (the paper
    #: trains x2/x3/x4 in one model; x8 is added for the app).
    SCALES: tuple[int, ...] = (2, 3, 4, 8)

    def __init__(
        self,
        channels: int = 64,
        levels: int = 3,
        mff_per_level: int = 1,
        max_channels: int = 256,
    ) -> None:
        super().__init__()
        if levels < 1 or mff_per_level < 1:
            raise ValueError("levels and mff_per_level must be >= 1")
        self.levels = levels
        widths = [min(channels * 2**i, max_channels) for i in range(levels)]
        self.encoders = nn.ModuleList()
        for i, w in enumerate(widths):
            cin = 3 if i == 0 else widths[i - 1]
            self.encoders.append(_mff_stack(cin, w, mff_per_level, stride=1 if i == 0 else 2))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(levels - 2, -1, -1):
            self.ups.append(nn.Sequential(MFF(widths[i + 1], widths[i]), nn.ReLU(True)))
            self.decoders.append(_mff_stack(2 * widths[i], widths[i], mff_per_level))
        self.tail = MFF(widths[0], 3)
        init_weights(self)

    def widened_from(self, old: dict[str, torch.Tensor]) -> None:
        """After training.train.grow_from widened the network: each decoder's first MFF reads
        the upsampled features and the skip concatenated, so its branches' weights are placed
        per part (the MFF modules mend their own ``fuse``)."""
        for i, dec in enumerate(self.decoders):
            first = dec[0]
            for branch in ("b1", "b3", "b5"):
                conv = getattr(first, branch)
                embed_concat_inputs(conv.weight, old[f"decoders.{i}.0.{branch}.weight"], 2)

    def output_convs(self) -> list[nn.Module]:
        """The RGB output layer, started near zero (see ``common.init_weights``)."""
        return [self.tail.fuse]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsampled LR (N, 3, H, W) -> SR (N, 3, H, W) = x + network(x)."""
        m = 2 ** (self.levels - 1)
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"MFFCN input size {tuple(x.shape[-2:])} not divisible by {m}")
        skips = []
        y = x
        for enc in self.encoders:
            y = enc(y)
            skips.append(y)
        skips.pop()  # the deepest level is not concatenated with itself
        for up, dec in zip(self.ups, self.decoders, strict=True):
            y = F.interpolate(up(y), scale_factor=2.0, mode="nearest")
            y = dec(torch.cat((y, skips.pop()), dim=1))
        return x + self.tail(y)
