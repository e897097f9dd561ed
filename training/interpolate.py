"""Network interpolation between two trained files of one model and scale.

    python -m training.interpolate \
        --a git:c48ec1c:resources/weights/s0_srresnet_att_robust_x2.safetensors \
        --b resources/weights/s0_srresnet_att_robust_x2.safetensors \
        --alpha 0.75 --out resources/weights/s0_srresnet_att_robust_x2.safetensors

Every tensor of the result is ``(1 - alpha) * A + alpha * B`` (Wang et al. 2018, ESRGAN,
section 3.4, "network interpolation"), which is meaningful when B was trained on from A, as
then both lie in one basin. Why (issue 24): a later training stage can buy PSNR with detail
that makes a face harder to tell from other people's (benchmarks/identity_gallery.md); a
point between the two stages can keep most of the PSNR and none of that harm. ``alpha`` is
chosen on validation faces, never on the held-out test faces that report the result.

A source is a file path or ``git:REV:PATH`` (a file as committed at revision REV, so an
earlier shipped file can be reproduced from history). Both files must be the same model,
architecture, constructor arguments, scales and tensor names and shapes, and B must have been
trained on from A (A's recorded stages begin B's). The result keeps B's
training record (whose stages include A's when B continued from A) and adds an
``interpolation`` entry with both files' SHA-256, their sources and ``alpha``; the manifest is
updated. Its model card is B's, with the new SHA-256 and a section saying what was done.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from engine import registry, weights

ROOT = Path(__file__).resolve().parents[1]


def read_source(source: str, suffix: str = ".safetensors") -> bytes | None:
    """The bytes of ``source`` (a path, or git:REV:PATH read from this repository) with its
    suffix replaced by ``suffix`` (".md": the model card beside it); None when there is none."""
    if not source.startswith("git:"):
        path = Path(source).with_suffix(suffix)
        return path.read_bytes() if path.exists() else None
    _git, rev, path = source.split(":", 2)
    shown = subprocess.run(
        ["git", "show", f"{rev}:{Path(path).with_suffix(suffix)}"], cwd=ROOT, capture_output=True
    )
    return shown.stdout if shown.returncode == 0 else None


def fetch(source: str, workdir: Path) -> Path:
    """``source``'s weights file as a local path (one read from git is written to ``workdir``)."""
    if not source.startswith("git:"):
        return Path(source)
    data = read_source(source)
    if data is None:
        raise FileNotFoundError(f"no weights file at {source}")
    _git, rev, path = source.split(":", 2)
    out = workdir / f"{rev}_{Path(path).name}"
    out.write_bytes(data)
    return out


def stages(metadata: dict[str, str]) -> list:
    return json.loads(metadata.get("training", "{}")).get("stages", [])


def interpolate(a_src: str, b_src: str, alpha: float, out: Path) -> str:
    """Write the interpolated file to ``out`` (and its card and manifest row); its SHA-256."""
    from safetensors.torch import load_file

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    with tempfile.TemporaryDirectory() as tmp:
        a_path, b_path = fetch(a_src, Path(tmp)), fetch(b_src, Path(tmp))
        meta_a, meta_b = weights.read_metadata(a_path), weights.read_metadata(b_path)
        for key in ("model_id", "arch", "kwargs", "scales"):
            if meta_a.get(key) != meta_b.get(key):
                raise ValueError(
                    f"the files differ in {key}: {meta_a.get(key)} vs {meta_b.get(key)}"
                )
        if stages(meta_b)[: len(stages(meta_a))] != stages(meta_a):
            raise ValueError("file B was not trained on from file A (A's stages do not begin B's)")
        ta, tb = load_file(str(a_path)), load_file(str(b_path))
        if {k: v.shape for k, v in ta.items()} != {k: v.shape for k, v in tb.items()}:
            raise ValueError("the files hold different tensors")
        sha_a, sha_b = weights.file_sha256(a_path), weights.file_sha256(b_path)
        card = (read_source(b_src, ".md") or b"").decode()
    entry = registry.get(meta_b["model_id"])
    kwargs = json.loads(meta_b["kwargs"])
    scales = json.loads(meta_b["scales"])
    module = registry.build(entry, scales[0], **kwargs)
    mixed = {
        k: ((1 - alpha) * ta[k].double() + alpha * tb[k].double()).to(tb[k].dtype)
        if tb[k].is_floating_point()
        else tb[k]  # counters (e.g. batch norm's) are not interpolated
        for k in tb
    }
    module.load_state_dict(mixed)
    training = json.loads(meta_b.get("training", "{}"))
    training["interpolation"] = {
        "alpha": alpha,
        "formula": "(1 - alpha) * a + alpha * b, every floating-point tensor",
        "a": {"source": a_src, "sha256": sha_a},
        "b": {"source": b_src, "sha256": sha_b},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    served = scales if entry.shared_weights else scales[0]
    sha = weights.save(module, entry, served, out, training, kwargs=kwargs)
    weights.update_manifest(out)
    if card:
        card = card.split("\n## Network interpolation\n")[0].rstrip("\n") + "\n"
        old_sha = next((line for line in card.splitlines() if line.startswith("- SHA-256:")), "")
        card = card.replace(old_sha, f"- SHA-256: `{sha}`") if old_sha else card
        card += (
            f"\n## Network interpolation\n\nThis file is not the last training run's output: "
            f"every tensor is (1 - {alpha:g}) x file A + {alpha:g} x file B "
            f"(`python -m training.interpolate --a {a_src} --b {b_src} --alpha {alpha:g} "
            f"--out {out.name}`; "
            f"Wang et al. 2018, ESRGAN, section 3.4).\n\n- A: `{a_src}` (SHA-256 `{sha_a}`)\n"
            f"- B: `{b_src}` (SHA-256 `{sha_b}`); the training record above is B's, whose "
            "stages include A's.\n"
        )
        out.with_suffix(".md").write_text(card)
    return sha


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", required=True, help="file A (alpha 0): a path or git:REV:PATH")
    parser.add_argument("--b", required=True, help="file B (alpha 1): a path or git:REV:PATH")
    parser.add_argument("--alpha", type=float, required=True, help="weight of file B, 0..1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sha = interpolate(args.a, args.b, args.alpha, args.out)
    print(f"{args.out} sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
