"""Screenshots of the real windows on an X server at 1280x800 (issue 28's refined views).

    Xvfb :77 -screen 0 1280x800x24 & DISPLAY=:77 openbox &   # a window manager: title bars
    DISPLAY=:77 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/x11_screenshots.py [--out docs/screenshots]

The window is maximized and the whole screen grabbed (``QScreen.grabWindow(0)``), so a dialog
over the window is shown as the analyst sees it, with its title bar. Writes:

* ``hand_box_refine.png``: a still where HOG finds no face (the sample shrunk to 77 px and
  enlarged back to 256, a demo of a soft CCTV still), a box drawn around the face, its 68 landmarks
  fitted and shown, the banner asking to use or discard it;
* ``hand_box_warning.png``: a loose box over the hair: the fit named implausible, in words;
* ``difference_dialog.png``: the small sample (a 32 px face) through a GAN model at x4, the
  Difference dialog open over the side-by-side view;
* ``batch_running.png``: a real batch run (copies of the sample at eight sizes, two models)
  captured inside its third file: the bar within the file, the line naming it.

Runs the real engine; settings, the case log and the batch's files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from PySide6.QtWidgets import QApplication  # noqa: E402
from screenshots import FULL_SAMPLE, SAMPLE, demo_settings, settle, wait_until  # noqa: E402

from app.batch_progress import STEPS  # noqa: E402
from app.main_window import MainWindow  # noqa: E402

DEMO_CASE = Path(tempfile.gettempdir()) / "cases" / "2024-117"  # removed afterwards
ZOOM = 6.0  # screen pixels per still pixel while the box is refined (at most)


def grab(app: QApplication, path: Path) -> None:
    settle(300)
    app.primaryScreen().grabWindow(0).save(str(path))
    sys.stdout.write(f"{path} {path.stat().st_size} bytes\n")


def idle(window: MainWindow) -> bool:
    return not window.busy_kinds() - {"init"}


def soft_still(tmp: Path) -> Path:
    """The sample shrunk to 77 px and enlarged back to 256: soft, and HOG finds no face."""
    from engine import imaging, io

    big = io.load(FULL_SAMPLE).rgb
    small = imaging.resize(big, 77, 77, "bicubic")
    path = tmp / "astronaut_soft_demo.png"
    io.save_png(path, imaging.resize(small, 256, 256, "bicubic"), {})
    return path


def draw(window: MainWindow, box: tuple[float, float, float, float]) -> None:
    """A box drawn (the image view's signal, as on mouse release); wait for its landmarks,
    then zoom so the box fills most of the view."""
    view = window.image_view
    view.boxDrawn.emit(box)
    wait_until(
        lambda: window.hand_box.item() is not None and window.hand_box.item().landmarks_shown()
    )
    wait_until(lambda: idle(window))
    settle()
    view.set_zoom(min(ZOOM, 0.8 * view.viewport().height() / (box[3] - box[1])))
    view.centerOn((box[0] + box[2]) / 2, (box[1] + box[3]) / 2 + 4)


def batch_folder(root: Path) -> Path:
    """Eight JPEG stills: the sample at eight sizes (the file names are a demo's)."""
    from PIL import Image

    folder = root / "stills"
    folder.mkdir(parents=True)
    with Image.open(FULL_SAMPLE) as image:
        rgb = image.convert("RGB")
        for i, side in enumerate((256, 288, 320, 352, 384, 416, 448, 480)):
            rgb.resize((side, side), Image.Resampling.BICUBIC).save(
                folder / f"cam2_{410 + i:04d}.jpg", quality=85
            )
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    if os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb" or not os.environ.get("DISPLAY"):
        raise SystemExit("run on an X server: DISPLAY=:77 QT_QPA_PLATFORM=xcb (see the header)")
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = demo_settings(tmp)
        settings.setValue("detector", "hog")
        window = MainWindow(settings=settings)
        window.showMaximized()
        wait_until(lambda: bool(window.device))

        window.open_file(soft_still(tmp))
        wait_until(lambda: window.still is not None and idle(window))
        if window.faces:
            raise SystemExit("HOG found a face in the soft still: no box to draw")
        face = (87.0, 33.0, 139.0, 89.0)  # around the face, brows to chin
        draw(window, face)
        grab(app, args.out / "hand_box_refine.png")

        draw(window, (85.5, 7.0, 140.5, 80.4))  # a loose box over the hair (the issue's)
        if not window.hand_box.fitted().fit_warnings:
            raise SystemExit("the box over the hair was not warned about")
        grab(app, args.out / "hand_box_warning.png")

        window.hand_box.cancel()
        window.open_file(SAMPLE)  # a 32 px face: what the models' differences look like
        wait_until(lambda: window.still is not None and window.faces and idle(window))
        window.set_scale(4)
        learned = [m for m in window.runnable_models() if not window.entry(m).is_baseline]
        gan = [m for m in learned if window.entry(m).variant == "gan"]
        window.set_model((gan or learned or ["bicubic"])[0])
        window.enhance()
        wait_until(lambda: window.current is not None)
        wait_until(window.fidelity_panel.has_values)
        window.show_page("side")
        dialog = window.fidelity_panel.show_difference()
        dialog.move(150, 150)  # over the input: the output stays in sight
        grab(app, args.out / "difference_dialog.png")
        dialog.close()

        batch = window.open_batch()
        case = DEMO_CASE
        shutil.rmtree(case, ignore_errors=True)
        batch.in_edit.setText(str(batch_folder(case)))
        batch.out_edit.setText(str(case / "enhanced"))
        batch.set_chosen_models(["bicubic", *learned[:1]])
        window.start_batch(batch.request())
        bar = batch.progress
        wait_until(
            lambda: bar.maximum() > 0 and bar.value() // STEPS >= 2 and bar.value() % STEPS >= 300,
            600,
        )
        grab(app, args.out / "batch_running.png")
        batch.cancel_button.click()
        wait_until(lambda: idle(window), 600)
        batch.close()
        window.close()
        shutil.rmtree(case, ignore_errors=True)
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
