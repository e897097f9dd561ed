"""The engine worker on its own: finished on every path, failures as messages, cancel, shutdown."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from app.client import EngineClient, _ThrottledProgress
from app.jobs import BoxArgs, EnhanceArgs, ExportArgs, InitArgs, OpenArgs, ReportArgs
from app.worker import same_file

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"


@pytest.fixture
def client(qtbot):
    client = EngineClient()
    yield client
    assert client.shutdown()


def record(client) -> dict[str, list]:
    seen: dict[str, list] = {"result": [], "failed": [], "cancelled": [], "finished": []}
    client.result.connect(lambda j, p: seen["result"].append((j, p)))
    client.failed.connect(lambda j, e: seen["failed"].append((j, e.full())))
    client.cancelled.connect(lambda j: seen["cancelled"].append(j))
    client.finished.connect(lambda j: seen["finished"].append(j))
    return seen


def test_a_failing_job_sends_its_message_then_finished(client, qtbot, tmp_path):
    seen = record(client)
    with qtbot.waitSignal(client.finished, timeout=180_000):
        job = client.submit(OpenArgs(path=str(tmp_path / "missing.png"))).id
    assert seen["failed"] and seen["failed"][0][0] == job
    assert "Cannot open missing.png: the file does not exist" in seen["failed"][0][1]
    assert seen["finished"] == [job] and not seen["result"]
    assert not client.is_busy()


def test_a_fault_in_a_job_still_finishes(client, qtbot):
    seen = record(client)
    with pytest.raises(ValueError, match="unknown job kind"):
        client.submit(object())
    with qtbot.waitSignal(client.finished, timeout=180_000):
        job = client.submit(BoxArgs(still=None, box=(0, 0, 10, 10))).id  # a bug: no still
    assert seen["failed"][0][0] == job
    assert "AttributeError" in seen["failed"][0][1]
    assert "fault in the application" in seen["failed"][0][1]
    assert seen["finished"] == [job]


def test_a_queued_job_cancelled_before_it_starts_never_runs(qtbot, blocking_enhancer):
    client = EngineClient(enhancer_factory=blocking_enhancer)
    seen = record(client)
    from engine import faces, io

    still = io.load(SAMPLE)
    face = faces.Face(box=(0, 0, 10, 10), score=1.0, landmarks=np.zeros((68, 2), np.float32))
    args = EnhanceArgs(still=still, face=face, face_index=0, model_ids=["bicubic"], scale=4)
    first_ids: list[int] = []
    with qtbot.waitSignal(
        client.progress, timeout=180_000, check_params_cb=lambda j, *_: j in first_ids
    ):
        first_ids.append(client.submit(args).id)
    second = client.submit(args).id  # queued behind the blocking job
    client.cancel(second)
    # Jobs run in order: the second finishes after the first.
    with qtbot.waitSignal(client.finished, timeout=30_000, check_params_cb=lambda j: j == second):
        client.cancel(first_ids[0])
    assert sorted(seen["cancelled"]) == sorted([first_ids[0], second])
    assert sorted(seen["finished"]) == sorted([first_ids[0], second])
    assert not seen["result"] and not seen["failed"]
    assert client.shutdown()
    assert not client.thread.isRunning()
    with pytest.raises(RuntimeError):
        client.submit(InitArgs())


def test_export_refuses_the_input_file_even_through_a_link(client, qtbot, tmp_path):
    evidence = tmp_path / "evidence.png"
    evidence.write_bytes(SAMPLE.read_bytes())
    link = tmp_path / "link.png"
    os.symlink(evidence, link)
    assert same_file(link, evidence) and not same_file(tmp_path / "other.png", evidence)
    seen = record(client)
    with qtbot.waitSignal(client.finished, timeout=180_000):
        client.submit(
            ExportArgs(path=str(link), rgb=np.zeros((4, 4, 3), np.uint8), forbidden=str(evidence))
        )
    assert "never written over" in seen["failed"][0][1]
    assert evidence.read_bytes() == SAMPLE.read_bytes()


def test_case_report_refuses_the_input_and_writes_nothing(client, qtbot, tmp_path):
    from engine import io

    evidence = tmp_path / "evidence.pdf"  # a PNG under an unlucky name
    evidence.write_bytes(SAMPLE.read_bytes())
    seen = record(client)
    with qtbot.waitSignal(client.finished, timeout=180_000):
        client.submit(
            ReportArgs(
                path=str(tmp_path / "evidence.html"),
                still=io.load(evidence),
                groups=[("", [], {})],
                forbidden=str(evidence),
            )
        )
    assert "reports never replace them" in seen["failed"][0][1]
    assert evidence.read_bytes() == SAMPLE.read_bytes()
    assert not (tmp_path / "evidence.html").exists()


def test_pdf_of_a_small_page_is_a_pdf(qtbot, tmp_path):
    from app.pdf import write_pdf

    sha = write_pdf("<h1>Case</h1><p>text</p>", tmp_path / "r.pdf")
    data = (tmp_path / "r.pdf").read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 500
    assert sha == hashlib.sha256(data).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["r.pdf"]  # no temporary file left


def test_progress_is_throttled_but_keeps_first_and_last():
    sent: list[tuple[int, int, str]] = []
    throttle = _ThrottledProgress(lambda d, t, m: sent.append((d, t, m)), interval=10.0)
    for i in range(1001):
        throttle(i, 1000, f"step {i}")
    assert sent[0][0] == 0 and sent[-1][0] == 1000
    assert len(sent) == 2
