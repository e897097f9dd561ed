"""Case log: the hash chain catches edits, removals, reordering and truncation; appends are safe
from two threads; history filters; an enhancement re-runs bit-identically."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from engine import caselog
from engine.caselog import ZERO_HASH, CaseLog, CaseLogDamaged

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_OUT = "c" * 64


def make_log(path: Path, n: int = 5) -> CaseLog:
    log = CaseLog(path, examiner="J. Doe")
    log.append("open", input_path="/evidence/cam1.png", input_sha256=SHA_A)
    for i in range(1, n - 1):
        log.append(
            "enhance",
            input_path="/evidence/cam1.png",
            input_sha256=SHA_A,
            model_id="s2_rafsr",
            weights_sha256="d" * 64,
            scale=4,
            parameters={"face_index": i, "box": [1.5, 2.0, 30.0, 40.25]},
            device="cpu",
            outputs=[{"path": f"/out/face{i}.png", "sha256": SHA_OUT, "pixels_sha256": "e" * 64}],
            details={"note": f"run {i}"},
        )
    log.append("open", input_path="/evidence/cam2.png", input_sha256=SHA_B)
    return log


@pytest.fixture
def log(tmp_path) -> CaseLog:
    return make_log(tmp_path / "case_log.jsonl")


def lines(log: CaseLog) -> list[bytes]:
    return log.path.read_bytes().split(b"\n")[:-1]


def write_lines(log: CaseLog, rows: list[bytes]) -> None:
    log.path.write_bytes(b"".join(r + b"\n" for r in rows))


# --------------------------------------------------------------------------- the chain


def test_intact_log_verifies(log):
    report = log.verify()
    assert report.ok and report.entries == 5 and report.problems == ()
    assert report.head_sha256 == hashlib.sha256(lines(log)[-1]).hexdigest()
    assert "intact" in report.summary()
    json.dumps(report.to_dict())


def test_entries_are_chained_as_documented(log):
    rows = lines(log)
    entries = log.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == ZERO_HASH
    for previous, entry in zip(rows, entries[1:], strict=False):
        assert entry["prev"] == hashlib.sha256(previous).hexdigest()
    for row, entry in zip(rows, entries, strict=True):
        assert entry["hash"] == caselog.entry_hash(entry)
        assert row == caselog.canonical_bytes(entry)  # sorted keys, no whitespace
    first = entries[1]
    assert first["examiner"] == "J. Doe" and first["software"].startswith("Forensic Face Enhancer")
    assert first["time_utc"].endswith("+00:00")


def test_append_returns_what_a_reader_parses(tmp_path):
    log = CaseLog(tmp_path / "log.jsonl", examiner="x")
    entry = log.append("note", parameters={"box": (1, 2), "value": np.float32(0.5)})
    assert entry == log.entries()[0]
    assert entry["parameters"] == {"box": [1, 2], "value": 0.5}


def test_every_single_character_edit_is_detected(log):
    rows = lines(log)
    target = rows[2]  # entry 3, an "enhance" entry
    assert target.isascii()
    for pos in range(len(target)):
        new = b"x" if target[pos : pos + 1] != b"x" else b"y"
        edited = rows[:2] + [target[:pos] + new + target[pos + 1 :]] + rows[3:]
        write_lines(log, edited)
        report = log.verify()
        assert not report.ok, f"edit at byte {pos} went unnoticed"
        assert report.first_bad_line == 3, (pos, report.problems)
        assert report.reason in ("edited", "not JSON", "not an entry"), (pos, report.reason)


def test_edit_with_recomputed_hash_is_caught_by_the_next_link(log):
    rows = lines(log)
    entry = json.loads(rows[1])
    entry["model_id"] = "bicubic"
    entry["hash"] = caselog.entry_hash(entry)
    rows[1] = caselog.canonical_bytes(entry)
    write_lines(log, rows)
    report = log.verify()
    assert not report.ok and report.first_bad_line == 2 and report.reason == "edited"


def test_reformatted_line_is_an_edit(log):
    rows = lines(log)
    rows[0] = json.dumps(json.loads(rows[0]), indent=None).encode()  # ", " and ": " separators
    write_lines(log, rows)
    report = log.verify()
    assert report.first_bad_line == 1 and report.reason == "edited"


def test_removed_entry_is_detected(log):
    rows = lines(log)
    write_lines(log, rows[:2] + rows[3:])
    report = log.verify()
    assert not report.ok and report.first_bad_line == 3 and report.reason == "removed"
    assert "entry 3 is missing" in report.problems[0].message


def test_several_removed_entries_are_named(log):
    rows = lines(log)
    write_lines(log, rows[:1] + rows[3:])
    report = log.verify()
    assert report.reason == "removed" and "entries 2-3 are missing" in report.problems[0].message


@pytest.mark.parametrize(
    "change",
    [('"seq":3', '"seq":1000000000000'), ('"seq":3', '"seq":[3]'), ('"scale":4', '"scale":NaN')],
)
def test_hostile_values_are_reported_not_crashed_on(log, change):
    rows = lines(log)
    assert change[0].encode() in rows[2]
    rows[2] = rows[2].replace(change[0].encode(), change[1].encode())
    write_lines(log, rows)
    report = log.verify()
    assert not report.ok and report.first_bad_line == 3


def test_removed_last_entry_is_detected_through_the_head_file(log):
    write_lines(log, lines(log)[:-1])
    report = log.verify()
    assert not report.ok and report.reason == "removed"


def test_without_head_file_a_removed_tail_is_only_noted(log):
    """The documented limit of a bare hash chain: a shorter valid chain looks intact."""
    log.head_path.unlink()
    write_lines(log, lines(log)[:-1])
    report = log.verify()
    assert report.ok and report.entries == 4
    assert any("head file" in note for note in report.notes)


def test_reordered_entries_are_detected(log):
    rows = lines(log)
    rows[1], rows[2] = rows[2], rows[1]
    write_lines(log, rows)
    report = log.verify()
    assert not report.ok and report.first_bad_line == 2 and report.reason == "reordered"


def test_inserted_garbage_line_is_not_json(log):
    rows = lines(log)
    write_lines(log, rows[:2] + [b"hello"] + rows[2:])
    report = log.verify()
    assert report.first_bad_line == 3 and report.reason == "not JSON"


def test_truncated_mid_line_is_detected_and_blocks_appends_until_repaired(log):
    data = log.path.read_bytes()
    cut = len(data) - 40  # inside the last line
    log.path.write_bytes(data[:cut])
    report = log.verify()
    assert not report.ok and report.first_bad_line == 5 and report.reason == "truncated"
    with pytest.raises(CaseLogDamaged):
        log.append("note")

    repaired = log.repair()
    assert repaired["action"] == "repaired" and repaired["seq"] == 5
    fragment = data[data.rfind(b"\n", 0, cut) + 1 : cut]
    assert repaired["details"]["removed_sha256"] == hashlib.sha256(fragment).hexdigest()
    assert Path(repaired["details"]["saved_to"]).read_bytes() == fragment
    assert log.verify().ok
    assert log.repair() is None  # nothing left to repair
    log.append("note")
    assert log.verify().ok


def test_missing_log_is_not_ok(tmp_path):
    report = CaseLog(tmp_path / "nothing.jsonl").verify()
    assert not report.ok and report.reason == "missing"


def test_bad_fields_are_refused_before_writing(tmp_path):
    log = CaseLog(tmp_path / "log.jsonl")
    with pytest.raises(TypeError, match="unknown case-log field"):
        log.append("enhance", modle_id="s2_rafsr")
    with pytest.raises(ValueError, match="NaN"):
        log.append("enhance", parameters={"x": float("nan")})
    with pytest.raises(ValueError):
        log.append("two words")
    with pytest.raises(ValueError, match="path"):
        log.append("export", outputs=[{"sha256": SHA_OUT}])
    assert not log.path.exists()


def test_concurrent_appends_from_two_threads_stay_valid(tmp_path):
    path = tmp_path / "log.jsonl"
    logs = [CaseLog(path, examiner="a"), CaseLog(path, examiner="b")]  # two handles, one file
    start = threading.Barrier(2)

    def work(log: CaseLog) -> None:
        start.wait()
        for i in range(60):
            log.append("note", details={"i": i, "pad": "x" * 300})

    threads = [threading.Thread(target=work, args=(lg,)) for lg in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = logs[0].verify()
    assert report.ok and report.entries == 120, report.problems[:3]
    examiners = [e["examiner"] for e in logs[0].entries()]
    assert examiners.count("a") == examiners.count("b") == 60


def test_history_filters_by_input_or_output_hash(log):
    assert [e["seq"] for e in log.history(SHA_A)] == [1, 2, 3, 4]
    assert [e["seq"] for e in log.history(SHA_B.upper())] == [5]
    assert [e["seq"] for e in log.history(SHA_OUT)] == [2, 3, 4]
    assert [e["seq"] for e in log.history("e" * 64)] == [2, 3, 4]
    assert log.history("f" * 64) == []


def test_verify_main_exit_codes(log, tmp_path, capsys):
    assert caselog.verify_main(log.path) == 0
    assert "intact" in capsys.readouterr().out
    write_lines(log, lines(log)[1:])
    assert caselog.verify_main(log.path) == 1
    assert "NOT intact" in capsys.readouterr().out
    assert caselog.verify_main(tmp_path / "none.jsonl") == 2


def test_default_path_is_in_the_chosen_folder(tmp_path):
    assert caselog.default_path(tmp_path) == tmp_path / "case_log.jsonl"


def test_pixels_sha256_is_the_hash_of_the_raw_bytes():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert caselog.pixels_sha256(rgb) == hashlib.sha256(rgb.tobytes()).hexdigest()
    assert caselog.pixels_sha256(np.asfortranarray(rgb)) == caselog.pixels_sha256(rgb)


# --------------------------------------------------------------------------- reproduce

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "astronaut.png"
REFERENCE = Path(__file__).with_name("data") / "astronaut_landmarks.json"


@pytest.fixture(scope="module")
def enhancer():
    from engine.enhance import Enhancer

    return Enhancer(device="cpu")


@pytest.fixture
def logged_run(tmp_path, enhancer):
    """The sample copied as evidence, its face enhanced (bicubic x4), exported and logged."""
    from engine import io, provenance
    from engine.faces import Face

    evidence = tmp_path / "evidence.png"
    evidence.write_bytes(SAMPLE.read_bytes())
    still = io.load(evidence)
    ref = json.loads(REFERENCE.read_text())
    face = Face(
        box=tuple(ref["box"]), score=0.9, landmarks=np.asarray(ref["landmarks"], np.float32)
    )
    # x4 shrinks the sample's 78 px face: allowed here, so the reproduction must allow it too
    result = enhancer.enhance(still, face, "bicubic", 4, allow_shrink=True)
    assert result.provenance["parameters"]["evidence_shrink"] > 2
    out = tmp_path / "face.png"
    sha = io.save_png(out, result.sr, provenance.png_text(result.provenance))
    log = CaseLog(tmp_path / "case_log.jsonl", examiner="J. Doe")
    fields = caselog.enhance_fields(
        still, face, result, [caselog.output_record(out, sha, result.sr, "face")]
    )
    entry = log.append("enhance", **fields)
    return log, entry, evidence


def test_an_enhancement_reproduces_bit_identically(logged_run, enhancer):
    from engine import io

    log, entry, _ = logged_run
    assert entry["details"]["pixels_sha256"] == entry["outputs"][0]["pixels_sha256"]
    assert len(entry["parameters"]["face"]["landmarks"]) == 68
    report = caselog.reproduce(log.entries()[0], enhancer, io.load)
    assert report.ok, report.messages
    assert report.input_ok and report.weights_ok and report.pixels_ok and report.files_ok
    assert report.max_abs_difference == 0
    assert report.reproduced_pixels_sha256 == entry["details"]["pixels_sha256"]


def test_reproduce_refuses_a_changed_input(logged_run, enhancer):
    from engine import io

    log, entry, evidence = logged_run
    rgb = io.load(evidence).rgb.copy()
    rgb[0, 0, 0] ^= 1  # one level in one pixel: a valid image, no longer the evidence
    io.save_png(evidence, rgb)
    report = caselog.reproduce(entry, enhancer, io.load)
    assert not report.ok and report.input_ok is False and report.pixels_ok is None


def test_reproduce_reports_different_pixels_and_changed_outputs(logged_run, enhancer):
    from engine import io

    log, entry, _ = logged_run
    forged = json.loads(json.dumps(entry))
    forged["details"]["pixels_sha256"] = "0" * 64
    Path(forged["outputs"][0]["path"]).write_bytes(b"replaced")
    report = caselog.reproduce(forged, enhancer, io.load)
    assert not report.ok and report.input_ok and report.pixels_ok is False
    assert report.files_ok is False
    assert any("changed" in m for m in report.messages)


def test_only_enhance_entries_can_be_reproduced(log, enhancer):
    from engine import io

    report = caselog.reproduce(log.entries()[0], enhancer, io.load)
    assert not report.ok and "only 'enhance'" in report.messages[0]


def test_a_rerun_that_cannot_run_is_reported(logged_run, enhancer):
    from engine import io

    _, entry, _ = logged_run
    forged = json.loads(json.dumps(entry))
    forged["model_id"] = "no_such_model"
    report = caselog.reproduce(forged, enhancer, io.load)
    assert not report.ok and report.input_ok
    assert "re-run failed" in report.messages[-1] and "no_such_model" in report.messages[-1]


def test_a_forged_huge_seq_is_reported_quickly(log):
    rows = lines(log)
    entry = json.loads(rows[2])
    entry["seq"] = 10**15
    entry["hash"] = caselog.entry_hash(entry)
    rows[2] = caselog.canonical_bytes(entry)
    write_lines(log, rows)
    report = log.verify()
    assert report.first_bad_line == 3 and report.reason == "removed"
