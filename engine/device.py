"""Which device the networks run on, and the settings that make their output reproducible.

CUDA is used when PyTorch sees a GPU, the CPU otherwise; ``FFE_DEVICE`` (e.g. "cpu", "cuda",
"cuda:1") overrides that choice for a session. Forensic outputs must be reproducible, so
inference runs in float32 with TF32 and cuDNN autotuning off and deterministic algorithms
requested; no random numbers are drawn anywhere at inference.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

ENV_VAR = "FFE_DEVICE"


def resolve(device: str | None = None) -> str:
    """The device to run on: ``device`` if given, else $FFE_DEVICE, else "cuda" if available, else "cpu".

    Raises ValueError for a device string torch does not understand or a GPU that is not there.
    """
    import torch

    choice = device or os.environ.get(ENV_VAR) or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(choice)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {choice!r} ({exc})") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was asked for but PyTorch sees no CUDA GPU")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device {choice!r}: only {torch.cuda.device_count()} GPU(s) present")
    elif parsed.type != "cpu":
        raise ValueError(f"device {choice!r} is not supported; use 'cpu' or 'cuda[:N]'")
    return str(parsed)


def make_deterministic() -> None:
    """Ask PyTorch for reproducible fp32 results (process-wide; harmless for inference).

    ``warn_only=True``: an operation without a deterministic implementation warns instead of
    failing, so a model still runs; none of the project's networks use such an operation.
    """
    import torch

    # cuBLAS needs this set before its first use to be deterministic on CUDA >= 10.2.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def describe(device: str) -> str:
    """A human-readable name of ``device`` for provenance, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return "cpu"


def is_cuda_out_of_memory(exc: BaseException) -> bool:
    """``torch.cuda.OutOfMemoryError``, recognised by its class name (callers need not import
    torch, and the GUI must not): the one test for the GPU running out of memory."""
    return any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__)


def is_out_of_memory(exc: BaseException) -> bool:
    """Any out-of-memory failure: the GPU's, Python's ``MemoryError``, or a library's message."""
    return (
        isinstance(exc, MemoryError)
        or is_cuda_out_of_memory(exc)
        or "out of memory" in str(exc).lower()
    )
