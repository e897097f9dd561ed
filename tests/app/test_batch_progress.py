"""Batch progress: the dialog's bar moves within every file after the first (an estimate from
the time files took so far, frozen while paused), and the line names the file being worked on,
never the one just finished (the run's own token lines are kept out of the throttle)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QProgressBar

from app.batch_progress import CAP, STEPS, FileProgress, QuietToken
from engine.progress import Cancelled, PausableToken

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut_small.png"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_moves_within_every_file_after_the_first(qtbot):
    bar = QProgressBar()
    qtbot.addWidget(bar)
    clock = Clock()
    progress = FileProgress(bar, clock=clock)
    progress.update(0, 4)
    assert bar.maximum() == 0  # the first file: busy, nothing measured yet
    clock.now += 10  # the first file took 10 s
    progress.update(1, 4)
    assert bar.maximum() == 4 * STEPS and bar.value() == 1 * STEPS
    assert bar.format() == "1/4 files"
    seen = []
    for _ in range(3):  # within the second file
        clock.now += 2.5
        progress.tick()
        seen.append(bar.value())
    assert seen == [1250, 1500, 1750]
    clock.now += 57.5  # a slow file: the estimate waits short of the next file
    progress.tick()
    assert bar.value() == int((1 + CAP) * STEPS)
    clock.now += 1  # the second file took 66 s: mean 38 s
    progress.update(2, 4)
    assert bar.value() == 2 * STEPS
    clock.now += 19
    progress.tick()
    assert bar.value() == 2500  # the third file moves too
    progress.update(4, 4)
    assert bar.value() == bar.maximum() == 4 * STEPS


def test_a_paused_run_does_not_move_the_bar(qtbot):
    bar = QProgressBar()
    qtbot.addWidget(bar)
    clock = Clock()
    progress = FileProgress(bar, clock=clock)
    progress.update(0, 3)
    clock.now += 10
    progress.update(1, 3)
    clock.now += 5
    progress.tick()
    assert bar.value() == 1500
    progress.set_paused(True)
    clock.now += 100
    progress.tick()
    assert bar.value() == 1500
    progress.set_paused(False)
    clock.now += 1
    progress.tick()
    assert bar.value() == 1600  # on from where it stood


def test_the_quiet_token_passes_pause_and_cancel_but_not_progress():
    lines = []
    job = PausableToken(on_progress=lambda d, t, m: lines.append(m))
    quiet = QuietToken(job)
    quiet.set_progress(1, 3, "a.png: ok")  # the run's own line: the file just finished
    assert lines == []
    job.pause()
    assert quiet.paused and not quiet.wait_running(0.01)
    job.resume()
    assert not quiet.paused and quiet.wait_running(0.01)
    quiet.check()
    job.cancel()
    assert quiet.cancelled
    with pytest.raises(Cancelled):
        quiet.check()


def test_a_run_names_the_file_being_worked_on(make_window, qtbot, run_job, tmp_path, monkeypatch):
    from app import client

    # every line the worker sends reaches the dialog (no throttle), so a line naming the
    # file just finished would be seen
    monkeypatch.setattr(
        client._ThrottledProgress, "__call__", lambda self, d, t, m: self._emit(d, t, m)
    )
    inputs = tmp_path / "case"
    inputs.mkdir()
    names = ["a.png", "b.png", "c.png"]
    for name in names:
        shutil.copyfile(SAMPLE, inputs / name)
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.device), timeout=180_000)
    dialog = window.open_batch()
    dialog.in_edit.setText(str(inputs))
    dialog.out_edit.setText(str(tmp_path / "out"))
    dialog.set_chosen_models(["bicubic"])
    seen: list[tuple[int, int, str]] = []
    shown = dialog.on_progress
    monkeypatch.setattr(
        dialog, "on_progress", lambda d, t, m: (seen.append((d, t, m)), shown(d, t, m))
    )
    run_job(window, lambda: window.start_batch(dialog.request()), timeout=120_000)
    running = [(d, m) for d, t, m in seen if t == 3 and d < 3]
    assert {d for d, _ in running} == {0, 1, 2}, seen
    for done, message in running:
        assert re.match(rf"File {done + 1} of 3: {names[done]} ", message), message
    assert "Done" in dialog.status.text() and dialog.progress.value() == 3
    dialog.close()
