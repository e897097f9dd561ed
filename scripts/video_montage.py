"""What a clean-trained model and its robust twin make of real clips (run by hand).

    .venv/bin/python scripts/video_montage.py ../shared/datasets/video \
        [--model s4_idrn] [--out docs/montage/montage_video.webp]

Each clip in the folder goes through ``python -m engine video`` (the analyst's command: the
longest face track, scale auto, the default fusion) once with the clean-trained model and once
with its robust variant. One row per clip: the fused low-resolution face (pixels enlarged as
blocks; the clean-trained model's, whose scale may differ from the robust file's where only
one has weights for the size Auto picks), the best single frame through each model, and the
fused frames through each model.
The clips have no ground truth: this is for looking, not measuring. The Intel sample GIFs are
palette-quantised with dithering, a damage the robust training mix does not contain, so the
montage also shows whether the robust files generalise past the mix.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import io, registry  # noqa: E402
from scripts.montage import _grid, _label  # noqa: E402

CLIP_SUFFIXES = {".gif", ".mp4", ".avi", ".mkv", ".mov", ".dav"}


def _only(folder: Path, pattern: str) -> np.ndarray:
    """The one output matching `pattern` (x4 / x8 / native names; the full frame left out)."""
    found = sorted(p for p in folder.glob(pattern) if not p.stem.endswith("_full"))
    if len(found) != 1:
        raise RuntimeError(f"expected one {pattern} in {folder}, found {len(found)}")
    return np.asarray(io.load(found[0]).rgb)


def enhance_clip(clip: Path, model: str, out: Path) -> dict[str, np.ndarray] | None:
    """The fused LR face, the single-frame and the fused output of `model` on `clip` (None when
    the longest track's face is too large for the model to enlarge)."""
    subprocess.run(
        [sys.executable, "-m", "engine", "video", str(clip), "--model", model, "--out", str(out)],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    single = f"*_single_{model}_*.png"
    if not any(out.glob(single)):
        return None  # the face is too large for the model: nothing was enlarged
    return {
        "lr": _only(out, "*_fused_lr.png"),
        "single": _only(out, single),
        "fused": _only(out, f"*_fused_{model}_*.png"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path, help="folder of clips")
    parser.add_argument("--model", default="s4_idrn", help="clean-trained model with a robust twin")
    parser.add_argument("--out", type=Path, default=REPO / "docs/montage/montage_video.webp")
    parser.add_argument("--credit", default="Intel IoT Developer Kit sample videos, CC BY 4.0",
                        help="the clips' source and licence, printed in the title")
    args = parser.parse_args(argv)
    clean = registry.get(args.model)
    twin = registry.robust_twin(clean.id)
    if twin is None:
        parser.error(f"{args.model} has no robust variant")
    robust = registry.get(twin)
    clips = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in CLIP_SUFFIXES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            got = {m.id: enhance_clip(clip, m.id, Path(tmp) / clip.stem / m.id)
                   for m in (clean, robust)}
            if any(v is None for v in got.values()):
                print(f"{clip.name}: left out, its face is too large to enlarge", flush=True)
                continue
            rows.append([got[clean.id]["lr"]]
                        + [got[m.id]["single"] for m in (clean, robust)]
                        + [got[m.id]["fused"] for m in (clean, robust)])
            print(f"{clip.name}: fused LR {got[clean.id]['lr'].shape[1]} px", flush=True)
    headers = ["fused LR\n(pixels as blocks)",
               *(f"{_label(m)}\n1 frame" for m in (clean, robust)),
               *(f"{_label(m)}\nfused" for m in (clean, robust))]
    title = f"Real clips ({args.credit}), no ground truth: {clean.id} and its robust twin"
    image = _grid([h.replace("AI:\n", "AI: ") for h in headers], rows, title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, quality=90)  # WebP quality; PNG ignores it
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
