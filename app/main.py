"""Entry point: create the QApplication, show the main window, run the event loop.

``python -m app [IMAGE]`` or the ``ffe-gui`` script. An image given on the command line is
opened at start-up.

Two switches exist for checking a build rather than for examiners:

* ``--smoke-test`` opens IMAGE (default: the bundled sample), waits until the engine has
  started and found at least one face, then quits with status 0 (1 on failure or after
  ``--smoke-timeout`` seconds). It uses throw-away settings and a throw-away case log, so the
  user's own are never touched. ``tests/test_packaging.py`` runs it against the built bundle.
* ``$FFE_STARTUP_PROBE=1`` writes ``ffe-startup window-shown <unix time>`` to stdout on the
  event loop's first turn after the window was shown, and whether torch was loaded by then
  (``benchmarks/startup.py`` reads it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from app.main_window import APPLICATION, ORGANISATION, MainWindow, app_icon

log = logging.getLogger(__name__)

# Beside app/ in a checkout; the same relative place inside a PyInstaller bundle, whose modules
# report __file__ under sys._MEIPASS.
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "resources" / "samples" / "astronaut.png"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; returns the process exit code."""
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ffe-gui", description=APPLICATION)
    parser.add_argument("image", nargs="?", help="a still to open at start-up")
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="open IMAGE (default: the sample), wait for its faces, quit (0 = all well)",
    )
    parser.add_argument("--smoke-timeout", type=float, default=180.0, help=argparse.SUPPRESS)
    args, qt_args = parser.parse_known_args(argv[1:])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = QApplication.instance() or QApplication([argv[0], *qt_args])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(app_icon())
    if args.smoke_test:
        with tempfile.TemporaryDirectory(prefix="ffe-smoke-") as tmp:
            return _smoke_test(app, Path(args.image or SAMPLE_PATH), Path(tmp), args.smoke_timeout)
    window = MainWindow()
    window.show()
    if os.environ.get("FFE_STARTUP_PROBE"):
        QTimer.singleShot(0, _report_shown)
    if args.image:
        window.open_file(args.image)
    return app.exec()


def _report_shown() -> None:
    # Runs on the event loop's first turn after show(): the window has been laid out and exposed.
    # torch=...: whether the engine worker had already imported torch (it runs in parallel).
    torch_loaded = "torch" in sys.modules
    sys.stdout.write(f"ffe-startup window-shown {time.time():.6f} torch={torch_loaded}\n")
    sys.stdout.flush()


def _smoke_test(app: QApplication, image: Path, tmp: Path, timeout_s: float) -> int:
    """Show the window, open ``image``, quit once the engine started and found a face."""
    from app.dialogs import settings as app_settings
    from app.jobs import EngineInfo, OpenOutcome

    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(app_settings.KEY_EXAMINER, "smoke-test")
    settings.setValue(app_settings.KEY_CASE_DIR, str(tmp / "case"))
    (tmp / "case").mkdir()
    window = MainWindow(settings=settings)
    window.show()
    state: dict[str, Any] = {"engine": None, "faces": None, "failure": None}

    def finish() -> None:
        if state["failure"] is None and state["engine"] is not None and state["faces"]:
            app.exit(0)
        elif state["failure"] is not None:
            app.exit(1)

    def on_result(_job_id: int, payload: Any) -> None:
        if isinstance(payload, EngineInfo):
            state["engine"] = payload.device
            log.info("smoke test: engine started on %s", payload.device)
        elif isinstance(payload, OpenOutcome):
            state["faces"] = len(payload.faces)
            log.info("smoke test: %s opened, %d face(s)", image.name, len(payload.faces))
            if not payload.faces:
                state["failure"] = "no face found"
        QTimer.singleShot(0, finish)  # after the window has handled the same answer

    def on_failed(_job_id: int, error: Any) -> None:
        state["failure"] = error.full()
        QTimer.singleShot(0, finish)

    def on_timeout() -> None:
        state["failure"] = f"no answer within {timeout_s:.0f} s"
        app.exit(1)

    window.client.result.connect(on_result)
    window.client.failed.connect(on_failed)
    QTimer.singleShot(int(timeout_s * 1000), on_timeout)
    window.open_file(image)
    code = app.exec()
    if code == 0 and not window.isVisible():
        state["failure"], code = "the window was not visible", 1
    window.close()  # saves into the throw-away settings, stops the worker
    window.deleteLater()
    if code:
        log.error("smoke test failed: %s", state["failure"])
    else:
        log.info("smoke test passed")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
