"""Make the README's screenshots: open the samples, enhance, grab the window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Writes ``main_window.png`` (the still with its face outlined), ``side_by_side_landmarks.png``
(input vs the best installed model, landmarks on), ``compare_grid.png`` (every runnable model)
and ``fidelity_history.png`` (one output after the comparison: its fidelity checks with the
agreement matrix below it, the History dock with the case-log entries beside), all on the small
sample (a 32 px face, the size x4 is made for). Then, at the default scale Auto:
``native_80px_auto.png`` (the full sample's 78 px face, enhanced where it is, beside its
recorded pixels), ``native_200px_message.png`` (the sample enlarged so its face spans about
200 px: nothing runs, the recorded pixels and the reason are shown) and, with ``--report``,
``docs/report_page.png`` (the case report's page with the recorded pixels and the model input,
each captioned) and ``docs/report_first_page.png`` (its one-page summary); both need
``pdftoppm``. The model shown side by side is the first learned model with installed weights at x4, or bicubic when none is
installed yet (the screenshot then says so in its caption). Runs the real engine; settings, the
case log and the exported file go to a temporary folder, never the user's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.main_window import MainWindow  # noqa: E402

SAMPLE = REPO / "resources" / "samples" / "astronaut_small.png"
FULL_SAMPLE = REPO / "resources" / "samples" / "astronaut.png"


def wait_until(predicate, timeout_s: float = 300.0) -> None:
    """Run the event loop until ``predicate()`` is true (checked every 20 ms)."""
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: predicate() and loop.quit())
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    timer.start()
    deadline.start(int(timeout_s * 1000))
    if not predicate():
        loop.exec()
    timer.stop()
    if not predicate():
        raise TimeoutError("the app did not reach the expected state in time")


def settle(ms: int = 150) -> None:
    """Let pending paint and layout events run before a grab."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def demo_settings(tmp: Path) -> QSettings:
    """A throw-away case folder and settings with an examiner and case set, so the pictures
    show no first-start dialog and never touch the analyst's own case log."""
    os.environ["FFE_CASE_DIR"] = str(tmp / "case")
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("examiner", "A. Examiner")
    settings.setValue("caseReference", "CR-0001 (demo)")
    return settings


def demo_window(tmp: Path) -> MainWindow:
    """The main window at 1280x800 (the smallest screen the views must fit, issue 28), shown,
    its engine started."""
    window = MainWindow(settings=demo_settings(tmp))
    window.resize(1280, 800)
    window.show()
    wait_until(lambda: bool(window.device))
    return window


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--report", action="store_true", help="also docs/report_page.png")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        window = demo_window(Path(tmp))
        window.open_file(args.image)
        wait_until(lambda: window.still is not None and not window.busy_kinds() - {"init"})
        if not window.faces:
            raise SystemExit(f"no face found in {args.image}")
        window.set_scale(4)
        learned = [m for m in window.runnable_models() if not window.entry(m).is_baseline]
        window.set_model(learned[0] if learned else "bicubic")
        window.image_view.fit()
        settle()
        window.grab().save(str(args.out / "main_window.png"))

        window.enhance()
        wait_until(lambda: window.current is not None)
        wait_until(window.fidelity_panel.has_values)
        window.show_page("side")
        window.compare_view.set_landmarks_visible(True)
        settle()
        window.grab().save(str(args.out / "side_by_side_landmarks.png"))

        window.compare_all()
        wait_until(lambda: not window.busy_kinds() - {"init"})
        window.show_page("grid")
        settle()
        window.grab().save(str(args.out / "compare_grid.png"))

        # One output after the comparison, exported once so History shows an export too.
        window.grid_view.tileClicked.emit(learned[0] if learned else "lanczos")
        window.compare_view.set_landmarks_visible(False)
        window.export("face", Path(tmp) / "face.png")
        wait_until(lambda: not window.busy_kinds() - {"init"})
        wait_until(window.fidelity_panel.has_values)
        window.show_page("side")
        window.history_view.select_row(1)  # the enhancement: Reproduce becomes available
        settle()
        window.grab().save(str(args.out / "fidelity_history.png"))

        native_shots(window, args.out, Path(tmp), args.report)
        window.close()
        batch_shots(args.out, Path(tmp))
    app.processEvents()
    names = ("main_window.png", "side_by_side_landmarks.png", "compare_grid.png")
    names += ("fidelity_history.png", "native_80px_auto.png", "native_200px_message.png")
    names += ("batch_cancelled.png",)
    for name in names:
        path = args.out / name
        sys.stdout.write(f"{path} {path.stat().st_size} bytes\n")
    return 0


def native_shots(window: MainWindow, out: Path, tmp: Path, report: bool) -> None:
    """The native-resolution pictures: Auto on a 78 px face and on a 200 px face."""
    from engine import imaging, io

    window.set_scale("auto")
    window.open_file(FULL_SAMPLE)
    wait_until(lambda: window.still is not None and window.still.name == FULL_SAMPLE.name)
    wait_until(lambda: not window.busy_kinds() - {"init"})
    window.opening.select_face(0)
    learned = [m for m in window.runnable_models() if not window.entry(m).is_baseline]
    runs = [m for m in learned if window.enhancing.plan(m).runs]  # Auto enhances this face
    window.set_model(runs[0] if runs else "bicubic")  # at x2, or at the face's native size
    window.enhance()
    wait_until(lambda: window.current is not None)
    wait_until(window.fidelity_panel.has_values)
    window.show_page("side")
    window.compare_view.set_input_method("recorded")
    settle()
    window.grab().save(str(out / "native_80px_auto.png"))
    if report:
        pdf = tmp / "report.html"
        window.export_report(pdf)
        wait_until(lambda: pdf.with_suffix(".pdf").exists() and not window.busy_kinds() - {"init"})
        import subprocess

        pdf_file = str(pdf.with_suffix(".pdf"))
        text = subprocess.run(["pdftotext", pdf_file, "-"], capture_output=True, text=True)
        pages = text.stdout.split("\f")
        first = next(i for i, p in enumerate(pages, 1) if "Recorded pixels" in p)
        page = out.parent / "report_page"
        subprocess.run(
            ["pdftoppm", "-png", "-r", "80", "-f", str(first), "-l", str(first), "-singlefile",
             pdf_file, str(page)],
            check=True,
        )  # fmt: skip
        subprocess.run(  # page one: the summary
            ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", pdf_file,
             str(out.parent / "report_first_page")],
            check=True,
        )  # fmt: skip
    window.compare_view.set_input_method("nearest")

    big = io.load(FULL_SAMPLE).rgb
    side = round(big.shape[0] * 200 / 78)
    large = tmp / "astronaut_enlarged_demo.png"  # a demo input: the sample enlarged 2.6x
    io.save_png(large, imaging.resize(big, side, side, "bicubic"), {})
    window.open_file(large)
    wait_until(lambda: window.still is not None and window.still.name == large.name)
    wait_until(lambda: not window.busy_kinds() - {"init"})
    window.enhance()  # nothing runs: the plain-words message and the recorded pixels
    settle(300)
    window.grab().save(str(out / "native_200px_message.png"))


def batch_shots(out: Path, tmp: Path) -> None:
    """The batch window after Cancel (a demo summary: what the engine returns for a run
    cancelled after 8 of 11 files). A real run mid-file, ``batch_running.png``, is made by
    ``scripts/x11_screenshots.py``."""
    from types import SimpleNamespace

    from app.dialogs.batch import BatchDialog
    from app.state import SCALES
    from engine import registry

    settings = QSettings(str(tmp / "batch.ini"), QSettings.Format.IniFormat)
    settings.setValue("batchIn", "/cases/2024-117/stills")
    settings.setValue("batchOut", "/cases/2024-117/enhanced")
    settings.setValue("batchModels", ["bicubic", "s1_mffcn"])
    dialog = BatchDialog(registry.MODELS, lambda m, s: "installed", SCALES, settings)
    dialog.show()
    dialog.started()
    dialog.on_progress(8, 11, "File 9 of 11: cam2_0417.jpg (8 done, 9 faces, about 0:52 left)")
    summary = SimpleNamespace(
        cancelled=True, files_done=8, files_total=11, elapsed_s=143.0, faces=9, ok=7,
        no_face=1, errors=0, skipped=0, out_dir=Path("/cases/2024-117/enhanced"),
        summary_path=Path("/cases/2024-117/enhanced/summary.csv"), timings={},
    )  # fmt: skip
    dialog.finished(summary)
    settle()
    dialog.grab().save(str(out / "batch_cancelled.png"))
    dialog.close()


if __name__ == "__main__":
    raise SystemExit(main())
