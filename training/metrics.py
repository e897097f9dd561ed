"""Image quality metrics shared by the trainer's validation and the benchmark.

All take uint8 (H, W, 3) RGB images (or float arrays on the [0, 255] scale) and compare the
whole image unless a `mask` (H, W) bool/0-1 array limits them to valid pixels.

- PSNR on RGB in [0, 255] (MODELS.md's protocol), and on the luma channel Y of ITU-R BT.601 as
  MATLAB's ``rgb2ycbcr`` computes it (16..235), which many SR papers report.
- SSIM as in Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255,
  statistics over the "valid" part of the image only (no padding, as the reference MATLAB code),
  averaged over the three RGB channels.
- Identification of face descriptors against a gallery (``gallery_scores``): rank-1, ROC AUC
  and dlib's same-person threshold, for benchmarks/identity_gallery.py.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is None:
        return float(diff.mean())
    m = np.asarray(mask, bool)
    return float(diff[m].mean()) if m.any() else float("nan")


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB on the [0, 255] scale; inf for identical images."""
    err = _mse(a, b, mask)
    return float("inf") if err == 0 else 10 * math.log10(255.0**2 / err)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 16..235 scale (MATLAB rgb2ycbcr's Y), float64 (H, W)."""
    x = np.asarray(rgb, np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def psnr_y(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR on the Y channel (peak 255, as the common SR evaluation scripts use)."""
    err = _mse(luma(a), luma(b), mask)
    return float("inf") if err == 0 else 10 * math.log10(255.0**2 / err)


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def filt(img: np.ndarray) -> np.ndarray:
        return cv2.filter2D(img, -1, window, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float((num / den).mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window) over the RGB channels; 1.0 if identical."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"images must have the same (H, W, C) shape: {x.shape} vs {y.shape}")
    if min(x.shape[:2]) < 11:
        raise ValueError("SSIM needs images of at least 11x11 pixels")
    return float(np.mean([_ssim_channel(x[..., c], y[..., c]) for c in range(x.shape[2])]))


DLIB_THRESHOLD = 0.6  # dlib's published same-person threshold for this descriptor


def gallery_scores(probes: np.ndarray, gallery: np.ndarray) -> dict[str, np.ndarray | float]:
    """Identification and verification scores of probes (N, 128) against gallery (N, 128),
    probe i being the same person as gallery face i."""
    dist = np.linalg.norm(probes[:, None, :] - gallery[None, :, :], axis=2)
    n = len(dist)
    genuine = np.diag(dist)
    off = ~np.eye(n, dtype=bool)
    impostor = dist[off].reshape(n, n - 1)
    # AUC by ranks: the share of (genuine, impostor) pairs where the genuine one is closer.
    imp_sorted = np.sort(impostor.ravel())
    closer = len(imp_sorted) - np.searchsorted(imp_sorted, genuine, side="right")
    ties = np.searchsorted(imp_sorted, genuine, side="right") - np.searchsorted(
        imp_sorted, genuine, side="left"
    )
    auc = float((closer + 0.5 * ties).sum() / (n * len(imp_sorted)))
    return {
        "genuine": genuine,
        "impostor": float(impostor.mean()),
        "to_mean": float(np.linalg.norm(probes - gallery.mean(0), axis=1).mean()),
        "rank1": float((dist.argmin(1) == np.arange(n)).mean()),
        "auc": auc,
        "tar": float((genuine < DLIB_THRESHOLD).mean()),
        "far": float((impostor < DLIB_THRESHOLD).mean()),
        "margin": np.median(impostor, axis=1) - genuine,
    }
