"""dlib's face recognition network (the 128-D descriptor) re-implemented in pure torch.

``DlibFaceNet`` computes the descriptor of ``dlib.face_recognition_model_v1`` differentiably, so
it can serve as an identity loss in training; its weights are parsed directly from the model file
``dlib_face_recognition_resnet_model_v1.dat`` (package face-recognition-models 0.3.0).
``chip_affine`` + ``extract_chips`` reproduce dlib's 150x150 face chip (get_face_chip_details with
padding 0.25, bilinear extraction), so ``net(extract_chips(images, affines))`` is the torch twin
of ``training.evaluate.descriptor`` (dlib's ``compute_face_descriptor(rgb, shape)``).

Network (dlib's examples/dnn_face_recognition_ex.cpp; sizes for a 150x150 chip):
    input_rgb_image_sized<150>: x = (255*rgb - mean[c]) / 256, mean = 122.782, 117.001, 104.298
    con 32 7x7 /2 pad 0 -> affine -> relu -> max_pool 3x3 /2 pad 0            (32 x 35 x 35)
    3 x ares(32)                                                               (32 x 35 x 35)
    ares_down(64) + 3 x ares(64)                                               (64 x 17 x 17)
    ares_down(128) + 2 x ares(128)                                             (128 x 8 x 8)
    ares_down(256) + 2 x ares(256)                                             (256 x 4 x 4)
    ares_down(256)                                                             (256 x 2 x 2)
    avg_pool_everything -> fc_no_bias 128 (the descriptor; loss_metric adds nothing at test time)
  ares(N):      relu(x + affine(con3x3(relu(affine(con3x3(x))))))          (3x3 convs pad 1)
  ares_down(N): relu(avgpool2x2/2(x) + affine(con3x3(relu(affine(con3x3/2 pad 0(x))))))
  "affine" is dlib's frozen batch norm: gamma*x + beta per channel (folded into the conv here).
  dlib's add_prev adds tensors of different shapes by zero-padding the smaller one at the high
  end of each dimension (channels and rows/columns): the pooled shortcut has half the channels,
  and at 8->3/4 and 4->1/2 the stride-2 unpadded conv gives a smaller map than the 2x2 pool, so
  the block's output only covers the top-left corner of the sum.

File format (dlib serialization, all little-endian):
  - integers: one header byte (low nibble = number of bytes that follow, bit 7 = negative),
    then the magnitude's bytes (0 is written as 01 00);
  - float/double: a mantissa integer then an exponent integer, value = m * 2**e;
  - std::string: length integer, then the bytes; bool: one byte '0'/'1';
  - resizable_tensor: version 2, num_samples, k, nr, nc, then raw float32 values;
  - alias_tensor: version then its 4 dims (no data);
  - the net: version 1, "loss_metric_2", margin, distance threshold; then every add_layer/tag/skip
    writes its version and *then* its subnetwork, so the file holds the wrapper versions
    (2 = add_layer, 1 = tag/skip; 129 of them) top-down, then the innermost add_layer's 3, then
    the layers' own records bottom-up, i.e. in forward order: the input layer (3 channel means,
    rows, cols), then per layer its record and the add_layer tail (3 bools,
    x_grad, cached_output and params_grad/grad_final tensors, all empty; the innermost add_layer
    (version 3) also writes its sample expansion factor). Tags and skips write nothing but their
    version, so the graph (where shortcuts start) comes from the architecture above.
  - con_4: params (filters (out, in, kh, kw) then biases, flat), num_filters, nr, nc, stride y/x,
    padding y/x, 2 alias tensors, 4 learning-rate/decay doubles;
  - affine_: params (gamma then beta), 2 alias tensors, mode (0 = per channel);
  - max_pool_2 / avg_pool_2: nr, nc, stride y/x, padding y/x (nr = nc = 0: whole image);
  - relu_, add_prev_: nothing; fc_2: num_outputs, num_inputs, params stored (num_inputs,
    num_outputs), 2 alias tensors, bias mode (1 = no bias), 4 doubles.

Chip (dlib/image_transforms/interpolation.h): get_face_chip_details fits a similarity transform
from 33 of the 68 landmarks (27-54 and 60-64: no jaw, eyebrows or lower lip) to dlib's mean
face shape scaled into the padded chip, keeps its angle and scale, and re-expresses it as a
rectangle; extraction then maps the chip's corner pixels (0 and size-1) onto that rectangle's
corners, which is a scale of (size*scale - 1)/(size - 1) rather than the fitted scale. dlib
samples bilinearly with pixel centres at integer coordinates (= grid_sample's
align_corners=True) and writes 0 wherever the 2x2 neighbourhood leaves the image (masked here
the same way; grid_sample alone would blend the edge with zeros). dlib's chip is uint8 (values
truncated): ``extract_chips(quantize=True)`` reproduces that.
Not reproduced: when the face is over ~2x larger than the chip, dlib first shrinks the photo
with an image pyramid (never the case for 128 px faces; downscale such photos beforehand).

Measured agreement with dlib 20.0.1 (tests/training/test_identity_net.py; 6 photos made from the
astronaut sample, the 6 aligned 128 px faces cut from them, one photo whose chip runs past its
border; descriptors have norm ~1.45, dlib's same-person threshold is 0.6):
  - same uint8 chip through both networks: max abs diff per component 3.3e-7, distance 1.0e-6;
  - whole path from the image vs ``compute_face_descriptor(rgb, shape)``: with
    ``extract_chips(quantize=True)`` max abs 2.2e-4, distance 8.1e-4 (0.1% of chip pixels
    differ by one level, float rounding at exact integers); in float (no quantisation, the
    loss setting) max abs 1.4e-3, distance 5.7e-3 (dlib's truncation to uint8 is the difference).
Speed (one CPU thread): forward+backward of 8 chips 0.13 s (forward alone 0.06 s; dlib itself
takes 0.6 s for 8 descriptors).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
CHIP_PADDING = 0.25

# dlib's mean face shape for landmarks 17..67 in unit coordinates (data from dlib's
# get_face_chip_details, interpolation.h), needed to reproduce its chip alignment exactly.
_MEAN_FACE_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)  # fmt: skip
_MEAN_FACE_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)  # fmt: skip
# The landmarks dlib fits the chip to: 27..54 and 60..64 (jaw, eyebrows and lower lip left out).
_CHIP_POINTS = [i for i in range(27, 68) if not (55 <= i <= 59 or 65 <= i <= 67)]


# --------------------------------------------------------------------------- chip alignment


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) taking src points to dst points.

    In 2D the linear least squares over [[a, -b], [b, a]] + t is the same optimum as Umeyama's
    method, which dlib's find_similarity_transform uses.
    """
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = (s**2).sum()
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    m = np.array([[a, -b], [b, a]])
    return np.concatenate([m, (md - m @ ms)[:, None]], 1)


def chip_affine(
    landmarks68: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> np.ndarray:
    """2x3 matrix taking image (x, y) to chip (x, y) exactly as dlib's chip extraction does
    for ``dlib.get_face_chip_details(det, size, padding)``.

    Note: training.evaluate.descriptor rounds the landmarks to integers (dlib.point) before
    building its detection; pass ``np.round(landmarks)`` to reproduce it bit for bit.
    """
    pts = np.asarray(landmarks68, np.float64).reshape(68, 2)
    template = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], 1)[np.array(_CHIP_POINTS) - 17]
    chip_pts = (padding + template) / (2 * padding + 1) * size
    fit = _similarity(chip_pts, pts[_CHIP_POINTS])  # chip -> image, as dlib fits it
    angle = np.arctan2(fit[1, 0], fit[0, 0])
    scale = np.hypot(fit[0, 0], fit[1, 0])
    centre = fit[:, :2] @ np.array([size / 2.0, size / 2.0]) + fit[:, 2]
    # dlib keeps (angle, scale, centre) as a rectangle of side size*scale - 1 (centered_drect)
    # and maps chip pixels 0..size-1 onto its corners, hence this slightly different scale.
    step = (size * scale - 1) / (size - 1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    # image = centre + step * rot @ (chip - (size-1)/2); inverted:
    m = rot.T / step
    half = (size - 1) / 2.0
    return np.concatenate([m, (half - m @ centre)[:, None]], 1)


def extract_chips(
    images: torch.Tensor, affines: torch.Tensor, size: int = CHIP_SIZE, quantize: bool = False
) -> torch.Tensor:
    """Differentiable chips (N, 3, size, size) in [0, 1] from images (N, 3, H, W) in [0, 1] and
    the 2x3 image->chip matrices of ``chip_affine`` (N, 2, 3), sampled bilinearly like dlib.

    ``quantize`` truncates the forward values to 1/255 steps as dlib's uint8 chip does (with a
    straight-through gradient): use it to reproduce dlib's descriptor, leave it off for a loss.
    """
    n, _, h, w = images.shape
    affines = affines.to(images)
    m, t = affines[:, :, :2], affines[:, :, 2:]
    inv = torch.linalg.inv(m)  # chip -> image
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=images.dtype, device=images.device),
        torch.arange(size, dtype=images.dtype, device=images.device),
        indexing="ij",
    )
    chip = torch.stack([xs.reshape(-1), ys.reshape(-1)], 0)  # (2, size*size)
    img = inv @ (chip.unsqueeze(0) - t)  # (N, 2, size*size), pixel coordinates
    # align_corners=True: -1 and +1 are the centres of the first and last pixels, i.e. pixel
    # centres sit at integer coordinates as in dlib.
    scale = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)], dtype=images.dtype, device=images.device)
    grid = (img * scale[None, :, None] - 1).transpose(1, 2).reshape(n, size, size, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    # dlib writes 0 wherever the 2x2 neighbourhood is not wholly inside the image, where
    # grid_sample would blend the edge pixels with zeros.
    x, y = img[:, 0], img[:, 1]
    inside = (x >= 0) & (x < w - 1) & (y >= 0) & (y < h - 1)
    out = out * inside.reshape(n, 1, size, size).to(out.dtype)
    if quantize:
        # The small epsilon absorbs float error at exact integers (dlib rounds towards zero).
        q = torch.floor(out.detach() * 255 + 1e-3) / 255
        out = out + (q - out.detach())
    return out


# --------------------------------------------------------------------------- file reading


class _Reader:
    """Sequential reader of dlib's serialization primitives."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        return float(mantissa * 2.0 ** self.int())

    def str(self) -> str:
        n = self.int()
        self.pos += n
        return self.data[self.pos - n : self.pos].decode("ascii")

    def bool(self) -> bool:
        self.pos += 1
        return self.data[self.pos - 1 : self.pos] == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"unexpected tensor version {version}")
        dims = [self.int() for _ in range(4)]
        count = int(np.prod(dims))
        out = np.frombuffer(self.data, "<f4", count, self.pos).reshape(dims)
        self.pos += 4 * count
        return out

    def alias(self) -> list[int]:
        self.int()  # version
        return [self.int() for _ in range(4)]


def read_model(path: Path) -> tuple[tuple[float, float, float], list[dict]]:
    """(channel means of the input layer, layer records in forward order) of a dlib
    face recognition model file (see the module docstring for the format)."""
    r = _Reader(Path(path).read_bytes())
    if r.int() != 1 or r.str() != "loss_metric_2":
        raise ValueError(f"{path}: not a dlib loss_metric network")
    r.float(), r.float()  # margin, distance threshold: training-only
    # The wrapper versions come first (top-down), up to the innermost add_layer (version 3).
    while (version := r.int()) != 3:
        if version not in (1, 2):
            raise ValueError(f"{path}: unexpected layer version {version}")
    if r.str() != "input_rgb_image_sized":
        raise ValueError(f"{path}: unexpected input layer")
    means = (r.float(), r.float(), r.float())
    r.int(), r.int()  # chip rows, cols (150)
    layers, first = [], True
    while r.pos < len(r.data):
        kind = r.str()
        if kind == "con_4":
            params = r.tensor().reshape(-1)
            out, kh, kw, sy, sx, py, px = (r.int() for _ in range(7))
            filters, _ = r.alias(), r.alias()
            [r.float() for _ in range(4)]
            n = int(np.prod(filters))
            layers.append(dict(
                kind="con", weight=params[:n].reshape(filters), bias=params[n:n + out],
                stride=(sy, sx), padding=(py, px),
            ))  # fmt: skip
        elif kind == "affine_":
            params = r.tensor().reshape(-1)
            r.alias(), r.alias()
            if r.int() != 0:
                raise ValueError(f"{path}: fc-mode affine layer not supported")
            half = params.size // 2
            layers.append(dict(kind="affine", gamma=params[:half], beta=params[half:]))
        elif kind in ("max_pool_2", "avg_pool_2"):
            nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
            layers.append(dict(kind=kind[:8], size=(nr, nc), stride=(sy, sx), padding=(py, px)))
        elif kind in ("relu_", "add_prev_"):
            layers.append(dict(kind=kind.rstrip("_")))
        elif kind == "fc_2":
            outputs, inputs = r.int(), r.int()
            params = r.tensor().reshape(-1)
            r.alias(), r.alias()
            if r.int() != 1:
                raise ValueError(f"{path}: fc layer with bias not supported")
            [r.float() for _ in range(4)]
            layers.append(
                dict(kind="fc", weight=params[: inputs * outputs].reshape(inputs, outputs))
            )
        else:
            raise ValueError(f"{path}: unknown layer {kind!r}")
        [r.bool() for _ in range(3)]  # add_layer bookkeeping flags
        [r.tensor() for _ in range(3)]  # x_grad, cached_output, params_grad: empty
        if first:
            r.int()  # the innermost add_layer's sample expansion factor
            first = False
    return means, layers


# --------------------------------------------------------------------------- the network


def _conv_affine(con: dict, affine: dict) -> nn.Conv2d:
    """A conv with the following affine layer folded in (both are linear at test time)."""
    weight = torch.from_numpy(con["weight"].copy())
    gamma, beta = torch.from_numpy(affine["gamma"].copy()), torch.from_numpy(affine["beta"].copy())
    out, inp, kh, kw = weight.shape
    conv = nn.Conv2d(inp, out, (kh, kw), con["stride"], con["padding"])
    with torch.no_grad():
        conv.weight.copy_(weight * gamma[:, None, None, None])
        conv.bias.copy_(torch.from_numpy(con["bias"].copy()) * gamma + beta)
    return conv


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: a + b with the smaller one zero-padded at the high end of C, H and W."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return pad(a) + pad(b)


class _Residual(nn.Module):
    """dlib's ares / ares_down: relu(shortcut(x) + affine(con(relu(affine(con(x))))))."""

    def __init__(self, conv1: nn.Conv2d, conv2: nn.Conv2d, pool: dict | None):
        super().__init__()
        self.conv1, self.conv2 = conv1, conv2
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        if self.pool is not None:
            x = F.avg_pool2d(x, self.pool["size"], self.pool["stride"], self.pool["padding"])
        return F.relu(_add_padded(y, x))


class DlibFaceNet(nn.Module):
    """dlib's face descriptor network: chips (N, 3, 150, 150) RGB in [0, 1] -> (N, 128).

    Built from ``read_model``'s records; parameters are frozen and the module is in eval mode,
    gradients flow to the input only (it has no batch norm or dropout, so a parent's ``.train()``
    changes nothing).
    """

    def __init__(self, path: Path | str | None = None):
        super().__init__()
        if path is None:
            from engine import faces

            path = faces.dlib_models_dir() / MODEL_FILE
        means, layers = read_model(Path(path))
        kinds = [layer["kind"] for layer in layers]
        if kinds[:4] != ["con", "affine", "relu", "max_pool"] or kinds[-2:] != ["avg_pool", "fc"]:
            raise ValueError(f"{path}: unexpected network layout")
        self.register_buffer("mean", torch.tensor(means).view(1, 3, 1, 1) / 255.0)
        self.stem = _conv_affine(layers[0], layers[1])
        pool = layers[3]
        self.stem_pool = (pool["size"], pool["stride"], pool["padding"])
        blocks, i = [], 4
        # Each residual block: con affine relu con affine [avg_pool] add_prev relu.
        while kinds[i] == "con":
            down = kinds[i + 5] == "avg_pool"
            expect = ["con", "affine", "relu", "con", "affine"] + ["avg_pool"] * down
            expect += ["add_prev", "relu"]
            if kinds[i : i + len(expect)] != expect:
                raise ValueError(f"{path}: unexpected residual block at layer {i}")
            conv1 = _conv_affine(layers[i], layers[i + 1])
            conv2 = _conv_affine(layers[i + 3], layers[i + 4])
            blocks.append(_Residual(conv1, conv2, layers[i + 5] if down else None))
            i += len(expect)
        self.blocks = nn.Sequential(*blocks)
        if i != len(layers) - 2 or layers[i]["size"] != (0, 0):
            raise ValueError(f"{path}: unexpected network head")
        self.fc = nn.Linear(*layers[-1]["weight"].shape, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(layers[-1]["weight"].T.copy()))
        self.requires_grad_(False)
        self.eval()

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        # dlib's input layer: (pixel - mean) / 256 on 0..255 pixels.
        x = (chips - self.mean) * (255.0 / 256.0)
        x = F.relu(self.stem(x))
        x = F.max_pool2d(x, *self.stem_pool)
        x = self.blocks(x)
        return self.fc(x.mean((2, 3)))


_lock = threading.Lock()
_cache: dict[str, DlibFaceNet] = {}


def load(path: Path | str | None = None) -> DlibFaceNet:
    """The network for ``path`` (default: the face-recognition-models file), built once per
    process and shared (``copy.deepcopy`` it before moving it to another device or dtype)."""
    key = str(path)
    with _lock:
        if key not in _cache:
            _cache[key] = DlibFaceNet(path)
        return _cache[key]
