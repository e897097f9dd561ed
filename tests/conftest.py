"""Stills shared by the engine and app tests, built on the fly from the shipped sample.

The sample's face is about 78 px (native frame): larger than every model input frame but x2's,
so tests of the x4 and x8 paths use the sample shrunk 2.5x (a face of about 32 px), and the
native-resolution tests use one still holding the face at about 15, 30, 60 and 250 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "astronaut.png"
SAMPLE_BOX = (90.0, 39.0, 136.0, 85.0)  # dlib's HOG box of the sample's face
SAMPLE_NATIVE = 77.66  # its native frame in px (engine.faces.Face.native_frame_px)
SMALL_SIDE = 102  # the sample shrunk 2.5x: native frame about 32 px
SMALL_BOX = (35.0, 15.0, 53.0, 33.0)  # dlib's HOG box of the small sample's face


def _resized_sample(side: int) -> np.ndarray:
    from engine import imaging, io

    return imaging.resize(io.load(SAMPLE).rgb, side, side, "bicubic")


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """The sample shrunk 2.5x (102 px, face about 32 px) as a PNG file; box: SMALL_BOX."""
    from engine import io

    path = tmp_path_factory.mktemp("small_sample") / "small.png"
    io.save_png(path, _resized_sample(SMALL_SIDE), {})
    return path


@pytest.fixture(scope="session")
def small_box() -> tuple[float, float, float, float]:
    return SMALL_BOX


@dataclass(frozen=True)
class FaceSizes:
    path: Path
    targets: tuple[float, ...]  # the native frame each copy was made for
    boxes: tuple[tuple[float, float, float, float], ...]  # the sample's box, scaled and moved


@pytest.fixture(scope="session")
def face_sizes(tmp_path_factory) -> FaceSizes:
    """One still with the sample's face at native frames of about 15, 30, 60 and 250 px (face
    boxes of about 9, 18, 36 and 148 px), side by side on grey, bottoms aligned."""
    from engine import io

    targets = (15.0, 30.0, 60.0, 250.0)
    copies = [_resized_sample(round(256 * t / SAMPLE_NATIVE)) for t in targets]
    gap = 8
    height = max(c.shape[0] for c in copies)
    width = sum(c.shape[1] for c in copies) + gap * (len(copies) + 1)
    canvas = np.full((height, width, 3), 120, np.uint8)
    boxes = []
    x = gap
    for copy in copies:
        side = copy.shape[0]
        y = height - side
        canvas[y : y + side, x : x + side] = copy
        f = side / 256
        boxes.append(tuple(v * f + o for v, o in zip(SAMPLE_BOX, (x, y, x, y), strict=True)))
        x += side + gap
    path = tmp_path_factory.mktemp("face_sizes") / "face_sizes.png"
    io.save_png(path, canvas, {})
    return FaceSizes(path=path, targets=targets, boxes=tuple(boxes))


@pytest.fixture
def hog_blind(monkeypatch) -> list[str]:
    """dlib's HOG detector made blind (finds nothing); the CNN still runs. Returns the list of
    detector methods asked for, in order (the "auto" setting's fallback is seen there)."""
    from engine import faces as facelib

    real, asked = facelib.detect, []

    def detect(rgb, method="hog", **kwargs):
        asked.append(method)
        return [] if method == "hog" else real(rgb, method=method, **kwargs)

    monkeypatch.setattr(facelib, "detect", detect)
    return asked
