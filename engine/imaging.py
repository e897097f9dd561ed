"""Resampling and tensor conversion: the one place where images change resolution.

The degradation that makes a low-resolution (LR) face from a high-resolution (HR) one is
PIL's antialiased bicubic resize (``Image.resize(..., Image.BICUBIC)`` widens the kernel when
shrinking, like MATLAB ``imresize``). Training, evaluation and the app all call
:func:`downscale`, so a model is always judged on the degradation it was trained for.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_METHODS = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


def resize(rgb: np.ndarray, width: int, height: int, method: str = "bicubic") -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to (height, width, 3) with PIL (antialiased when shrinking)."""
    if method not in _METHODS:
        raise ValueError(f"unknown resampling method {method!r}; known: {sorted(_METHODS)}")
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.array(image.resize((int(width), int(height)), _METHODS[method]))  # writable copy


def downscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """The project's LR degradation: antialiased bicubic downscaling by an integer factor.

    The LR side is the HR side // factor, as the app crops an LR face of 128 // scale pixels
    (x3: 42x42 for a 128x128 face)."""
    h, w = rgb.shape[:2]
    if factor < 1 or h < factor or w < factor:
        raise ValueError(f"cannot shrink a {w}x{h} image by a factor of {factor}")
    return resize(rgb, w // factor, h // factor, "bicubic")


def upscale(rgb: np.ndarray, factor: int, method: str = "bicubic") -> np.ndarray:
    """Upscale an (H, W, 3) uint8 image by an integer factor with a classic interpolator."""
    h, w = rgb.shape[:2]
    return resize(rgb, w * factor, h * factor, method)


def to_tensor(rgb: np.ndarray):
    """(H, W, 3) uint8 -> torch float32 (1, 3, H, W) in [0, 1]."""
    import torch  # deferred: importing engine.imaging must stay light

    array = np.ascontiguousarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_uint8(tensor) -> np.ndarray:
    """torch (3, H, W) or (1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8, clamped and rounded."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    array = (
        tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    )
    return np.ascontiguousarray(array)
