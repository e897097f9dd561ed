"""Is the enhanced face still recognisably this person, rather than anyone?

    python benchmarks/identity_gallery.py --scale 4 \
        --models s0_srresnet_att_robust,s4_idrn_robust --families blur_jpeg,cctv [--controls] \
        --json benchmarks/identity_gallery.json [--md benchmarks/identity_gallery.md]

Each run merges its scores into --json (by scale and family); --md rewrites the tables from
--json (without --scale, nothing is measured), keeping the file's "## Reading" section.

benchmarks/identity_paired.py compares each output's dlib descriptor distance to its own HR
face with bicubic's. That distance alone cannot tell "further from this person" from "further
from every face": a blurred face's descriptor drifts towards the middle of descriptor space,
where it is close to everyone, and a sharper face's drifts away from it. A face examiner asks
the other question: among many people, is the output nearest to the right one? Here the 200
held-out HR faces are the gallery and each output is a probe (the same seeded LR of
training/degrade.py for every model, the descriptor as training/evaluate.py, located by the HR
face's landmarks). Per model and family:

- genuine: mean distance to its own HR face (the number of the degraded tables);
- impostor: mean distance to the other 199 HR faces;
- to mean: mean distance to the gallery's mean descriptor (how generic the output looks);
- rank-1: share of probes whose nearest gallery face is their own;
- AUC: the chance that a genuine pair is closer than an impostor pair (threshold-free);
- TAR / FAR at dlib's 0.6: genuine pairs accepted / impostor pairs accepted;
- margin: per probe, the median impostor distance minus the genuine distance; its mean
  difference to bicubic's, paired face by face, with a 95% interval (mean +- 1.96 SE).
  Above 0: the model's output stands out as this person more clearly than bicubic's.

With --controls, two probes that add no information are scored too: bicubic's output blurred
further, and the HR face blurred by 1 px (what a perfect restoration to 1 px would give).
CelebAMask-HQ can hold two photos of one person, which counts as an impostor pair here; it
does so equally for every model. One torch thread. training/results_table.py quotes the
margin beside issue 24's identity aim.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from identity_diagnostics import blur, u8  # noqa: E402
from identity_paired import paired  # noqa: E402

from engine import faces, registry, weights  # noqa: E402
from training import degrade as dg  # noqa: E402
from training.evaluate import descriptor, hardware, hr_faces  # noqa: E402
from training.metrics import gallery_scores  # noqa: E402

CONTROL_SIGMA = 1.5  # HR px: visibly softer than bicubic, no new information


def probe_descriptors(
    model_ids: list[str],
    scale: int,
    family: str,
    hr_list,
    landmarks,
    controls: bool,
    weights_dir: Path | None = None,
) -> dict[str, np.ndarray]:
    """Descriptor of every face's output, per model (bicubic first), on one family. With
    ``controls``, also of two outputs that add no information: bicubic's blurred further, and
    the HR face itself blurred (what a perfect deblurring to 1 px would give)."""
    lrs = [dg.family_lr(hr, scale, family, k) for k, (_n, hr) in enumerate(hr_list)]
    hrs = [hr for _n, hr in hr_list]

    def describe(images: list[np.ndarray]) -> np.ndarray:
        return np.stack([descriptor(img, lm) for img, lm in zip(images, landmarks, strict=True)])

    out = {}
    for model_id in ["bicubic", *model_ids]:
        model = weights.load(registry.get(model_id), scale, "cpu", weights_dir)
        sr = [model.run(lr) for lr in lrs]
        out[model_id] = describe(sr)
        if model_id == "bicubic" and controls:
            out[f"control: bicubic blurred further (sigma {CONTROL_SIGMA:g} px)"] = describe(
                [u8(blur(img, CONTROL_SIGMA)) for img in sr]
            )
            out["control: HR face blurred (sigma 1 px)"] = describe([u8(blur(hr, 1)) for hr in hrs])
    return out


def measure(args: argparse.Namespace) -> dict[str, dict]:
    """{family: {probe: scores}} for bicubic and each model (and the controls)."""
    model_ids = [m.strip() for m in args.models.split(",") if m.strip()]
    hr_list, _ = hr_faces(ROOT / "cache" / "faces" / "test_png", args.limit, aligned=True)
    landmarks = [faces.aligned_landmarks(hr) for _n, hr in hr_list]
    gallery = np.stack(
        [descriptor(hr, lm) for (_n, hr), lm in zip(hr_list, landmarks, strict=True)]
    )
    scores: dict[str, dict] = {}
    for family in dg.parse_families(args.families):
        probes = probe_descriptors(
            model_ids, args.scale, family, hr_list, landmarks, args.controls, args.weights
        )
        base = gallery_scores(probes["bicubic"], gallery)
        for probe, desc in probes.items():
            s = gallery_scores(desc, gallery)
            mean, se = paired(s["margin"] - base["margin"])
            scores.setdefault(family, {})[probe] = {
                "genuine": float(s["genuine"].mean()),
                **{k: s[k] for k in ("impostor", "to_mean", "rank1", "auc", "tar", "far")},
                "margin_vs_bicubic": [mean, mean - 1.96 * se, mean + 1.96 * se],
            }
            print(row(probe, family, scores[family][probe]), flush=True)
    return {"faces": len(hr_list), "hardware": hardware(), "families": scores}


def row(probe: str, family: str, s: dict) -> str:
    m, lo, hi = s["margin_vs_bicubic"]
    paired = "-" if probe == "bicubic" else f"{m:+.4f} ({lo:+.4f} .. {hi:+.4f})"
    return (
        f"| {probe} | {family} | {s['genuine']:.4f} | {s['impostor']:.4f} | {s['to_mean']:.4f} "
        f"| {s['rank1']:.1%} | {s['auc']:.4f} | {s['tar']:.1%} / {s['far']:.2%} | {paired} |"
    )


def probe_order(probe: str) -> tuple[int, str]:
    """bicubic, the controls, the robust files, then the clean-trained ones."""
    if probe == "bicubic":
        return (0, probe)
    if probe.startswith("control"):
        return (1, probe)
    return (2 if probe.endswith("_robust") else 3, probe)


def render(data: dict[str, dict], reading: str) -> str:
    lines = [
        "# Identification against a gallery of the held-out faces (issue 24)\n",
        (__doc__ or "").split("\n\n", 2)[2].strip(),
    ]
    for key in sorted(data, key=lambda k: int(k[1:])):
        entry = data[key]
        lines += [
            f"\n## {key}, {entry['faces']} faces ({entry['hardware']})\n",
            "| probe | family | genuine | impostor | to mean | rank-1 | AUC | TAR / FAR at 0.6 "
            "| margin: probe - bicubic (95% interval) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        fams = sorted(entry["families"], key=lambda f: (dg.FAMILIES + (f,)).index(f))
        for family in fams:
            res = entry["families"][family]
            lines += [row(p, family, res[p]) for p in sorted(res, key=probe_order)]
    return "\n".join(lines) + "\n" + reading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, help="measure at this scale (else only --md)")
    parser.add_argument("--models", default="", help="comma-separated model ids")
    parser.add_argument("--families", default="clean,jpeg,noise_jpeg,blur_jpeg,cctv")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--controls", action="store_true", help="add two probes that add no information"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights folder (default: the shipped one; give its scores their own --json)",
    )
    parser.add_argument("--json", type=Path, required=True, help="scores, merged by scale")
    parser.add_argument(
        "--md", type=Path, default=None, help="write the tables here (its ## Reading is kept)"
    )
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text()) if args.json.exists() else {}
    if args.scale:
        import torch

        torch.set_num_threads(1)
        new = measure(args)
        entry = data.setdefault(f"x{args.scale}", {"families": {}})
        entry.update(faces=new["faces"], hardware=new["hardware"])
        for family, probes in new["families"].items():
            entry["families"].setdefault(family, {}).update(probes)
        args.json.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    if args.md:
        old = args.md.read_text() if args.md.exists() else ""
        reading = old[old.index("\n## Reading") :] if "\n## Reading" in old else ""
        args.md.write_text(render(data, reading))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
