"""Fixtures for the Qt front end: isolated settings, a window that is shut down properly, and a
guard that fails any test leaving a QThread running (napari's ``_dangling_qthreads`` habit)."""

from __future__ import annotations

import os
import traceback
import weakref
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QThread  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "resources" / "samples" / "astronaut_small.png"
ENGINE_START_MS = 180_000  # first start imports torch and dlib's models: slow on a busy 2-core box
JOB_MS = 60_000


@pytest.fixture(autouse=True)
def _no_dangling_qthreads(monkeypatch, qtbot):
    """Fail the test if a QThread it started is still running when it ends."""
    started: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    original_start = QThread.start

    def start(self, *args, **kwargs):
        started[self] = "".join(traceback.format_stack(limit=6)[:-1])
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    yield
    dangling = []
    for thread, where in list(started.items()):
        try:
            if thread.isRunning():
                dangling.append((thread, where))
        except RuntimeError:  # the C++ object is gone: not running
            continue
    for thread, _ in dangling:  # stop them so the next tests (and exit) do not crash
        thread.quit()
        thread.wait(30_000)
    if dangling:
        pytest.fail("QThread(s) left running; started at:\n" + "\n".join(w for _, w in dangling))


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Never read or write the user's real settings or case log."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("FFE_CASE_DIR", str(tmp_path / "caselog"))
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "config")
    )


@pytest.fixture
def case_log_path(tmp_path) -> Path:
    """Where the app writes its case log in a test (FFE_CASE_DIR, see above)."""
    return tmp_path / "caselog" / "case_log.jsonl"


@pytest.fixture
def settings(tmp_path) -> QSettings:
    """Settings of an examiner who has been asked once already (no first-start dialog)."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("examiner", "Test Examiner")
    return settings


def wait_engine(qtbot, window) -> None:
    """Wait until the worker has reported the device and the models (the "init" job)."""
    qtbot.waitUntil(lambda: bool(window.device), timeout=ENGINE_START_MS)


@pytest.fixture
def make_window(qtbot, settings):
    """Factory for MainWindows; each is closed (worker thread stopped) at teardown."""
    from app.main_window import MainWindow

    windows = []

    def make(**kwargs):
        kwargs.setdefault("settings", settings)
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()  # closeEvent stops and joins the worker thread


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def run_job(qtbot):
    """Start a job with ``start()`` (returns its id) and wait for the worker's ``finished``."""

    def run(window, start, timeout: int = JOB_MS) -> int:
        ids: list[int] = []
        with qtbot.waitSignal(
            window.client.finished, timeout=timeout, check_params_cb=lambda job_id: job_id in ids
        ):
            job_id = start()
            assert job_id is not None, "no job was started"
            ids.append(job_id)
        return ids[0]

    return run


@pytest.fixture
def opened(make_window, qtbot, run_job):
    """A window with the sample still opened and its faces found."""

    def open_sample(path: Path = SAMPLE, **kwargs):
        window = make_window(**kwargs)
        wait_engine(qtbot, window)
        run_job(window, lambda: window.open_file(path))
        return window

    return open_sample


class BlockingEnhancer:
    """Test double for the cancel tests: a real Enhancer whose ``enhance`` runs until cancelled.

    It reports progress while it waits, like a long model run, and only a cancel ends it
    (or a 60 s safety limit), so the test cannot pass by the job finishing on its own.
    """

    def __init__(self) -> None:
        from engine.enhance import Enhancer

        self._real = Enhancer()
        self.device = self._real.device

    def models(self):
        return self._real.models()

    def enhance(self, still, face, model_id, scale, token=None, face_index=0, **kwargs):
        import threading

        pause = threading.Event()
        for step in range(6000):
            token.check()
            token.set_progress(step, 6000, "blocking test model")
            pause.wait(0.01)
        raise AssertionError("the blocking test model was never cancelled")


@pytest.fixture
def blocking_enhancer():
    return BlockingEnhancer
