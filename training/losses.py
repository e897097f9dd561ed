"""Loss functions of the five papers, written once and shared by every training config.

All image tensors are float (N, 3, H, W) RGB in [0, 1]. `mask` arguments are (N, 1, H, W) in
{0, 1}: 0 marks pixels the aligned crop padded past the photo border, which carry no real
content and must not be learned (see training/data.py). A mask of None means "all valid".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of a per-pixel error map over the valid pixels only (every channel counted)."""
    if mask is None:
        return err.mean()
    mask = mask.to(err.dtype).expand_as(err)
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error, over valid pixels when a mask is given (S2 RAFSR's loss)."""
    return _masked_mean((pred - target).abs(), mask)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error, over valid pixels when a mask is given (S1, S3, S4)."""
    return _masked_mean((pred - target) ** 2, mask)


def log_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-5
) -> torch.Tensor:
    """Mean over the batch of each image's log MSE (valid pixels only): minus the mean PSNR,
    up to a constant factor. Why: plain MSE pools the batch's pixels, so a damaged face, whose
    errors are several times larger, outweighs a clean one; the benchmark averages PSNR per face,
    in dB, and so does this loss, which gives a clean face's last decibel the same weight as a
    damaged face's. `eps` (PSNR 50 dB) keeps a near-perfect face from dominating."""
    err = (pred - target) ** 2
    if mask is None:
        per_image = err.flatten(1).mean(1)
    else:
        mask = mask.to(err.dtype).expand_as(err)
        per_image = (err * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)
    return torch.log(per_image + eps).mean()


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix (N, C, C) of features (N, C, H, W), normalised by C*H*W (texture statistics)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels (0 if flat)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean()
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
    return dh + dw


class PerceptualLoss(nn.Module):
    """Feature-space distance on a frozen VGG (perceptual) plus optional Gram (texture) term.

    `vgg` is any module returning a dict name -> features for the layers listed in `layers`
    (training.vgg.VGG19Features: pretrained for training, random for tests). `criterion` is
    "l1" (MFFCN: L1 on conv5_4 features) or "mse" (SRGAN-style). `texture_weight` adds the
    MSE between Gram matrices of the same features (MFFCN's texture loss).
    """

    def __init__(
        self,
        vgg: nn.Module,
        layers: tuple[str, ...],
        criterion: str = "l1",
        texture_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "mse"):
            raise ValueError(f"criterion must be 'l1' or 'mse', not {criterion!r}")
        self.vgg = vgg
        self.layers = tuple(layers)
        self.criterion = criterion
        self.texture_weight = float(texture_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {"perceptual": ..., "texture": ...} (texture only when its weight > 0)."""
        fp = self.vgg(pred)
        with torch.no_grad():
            ft = self.vgg(target)
        dist = F.l1_loss if self.criterion == "l1" else F.mse_loss
        out = {"perceptual": sum(dist(fp[k], ft[k]) for k in self.layers) / len(self.layers)}
        if self.texture_weight > 0:
            out["texture"] = sum(
                F.mse_loss(gram(fp[k].float()), gram(ft[k].float())) for k in self.layers
            ) / len(self.layers)
        return out


def adversarial_d(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: BCE-with-logits, real -> 1, generated -> 0 (SRGAN, S0 and S3 m2)."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def adversarial_g(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator's adversarial loss: BCE-with-logits pushing generated logits towards "real"."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def parsing_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Face-parsing prior loss (S3). `logits` (N, K, H, W); `labels` (N, H, W) int class ids.

    "mse" is the paper's choice: MSE between the softmax maps and the one-hot ground truth.
    "ce" is plain cross-entropy, offered because it trains the prior faster.
    """
    labels = labels.long()
    if kind == "ce":
        return F.cross_entropy(logits.float(), labels)
    if kind != "mse":
        raise ValueError(f"kind must be 'mse' or 'ce', not {kind!r}")
    onehot = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    return F.mse_loss(logits.softmax(dim=1), onehot)


def landmark_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Landmark regression loss (S0's auxiliary task): MSE of (N, 68, 2) coordinates.

    Both in [0, 1] units of the HR frame (pixel coordinates / HR size), so the loss does not
    depend on the resolution.
    """
    return F.mse_loss(pred, target)


class IdentityLoss(nn.Module):
    """Identity loss: distance between face descriptors of the output and of the target.

    The descriptor network is dlib's face recognition ResNet re-implemented in torch
    (training/identity_net.py), the chip cut from each face by its HR landmarks the way dlib
    cuts it, so the loss pulls the output towards the person rather than towards a sharp
    generic face. `landmarks` are (N, 68, 2) in [0, 1] units of the HR frame (pixel centre at
    (i + 0.5) / size, as training/data.py stores them).

    The same network also measures identity in training/evaluate.py, so a model trained with
    this loss could learn to please that one network rather than to keep the person. Two
    guards: each chip is jittered (random scale, rotation and shift of a few pixels, drawn from
    torch's generator) so no fixed sampling grid can be exploited, and the benchmark's landmark
    error and LPIPS, which use other networks, are the independent checks.
    """

    JITTER = {"scale": 0.03, "degrees": 3.0, "pixels": 2.0}

    def __init__(self, net: nn.Module | None = None, jitter: bool = True) -> None:
        super().__init__()
        from training import identity_net

        self.net = (net if net is not None else identity_net.load()).eval().requires_grad_(False)
        self.jitter = jitter

    def _affines(self, landmarks: torch.Tensor, size: int) -> torch.Tensor:
        from training import identity_net

        points = landmarks.detach().float().cpu().numpy() * size - 0.5
        a = torch.stack([torch.from_numpy(identity_net.chip_affine(p)).float() for p in points])
        if not self.jitter:
            return a
        n, j = a.shape[0], self.JITTER
        scale = 1 + (torch.rand(n) * 2 - 1) * j["scale"]
        angle = torch.deg2rad((torch.rand(n) * 2 - 1) * j["degrees"])
        shift = (torch.rand(n, 2) * 2 - 1) * j["pixels"]
        rot = torch.stack(
            [torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)], 1
        ).reshape(n, 2, 2) * scale[:, None, None]
        half = (identity_net.CHIP_SIZE - 1) / 2.0  # jitter about the chip centre
        m = rot @ a[:, :, :2]
        t = rot @ (a[:, :, 2:] - half) + half + shift[:, :, None]
        return torch.cat([m, t], 2)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, landmarks: torch.Tensor
    ) -> torch.Tensor:
        from training import identity_net

        affines = self._affines(landmarks, pred.shape[-1]).to(pred.device)
        with torch.no_grad():
            want = self.net(identity_net.extract_chips(target.float(), affines))
        got = self.net(identity_net.extract_chips(pred.float(), affines))
        return (got - want).norm(dim=1).mean()
