"""The one ordered registry of the models the app hosts: two interpolation baselines and the
networks of the five seed papers (S0-S4).

Everything a caller needs to use a model correctly lives in its :class:`ModelEntry`: the paper
it implements (with a full citation), the scales the app offers, the input convention (the LR
face as is, or bicubic-upsampled to 128x128 first), the value range, and where the network
class lives with its default constructor arguments. The list is written out by hand — no
folder scanning, no registration by import side effect — and ``import engine.registry`` stays
light: network modules (and torch) are imported only when :func:`build` is called.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

HR_SIZE = 128
"""Side of the high-resolution aligned face every model produces (and is trained on)."""

PAPERS = ("baseline", "S0", "S1", "S2", "S3", "S4")
INPUTS = ("lr", "upsampled")
VARIANTS = ("baseline", "psnr", "gan", "robust")
SR_SCALES = (2, 3, 4, 8)
RESTORE_SCALE = 1
"""Scale 1: restoration at the face's recorded size (issue 24). Offered only by restoration
models (``scales == (1,)``), never mixed with enlargement scales in one entry, and never chosen
by Auto."""
BASELINE_METHODS = {"bicubic": "bicubic", "lanczos": "lanczos"}


@dataclass(frozen=True)
class ModelEntry:
    """One model the app offers. Treat ``kwargs`` as read-only (use :func:`default_kwargs`)."""

    id: str
    paper: str  # "S0".."S4" or "baseline"
    title: str  # the paper's title (or the method's name for a baseline)
    authors: str
    citation: str
    scales: tuple[int, ...]
    input: str  # "lr": the aligned LR face; "upsampled": the LR face bicubic-resized to 128x128
    value_range: tuple[float, float] = (0.0, 1.0)
    arch: str | None = None  # "module.path:ClassName"; None for interpolation baselines
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # "psnr" (pixel-loss training on clean LR faces), "gan" (adversarial fine-tune of a psnr
    # model), "robust" (a psnr model fine-tuned on compressed, noisy, blurred LR faces),
    # "baseline" (interpolation)
    variant: str = "psnr"
    shared_weights: bool = False  # one weight file serves every scale (S1)
    name: str = ""  # short label for menus and messages, e.g. "RAFSR (Che et al. 2023)"
    twin: str = ""  # a robust or GAN variant: the id of the clean-trained model it starts from
    description: str = ""  # what the model does, in plain words, where its variant does not say

    @property
    def is_baseline(self) -> bool:
        return self.arch is None

    @property
    def restores(self) -> bool:
        """A restoration model (scale 1 only): it cleans the face at its recorded size and
        enlarges nothing; it runs on the still's own pixels (see engine.resolution, "restore")."""
        return self.scales == (RESTORE_SCALE,)

    @property
    def label(self) -> str:
        """The short name if set, else the id."""
        return self.name or self.id

    @property
    def use_when(self) -> str:
        """In plain words, which input this model is for (the GUI's model tooltip)."""
        if self.restores:
            return f"{self.description} {USE_WHEN['restore']}"
        return USE_WHEN[self.variant]


# Which variant to use on which input, for the analyst (tooltips, README, reports).
USE_WHEN = {
    "baseline": (
        "Interpolation only: enlarges without adding or inventing detail. The reference every "
        "model is measured against."
    ),
    "psnr": (
        "Trained on clean faces only. Use it only on input known to be clean: a JPEG of "
        "quality about 95 or better, or a lossless file known never to have been compressed, "
        "with little noise or blur (a lossless file alone does not prove it: the app "
        "recommends the robust variant for one). On compressed, noisy or blurred evidence it "
        "sharpens JPEG blocks and noise into detail that is not there, and the face becomes "
        "harder to tell from other people's; use the robust variant of the same paper instead."
    ),
    "robust": (
        "Trained on damaged faces (JPEG quality 20-90, video coding, sensor noise, blur) and "
        "some clean ones. Use it on ordinary evidence: CCTV stills, video frames, JPEGs from "
        "phones or the web, anything compressed, noisy or soft: there a face-recognition "
        "network tells the person from others at least as well as on plain enlargement "
        "(measured on 200 held-out faces). On clean high-quality input the clean-trained model "
        "of the same paper keeps a little more detail."
    ),
    "restore": (
        "For faces of 128 px or more, which need clean-up rather than enlargement: it runs on "
        "the still's own pixels around the face (no alignment, no resampling) and its output "
        "lies on the same pixel grid. Trained on damaged faces (JPEG quality 20-90, video "
        "coding, sensor noise, blur) and some clean ones. Chosen only by hand (scale x1 "
        "restore), never by Auto."
    ),
    "gan": (
        "Adversarial fine-tune of the clean-trained model: crisper-looking, but it invents "
        "texture that is not in the evidence. Clean input only, and only to compare."
    ),
}


# Citations: title, authors, venue and year as printed in the paper texts (papers/*.txt). Where
# the extracted text lacks them (S4's header; S0's volume), they come from the publisher's page.
_S0 = dict(
    paper="S0",
    title="The face image super-resolution algorithm based on combined representation learning",
    authors=(
        "Yuantao Chen, Volachith Phonevilay, Jiajun Tao, Xi Chen, Runlong Xia, Qian Zhang, "
        "Kai Yang, Jie Xiong, Jingbo Xie"
    ),
    citation=(
        "Chen Y., Phonevilay V., Tao J., Chen X., Xia R., Zhang Q., Yang K., Xiong J., Xie J. "
        "The face image super-resolution algorithm based on combined representation learning. "
        "Multimedia Tools and Applications 80, 2021 (published online 17 November 2020). "
        "doi:10.1007/s11042-020-09969-1"
    ),
    scales=(4, 8),
    input="lr",
    arch="engine.archs.s0_srresnet_att:SRResNetAttention",
)
_S3 = dict(
    paper="S3",
    title="A Prior-Guided Face Image Super-Resolution Network Based on Attention Mechanism",
    authors="Yun Liu (advisor: Hiroshi Watanabe)",
    citation=(
        "Liu Y. A Prior-Guided Face Image Super-Resolution Network Based on Attention Mechanism. "
        "Master's thesis, Department of Computer Science and Communications Engineering, "
        "Waseda University, Tokyo, January 2023."
    ),
    scales=(4, 8),
    input="lr",
    arch="engine.archs.s3_prior_guided:PriorGuidedSR",
)

_S1 = dict(
    paper="S1",
    title="Face Super-resolution Reconstruction Based on Multi-scale Feature Fusion",
    authors="Shasha Wu, Xueyun Chen",
    citation=(
        "Wu S., Chen X. Face Super-resolution Reconstruction Based on Multi-scale Feature "
        "Fusion. College of Electrical Engineering, Guangxi University, Nanning, China "
        "(venue and year not given in the paper text)."
    ),
    scales=(2, 3, 4, 8),
    input="upsampled",
    arch="engine.archs.s1_mffcn:MFFCN",
    shared_weights=True,
)
_S2 = dict(
    paper="S2",
    title=(
        "Face image super-resolution reconstruction algorithm based on residual attention "
        "mechanism"
    ),
    authors="Yali Che, Yan Xu, Haili Xue, Xuhui Liu",
    citation=(
        "Che Y., Xu Y., Xue H., Liu X. Face image super-resolution reconstruction algorithm "
        "based on residual attention mechanism. Journal of Measurement Science and "
        "Instrumentation 15(4):458-465, 2024 (accepted 11 May 2023)."
    ),
    scales=(4, 8),
    input="lr",
    arch="engine.archs.s2_rafsr:RAFSR",
)
_S4 = dict(
    paper="S4",
    title=(
        "The visual human face super-resolution reconstruction algorithm based on improved "
        "deep residual network"
    ),
    authors="Di Fan, Shuai Fang, Guangcai Wang, Shang Gao, Xiaoxin Liu",
    citation=(
        "Fan D., Fang S., Wang G., Gao S., Liu X. The visual human face super-resolution "
        "reconstruction algorithm based on improved deep residual network. EURASIP Journal "
        "on Advances in Signal Processing 2019:32, 2019. doi:10.1186/s13634-019-0626-4"
    ),
    scales=(2, 4, 8),
    input="lr",
    arch="engine.archs.s4_idrn:IDRN",
)

# Each paper's clean-trained (psnr) model first, then its robust variant (trained on damaged
# input; the default where its weights are installed, see default_model_id), then its GAN.
MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        id="bicubic",
        paper="baseline",
        title="Bicubic interpolation",
        authors="R. Keys",
        citation=(
            "Keys R. Cubic convolution interpolation for digital image processing. IEEE "
            "Transactions on Acoustics, Speech, and Signal Processing 29(6):1153-1160, 1981. "
            "(Pillow's implementation.)"
        ),
        scales=(2, 3, 4, 8),
        input="lr",
        variant="baseline",
        name="Bicubic",
    ),
    ModelEntry(
        id="lanczos",
        paper="baseline",
        title="Lanczos interpolation",
        authors="C. E. Duchon",
        citation=(
            "Duchon C. E. Lanczos filtering in one and two dimensions. Journal of Applied "
            "Meteorology 18(8):1016-1022, 1979. (Pillow's implementation, a = 3.)"
        ),
        scales=(2, 3, 4, 8),
        input="lr",
        variant="baseline",
        name="Lanczos",
    ),
    ModelEntry(
        id="s0_srresnet_att",
        variant="psnr",
        name="SRResNet+attention (Chen 2020)",
        **(_S0 | {"scales": (2, 4, 8)}),  # x2 for faces of 33-64 px (issue 23)
    ),
    ModelEntry(id="s0_srresnet_att_robust", variant="robust", twin="s0_srresnet_att",
               name="SRResNet+attention robust (Chen 2020)",
               **(_S0 | {"scales": (2, 4, 8)})),  # x2 where its weights are installed
    ModelEntry(id="s0_srresnet_att_gan", variant="gan", twin="s0_srresnet_att",
               name="SRResNet+attention GAN (Chen 2020)", **_S0),
    ModelEntry(id="s1_mffcn", variant="psnr", name="MFFCN (Wu & Chen)", **_S1),
    ModelEntry(id="s1_mffcn_robust", variant="robust", twin="s1_mffcn",
               name="MFFCN robust (Wu & Chen)", **_S1),
    ModelEntry(id="s2_rafsr", variant="psnr", name="RAFSR (Che et al. 2023)", **_S2),
    ModelEntry(id="s2_rafsr_robust", variant="robust", twin="s2_rafsr",
               name="RAFSR robust (Che et al. 2023)", **_S2),
    ModelEntry(id="s3_prior_guided", variant="psnr", name="Prior-guided (Liu 2023)", **_S3),
    ModelEntry(id="s3_prior_guided_robust", variant="robust", twin="s3_prior_guided",
               name="Prior-guided robust (Liu 2023)", **_S3),
    ModelEntry(id="s3_prior_guided_gan", variant="gan", twin="s3_prior_guided",
               name="Prior-guided GAN (Liu 2023)", **_S3),
    ModelEntry(id="s4_idrn", variant="psnr", name="IDRN (Fan et al. 2019)", **_S4),
    ModelEntry(id="s4_idrn_robust", variant="robust", twin="s4_idrn",
               name="IDRN robust (Fan et al. 2019)", **_S4),
    # Restoration at the native size (issue 24): the same network without its upsampler.
    ModelEntry(
        id="s4_idrn_restore",
        variant="robust",
        twin="s4_idrn",
        name="IDRN x1 restore (Fan et al. 2019)",
        description=(
            "Removes compression blocking, noise and mild blur at the recorded size; enlarges "
            "nothing."
        ),
        **(_S4 | {"scales": (RESTORE_SCALE,)}),
    ),
)

# The model the app starts with, best first: the first one whose weights are installed at the
# scale in use (default_model_id). Robust variants lead: evidence is rarely clean.
DEFAULT_ORDER = ("s4_idrn_robust", "s0_srresnet_att_robust", "s2_rafsr_robust",
                 "s3_prior_guided_robust", "s1_mffcn_robust", "s4_idrn", "s0_srresnet_att",
                 "bicubic")


def _check(models: tuple[ModelEntry, ...]) -> dict[str, ModelEntry]:
    """Index the registry by id, refusing duplicates and malformed entries (runs at import)."""
    index: dict[str, ModelEntry] = {}
    for entry in models:
        if entry.id in index:
            raise ValueError(f"duplicate model id {entry.id!r} in engine.registry.MODELS")
        if entry.paper not in PAPERS:
            raise ValueError(f"model {entry.id!r}: unknown paper {entry.paper!r}")
        if entry.input not in INPUTS:
            raise ValueError(f"model {entry.id!r}: input must be one of {INPUTS}")
        if entry.variant not in VARIANTS:
            raise ValueError(f"model {entry.id!r}: variant must be one of {VARIANTS}")
        if (entry.arch is None) != (entry.variant == "baseline"):
            raise ValueError(f"model {entry.id!r}: only baselines may lack an architecture")
        if entry.arch is None and entry.id not in BASELINE_METHODS:
            raise ValueError(f"baseline {entry.id!r} has no interpolation method")
        if entry.scales != (RESTORE_SCALE,) and (
            not entry.scales or any(s not in SR_SCALES for s in entry.scales)
        ):
            raise ValueError(
                f"model {entry.id!r}: scales {entry.scales} are not all in 2, 3, 4, 8 "
                "(or x1 alone, for a restoration model)"
            )
        if entry.scales == (RESTORE_SCALE,) and (
            entry.input != "lr" or entry.variant != "robust" or not entry.description
        ):
            raise ValueError(
                f"model {entry.id!r}: a restoration model (x1) must read the face as is "
                "(input 'lr'), be a robust variant and describe itself in plain words"
            )
        if entry.variant == "robust":
            twin = index.get(entry.twin)
            if twin is None or twin.variant != "psnr" or twin.arch != entry.arch:
                raise ValueError(f"robust model {entry.id!r}: twin {entry.twin!r} must be an "
                                 "earlier psnr entry of the same architecture")
        index[entry.id] = entry
    for model_id in DEFAULT_ORDER:
        if model_id not in index:
            raise ValueError(f"DEFAULT_ORDER names {model_id!r}, which is not registered")
    return index


_INDEX = _check(MODELS)


def ids() -> list[str]:
    """Model ids in registry order."""
    return [entry.id for entry in MODELS]


def get(model_id: str) -> ModelEntry:
    """The entry for ``model_id``; KeyError listing the known ids if there is none."""
    try:
        return _INDEX[model_id]
    except (KeyError, TypeError):
        raise KeyError(f"unknown model {model_id!r}; known models: {', '.join(ids())}") from None


def restoration_models() -> list[ModelEntry]:
    """The x1 restoration models, in registry order."""
    return [entry for entry in MODELS if entry.restores]


def check_scale(entry: ModelEntry, scale: int) -> int:
    """``scale`` as int if the app offers ``entry`` at that scale, else ValueError."""
    if isinstance(scale, bool) or int(scale) != scale or int(scale) not in entry.scales:
        offered = ", ".join(f"x{s}" for s in entry.scales)
        raise ValueError(f"{entry.label} is offered at {offered}, not x{scale}")
    return int(scale)


def arch_class(entry: ModelEntry) -> type:
    """Import and return the network class of ``entry`` (the import happens here, lazily)."""
    if entry.arch is None:
        raise ValueError(f"{entry.label} is an interpolation baseline and has no network")
    module_name, _, class_name = entry.arch.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ImportError(f"{module_name} has no class {class_name} (model {entry.id})") from None


def takes_scale(entry: ModelEntry) -> bool:
    """Whether the network's constructor has a ``scale`` argument (S1's does not)."""
    return "scale" in inspect.signature(arch_class(entry)).parameters


def default_kwargs(entry: ModelEntry, scale: int) -> dict[str, Any]:
    """A fresh copy of the constructor arguments for ``entry`` at ``scale``."""
    kwargs = dict(entry.kwargs)
    if takes_scale(entry):
        kwargs["scale"] = check_scale(entry, scale)
    return kwargs


def build(entry: ModelEntry, scale: int, /, **overrides: Any):
    """Construct the (randomly initialised) network of ``entry`` for ``scale``.

    ``overrides`` replace default constructor arguments (weights files carry the arguments the
    network was trained with; tests use small widths). Returns an ``nn.Module`` in train mode.
    """
    check_scale(entry, scale)
    kwargs = default_kwargs(entry, scale) | overrides
    if "scale" in kwargs and kwargs["scale"] != scale:
        raise ValueError(
            f"{entry.label}: arguments say scale {kwargs['scale']}, asked for x{scale}"
        )
    module = arch_class(entry)(**kwargs)
    # Recorded so that weights.save() can store the exact arguments without being told them.
    module.ffe_build_kwargs = dict(kwargs)
    return module


def weight_filename(entry: ModelEntry, scale: int) -> str:
    """File name of the weights for ``entry`` at ``scale`` (one file for all scales if shared)."""
    if entry.is_baseline:
        raise ValueError(f"{entry.label} is an interpolation baseline and has no weights")
    scale = check_scale(entry, scale)
    if entry.shared_weights:
        return f"{entry.id}.safetensors"
    return f"{entry.id}_x{scale}.safetensors"


def robust_twin(model_id: str) -> str | None:
    """The id of the robust (enlarging) variant of a clean-trained model (None if it has none)."""
    for entry in MODELS:
        if entry.variant == "robust" and entry.twin == model_id and not entry.restores:
            return entry.id
    return None


def default_model_id(available=None) -> str:
    """The model the app should start with: the first of DEFAULT_ORDER that `available` (a
    callable id -> bool, e.g. "weights installed at the current scale") accepts; "bicubic" if
    none. Without `available`, the first of DEFAULT_ORDER."""
    for model_id in DEFAULT_ORDER:
        if available is None or available(model_id):
            return model_id
    return "bicubic"
