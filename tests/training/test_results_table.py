"""The weights README's degraded table and issue 24's aims (training/results_table.py)."""

from __future__ import annotations

import json
from pathlib import Path

from engine import registry
from training import results_table


def _metrics(psnr: float, identity: float) -> dict[str, float]:
    return {"psnr": psnr, "identity_distance": identity}


def _bench(tmp_path: Path, unseen_gain: float) -> Path:
    """degraded_x4.json: the robust S4 file +1.2 dB on every aim family, `unseen_gain` on one
    family outside the training mix."""
    fams = {
        fam: {"bicubic": _metrics(23.0, 0.61), "s4_idrn_robust": _metrics(24.2, 0.60)}
        for fam in ("jpeg", "noise_jpeg", "blur_jpeg", "cctv")
    }
    fams["sharp_jpeg"] = {
        "bicubic": _metrics(22.0, 0.62),
        "s4_idrn_robust": _metrics(22.0 + unseen_gain, 0.65),
    }
    (tmp_path / "degraded_x4.json").write_text(json.dumps({"faces": 200, "families": fams}))
    return tmp_path


def _rows() -> list[dict]:
    entry = registry.get("s4_idrn_robust")
    return [{"entry": entry, "scale": 4, "file": "s4_idrn_robust_x4.safetensors"}]


def test_aims_count_the_aim_families_only(tmp_path: Path) -> None:
    text = results_table.robust_aims(_bench(tmp_path, unseen_gain=-0.3), _rows())
    x4 = next(line for line in text.splitlines() if line.startswith("- x4"))
    assert "(4 measured): met." in x4  # the unseen family's -0.3 dB is not an aim
    assert "Identity distance below bicubic's on every family: yes." in x4


def test_aims_say_by_how_much_a_family_falls_short(tmp_path: Path) -> None:
    bench = _bench(tmp_path, unseen_gain=0.5)
    data = json.loads((bench / "degraded_x4.json").read_text())
    data["families"]["jpeg"]["s4_idrn_robust"] = _metrics(23.75, 0.62)
    (bench / "degraded_x4.json").write_text(json.dumps(data))
    x4 = next(
        line for line in results_table.robust_aims(bench, _rows()).splitlines() if "x4" in line
    )
    assert "**not met**: jpeg +0.75 (0.25 dB short)" in x4
    assert "**no**: jpeg 0.620 vs 0.610" in x4


def test_degraded_table_marks_unseen_families(tmp_path: Path) -> None:
    table = results_table.degraded_table(_bench(tmp_path, unseen_gain=0.4), 4, _rows())
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells == [
        "model",
        "clean",
        "jpeg",
        "noise_jpeg",
        "blur_jpeg",
        "cctv",
        "sharp_jpeg (unseen)",
    ]
    row = next(line for line in table.splitlines() if "s4_idrn_robust" in line)
    assert "+0.40 / 0.650" in row and "(trained on)" not in row
    # a file with a stage on the wider mix drew sharpening: its cell says so
    rows = _rows()
    rows[0]["training"] = {"degradation": "mix", "stages": [{"degradation": "mix_wide"}]}
    row = next(
        line
        for line in results_table.degraded_table(
            _bench(tmp_path, unseen_gain=0.4), 4, rows
        ).splitlines()
        if "s4_idrn_robust" in line
    )
    assert "+0.40 / 0.650 (trained on)" in row


def test_aims_flag_identity_measured_by_the_network_it_was_trained_on(tmp_path: Path) -> None:
    """A file with an identity loss in any stage gets the caveat beside its identity verdict."""
    bench = _bench(tmp_path, unseen_gain=0.5)
    plain = results_table.robust_aims(bench, _rows())
    rows = _rows()
    rows[0]["training"] = {"losses": {"l1": 1.0}, "stages": [{"losses": {"identity": 0.05}}]}
    flagged = results_table.robust_aims(bench, rows)
    assert "same dlib network" not in plain and "same dlib network" in flagged


def _gallery(tmp_path: Path, margins: dict[str, list[float]]) -> Path:
    """identity_gallery.json at x4: the robust S4 file's paired margin over bicubic's."""
    fams = {
        fam: {"s4_idrn_robust": {"margin_vs_bicubic": m}, "bicubic": {"margin_vs_bicubic": [0] * 3}}
        for fam, m in margins.items()
    }
    (tmp_path / "identity_gallery.json").write_text(json.dumps({"x4": {"families": fams}}))
    return tmp_path


def test_aims_give_identification_beside_the_identity_distance(tmp_path: Path) -> None:
    bench = _bench(tmp_path, unseen_gain=0.5)
    x4 = next(line for line in results_table.robust_aims(bench, _rows()).splitlines())
    assert "Identification" not in x4  # no gallery benchmark: no verdict
    _gallery(
        bench,
        {
            "clean": [-0.01, -0.02, 0.0],  # clean is not an aim family
            "jpeg": [0.004, -0.002, 0.010],
            "blur_jpeg": [0.02, 0.01, 0.03],
        },
    )
    x4 = next(line for line in results_table.robust_aims(bench, _rows()).splitlines())
    assert "not worse on any family (+0.004 to +0.020" in x4
    assert "within the spread on jpeg (-0.002 .. +0.010)" in x4
    _gallery(bench, {"blur_jpeg": [0.02, 0.01, 0.03]})
    x4 = next(line for line in results_table.robust_aims(bench, _rows()).splitlines())
    assert "better on every family (+0.020 to +0.020; each 95% interval above 0)." in x4
    _gallery(bench, {"jpeg": [-0.004, -0.01, 0.002], "cctv": [0.02, 0.01, 0.03]})
    x4 = next(line for line in results_table.robust_aims(bench, _rows()).splitlines())
    assert "**worse** on jpeg -0.004." in x4


def test_table_says_when_a_file_is_an_interpolation_of_two_stages() -> None:
    m = {"psnr": 30.0, "ssim": 0.9, "lpips": 0.1, "landmark_error": 0.02, "identity_distance": 0.3}
    row = _rows()[0] | {"m": m, "bicubic": m | {"psnr": 28.0}}
    row["training"] = {"stages": [{"steps": 10, "batch_size": 8, "wall_minutes": 1.0}]}
    assert "interpolated" not in results_table.table([row])
    row["training"]["interpolation"] = {"alpha": 0.75}
    assert "10 x 8, then interpolated (alpha 0.75)" in results_table.table([row])
